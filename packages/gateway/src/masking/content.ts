// Content masking: find sensitive spans with the detectors and replace each by its kind's
// strategy. Every entry point scans the value first (prefilter.ts) and runs only the detectors
// whose mayMatch holds, so the common non-sensitive value costs one pass and no decoding.
import { DETECTOR_NAMES, DETECTORS, candidateMask, type DetectorName } from "./detectors/index.js";
import type { Detect, Features, Match } from "./detectors/types.js";
import { scanBytes, scanText } from "./prefilter.js";
import { applyStrategy, type Strategy } from "./strategies.js";

/** Masks the values of one result column (or free text). Returned buffers may be shared: do not mutate them. */
export interface ColumnMasker {
  /** Masks one text value (UTF-8 string). */
  maskText(text: string): string;
  /**
   * Masks a UTF-8 encoded value; returns null when the value is unchanged (the common case: no
   * allocation). When it changes, the result is Buffer.from(maskText(value.toString("utf8"))).
   */
  maskBytes(value: Buffer): Buffer | null;
}

/** Keep the longest match at every position; ties go to the earlier start, then detector order. */
export function resolveOverlaps(matches: Match[]): Match[] {
  if (matches.length === 1 && (matches[0] as Match).end > (matches[0] as Match).start) return matches; // the common case
  const ranked = matches
    .map((m, i) => ({ m, i }))
    .sort((a, b) => b.m.end - b.m.start - (a.m.end - a.m.start) || a.m.start - b.m.start || a.i - b.i);
  const kept: Match[] = [];
  for (const { m } of ranked) {
    if (m.end <= m.start) continue;
    if (!kept.some((k) => m.start < k.end && k.start < m.end)) kept.push(m);
  }
  return kept.sort((a, b) => a.start - b.start);
}

export class ContentMasker implements ColumnMasker {
  /** Bit i set: detector i (DETECTORS order) is on. */
  private readonly enabled: number;
  /** Bit i set: detector i may match the value just scanned. */
  private candidates = 0;
  private readonly detects: readonly Detect[] = DETECTOR_NAMES.map((n) => DETECTORS[n].detect);

  constructor(
    enabled: readonly DetectorName[],
    private readonly strategyFor: (kind: string) => Strategy,
  ) {
    this.enabled = DETECTOR_NAMES.reduce((m, n, i) => (enabled.includes(n) ? m | (1 << i) : m), 0);
  }

  /** All matches, overlaps resolved. Same result as running every enabled detector, only faster. */
  detect(text: string): Match[] {
    return this.pick(scanText(text)) ? this.run(text) : [];
  }

  maskText(text: string): string {
    if (!this.pick(scanText(text))) return text;
    return this.replace(text, this.run(text));
  }

  maskBytes(value: Buffer): Buffer | null {
    return this.maskRange(value, 0, value.length);
  }

  /** maskBytes of buf[start, end) without making a view of it first (COPY fields). */
  maskRange(buf: Buffer, start: number, end: number): Buffer | null {
    if (!this.pick(scanBytes(buf, start, end))) return null;
    const text = buf.toString("utf8", start, end);
    const matches = this.run(text);
    if (matches.length === 0) return null;
    const out = this.replace(text, matches);
    return out === text ? null : Buffer.from(out, "utf8");
  }

  /** Records which detectors may match; false when none can (the fast path). */
  private pick(features: Readonly<Features>): boolean {
    this.candidates = candidateMask(features, this.enabled);
    return this.candidates !== 0;
  }

  private run(text: string): Match[] {
    const bits = this.candidates;
    const all: Match[] = [];
    for (let i = 0; i < this.detects.length; i++) {
      if (bits & (1 << i)) for (const m of (this.detects[i] as Detect)(text)) all.push(m);
    }
    return all.length === 0 ? all : resolveOverlaps(all);
  }

  private replace(text: string, matches: readonly Match[]): string {
    if (matches.length === 0) return text;
    let out = "";
    let pos = 0;
    for (const m of matches) {
      out += text.slice(pos, m.start) + applyStrategy(this.strategyFor(m.kind), text.slice(m.start, m.end), m.kind);
      pos = m.end;
    }
    return out + text.slice(pos);
  }
}
