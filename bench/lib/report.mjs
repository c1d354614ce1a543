// Number formatting and the printed tables. Targets are shown as ratios with a
// met/missed mark; a benchmark never fails on timing.

export const MiB = 1024 * 1024;
export const MB = 1e6;

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(digits));

export const mibps = (r) => (r ? r.bytes / MiB / (r.ms / 1000) : null);

export function sizeLabel(bytes) {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`;
}

/** Left column left-aligned, the rest right-aligned. */
export function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map((c) => String(c)));
  const w = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  return [line(all[0]), w.map((n) => "-".repeat(n)).join("  "), ...all.slice(1).map(line)].join("\n");
}

/**
 * One comparison row. `better` says which way is good for the ratio
 * airlock/ssh: "higher" (throughput) or "lower" (latency). `target` is the
 * ratio the issue asks for, or null when the row is informational.
 */
export function compareRow(label, direct, ssh, airlock, { digits = 1, better = "higher", target = null } = {}) {
  const ratio = ssh && airlock ? airlock / ssh : null;
  let goal = "";
  if (target !== null) {
    const met = ratio === null ? null : better === "higher" ? ratio >= target : ratio <= target;
    goal = `${better === "higher" ? "≥" : "≤"} ${target.toFixed(2)} ${met === null ? "?" : met ? "met" : "MISSED"}`;
  }
  return [label, fmt(direct, digits), fmt(ssh, digits), fmt(airlock, digits), ratio === null ? "n/a" : ratio.toFixed(2), goal];
}

/** An RSS row against an upper bound in MB. */
export function rssRow(label, bytes, limitMB, note = "") {
  const v = bytes === null || bytes === undefined ? null : bytes / MB;
  const goal = limitMB === null ? "" : `< ${limitMB} ${v === null ? "?" : v < limitMB ? "met" : "MISSED"}`;
  return [label, fmt(v), goal, note];
}
