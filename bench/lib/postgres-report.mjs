// Printed report of `pnpm bench postgres`: markdown-style tables like the
// tunnel bench, targets as met/MISSED (never failing the run).
import { fmt, MB, table } from "./report.mjs";

export const TARGETS = {
  /** airlock TPS / pgbouncer TPS at this many clients. */
  tpsRatio: { clients: 8, min: 0.5 },
  /** airlock p50 − direct p50, in ms, for cells with at most maxClients clients (beyond, the 2-core box is saturated and queueing dominates). */
  p50Delta: { maxClients: 8, maxMs: 1 },
  rowsPerSec: 200_000,
  rssGrowthMB: 64,
};

const mark = (ok) => (ok === null ? "?" : ok ? "met" : "MISSED");
const cellName = (c) => `${c.workload === "select" ? "-S" : "-N"} ${c.mode} c=${c.clients}`;

export function printReport(res) {
  const sys = Object.keys(res.systems).filter((s) => !res.systems[s].skipped);
  const out = [];
  const v = (c, s, f) => {
    const r = c.results[s];
    return !r ? null : r.error ? "FAILED" : f(r);
  };
  const num = (x, d) => (typeof x === "string" ? x : fmt(x, d));
  out.push("");
  out.push(`Postgres benchmark${res.quick ? " (QUICK: short cells, not comparable to targets)" : ""} — node ${res.env.node}, ${res.env.cpus} CPUs, PostgreSQL ${res.env.postgres}, ${res.env.pgbench}`);
  out.push(`pgbench scale ${res.config.scale}, ${res.config.seconds} s per cell, -j = min(clients, 2), -n (tables reset directly before every run)`);
  // Client, proxies and server share the machine's cores: other load skews every figure.
  out.push(`load average (1 min) at start ${fmt(res.env.loadavgAtStart[0], 2)}, at end ${fmt(res.env.loadavgAtEnd?.[0], 2)}`);
  out.push(`paths: ${sys.map((s) => `${s} (${describe(s, res.systems[s])})`).join("; ")}`);
  for (const [s, info] of Object.entries(res.systems)) if (info.skipped) out.push(`${s} skipped: ${info.skipped}`);
  out.push("");

  const tpsRows = res.cells.map((c) => {
    const a = c.results.airlock;
    const b = c.results.pgbouncer;
    const ratio = a?.tps && b?.tps && !a.error && !b.error ? a.tps / b.tps : null;
    const goal = c.clients === TARGETS.tpsRatio.clients && a && b ? `≥ ${TARGETS.tpsRatio.min.toFixed(2)} ${mark(ratio === null ? null : ratio >= TARGETS.tpsRatio.min)}` : "";
    return [cellName(c), ...sys.map((s) => num(v(c, s, (r) => r.tps), 0)), ratio === null ? "n/a" : ratio.toFixed(2), goal];
  });
  out.push("(a) pgbench throughput, transactions/s:");
  out.push(table(["cell", ...sys, "airlock/pgbouncer", "target"], tpsRows));
  out.push("");

  const latRows = res.cells.map((c) => {
    const a = c.results.airlock;
    const d = c.results.direct;
    const delta = a?.p50Ms !== undefined && d?.p50Ms !== undefined && !a.error && !d.error ? a.p50Ms - d.p50Ms : null;
    const goal = c.clients <= TARGETS.p50Delta.maxClients && a && d ? `≤ ${TARGETS.p50Delta.maxMs.toFixed(2)} ms ${mark(delta === null ? null : delta <= TARGETS.p50Delta.maxMs)}` : "";
    return [cellName(c), ...sys.map((s) => num(v(c, s, (r) => r.p50Ms), 3)), ...sys.map((s) => num(v(c, s, (r) => r.p99Ms), 3)), delta === null ? "n/a" : delta.toFixed(3), goal];
  });
  out.push("(a) pgbench latency per transaction, ms (from the -l per-transaction log):");
  out.push(table(["cell", ...sys.map((s) => `p50 ${s}`), ...sys.map((s) => `p99 ${s}`), "airlock−direct p50", "target"], latRows));
  const failed = res.cells.flatMap((c) => Object.entries(c.results).filter(([, r]) => r.error).map(([s, r]) => `${cellName(c)} ${s}: ${r.error.split("\n")[0]}`));
  if (failed.length) out.push(`failed runs:\n  ${failed.join("\n  ")}`);
  const cpu = res.cells.filter((c) => c.results.airlock?.cpuSeconds && !c.results.airlock.error);
  if (cpu.length) {
    out.push(
      `airlock CPU per 1,000 transactions (gateway / agent, ms): ${cpu
        .map((c) => {
          const r = c.results.airlock;
          const k = (x) => ((1000 * x) / (r.transactions || 1)) * 1000;
          return `${cellName(c)} ${fmt(k(r.cpuSeconds.gateway), 0)}/${fmt(k(r.cpuSeconds.agent), 0)}`;
        })
        .join("; ")}`,
    );
  }
  out.push("");

  const R = res.rows;
  if (R.direct || R.airlock) {
    out.push(`(b) ${res.config.rows.toLocaleString("en")}-row customer result (node-postgres, rows streamed, none kept):`);
    const rps = (r) => (r ? r.rows / (r.ms / 1000) : null);
    const rows = [];
    if (R.direct) rows.push(["direct rows/s", fmt(rps(R.direct), 0), "", `${fmt(R.direct.ms / 1000, 2)} s`]);
    if (R.airlock) {
      const a = R.airlock;
      const growth = (x) => (x.max !== null && x.first !== null ? x.max - x.first : null);
      rows.push(["airlock rows/s (masked)", fmt(rps(a), 0), `≥ ${TARGETS.rowsPerSec.toLocaleString("en")} ${mark(rps(a) >= TARGETS.rowsPerSec)}`, `${fmt(a.ms / 1000, 2)} s; ${R.direct ? `${fmt(rps(a) / rps(R.direct), 2)} × direct` : ""}`]);
      const g = growth(a.rss.gateway);
      rows.push(["gateway RSS growth, MB", fmt(g / MB), `< ${TARGETS.rssGrowthMB} ${mark(g === null ? null : g / MB < TARGETS.rssGrowthMB)}`, `before ${fmt(a.rss.gateway.first / MB)}, max ${fmt(a.rss.gateway.max / MB)} (${a.rss.gateway.samples.length} samples, every ${a.rss.gateway.intervalMs} ms)`]);
      rows.push(["agent RSS growth, MB", fmt(growth(a.rss.agent) / MB), "", `before ${fmt(a.rss.agent.first / MB)}, max ${fmt(a.rss.agent.max / MB)}`]);
      rows.push(["CPU seconds gateway / agent", `${fmt(a.cpuSeconds.gateway, 2)} / ${fmt(a.cpuSeconds.agent, 2)}`, "", ""]);
    }
    out.push(table(["measurement", "value", "target", "note"], rows));
    const m = R.masking;
    if (m) {
      const changed = Object.entries(m.changed).map(([c, n]) => `${c} ${n}/${m.compared}`).join(", ");
      const ok = m.compared > 0 && m.emailsPartial === m.compared && m.cardsLeaked === 0 && m.changed.phone === m.compared && m.changed.full_name === m.compared;
      out.push(`masking check on ${m.compared} sampled rows (same ids read directly): values changed — ${changed}; emails "****@domain" ${m.emailsPartial}/${m.compared}; full card numbers seen ${m.cardsLeaked} → ${ok ? "masked as configured" : "NOT MASKED AS CONFIGURED"}`);
      if (m.examples[0]) out.push(`  e.g. ${JSON.stringify(m.examples[0])}`);
    }
    out.push("");
  }
  if (res.recorded) {
    const r = res.recorded;
    out.push(`statements recorded by the gateway: ${Array.isArray(r) ? r.map((x) => `${x.count} ${x.decision}/${x.status}`).join(", ") || "none" : `could not read (${r.error})`}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

function describe(name, s) {
  if (name === "direct") return "libpq → PostgreSQL, no TLS (ssl = off)";
  if (name === "pgbouncer") return `${s.version}, ${s.poolMode} pooling, client TLS`;
  return "TLS → gateway front door (parse, Cedar, mask, record) → agent → PostgreSQL";
}
