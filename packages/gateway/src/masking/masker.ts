import * as aws from "./detectors/aws.js";
import * as email from "./detectors/email.js";
import * as entropy from "./detectors/entropy.js";
import * as iban from "./detectors/iban.js";
import * as ip from "./detectors/ip.js";
import * as jwt from "./detectors/jwt.js";
import * as luhn from "./detectors/luhn.js";
import * as pem from "./detectors/pem.js";
import * as phone from "./detectors/phone.js";
import * as ssn from "./detectors/ssn.js";
import type { Detect, Match } from "./detectors/types.js";
import { applyStrategy, validateStrategy, type Strategy } from "./strategies.js";

export type { Match } from "./detectors/types.js";

// Order matters only to break ties between equally long overlapping matches: the
// more specific, validated detectors come first and the generic entropy one last.
export const DETECTORS = {
  pem: pem.detect,
  jwt: jwt.detect,
  aws: aws.detect,
  iban: iban.detect,
  card: luhn.detect,
  ssn: ssn.detect,
  email: email.detect,
  ip: ip.detect,
  phone: phone.detect,
  entropy: entropy.detect,
} satisfies Record<string, Detect>;

export type DetectorName = keyof typeof DETECTORS;

export interface ColumnRule {
  /** "schema.table.column" or a glob (* and ?), case-insensitive. A pattern without a
   * dot is also tried against the bare column name, so "email" matches "public.users.email". */
  match: string;
  strategy: Strategy;
  /** Principals in any of these groups skip this column rule (content detection still applies). */
  exemptGroups?: string[];
}

export interface MaskingRules {
  /** Detectors default to on; set `false` to turn one off. */
  detectors?: Partial<Record<DetectorName, boolean>>;
  /** Strategy per match kind ("email", "card", "aws_secret_key", …). */
  strategies?: Record<string, Strategy>;
  /** For kinds without an entry in `strategies`. Default: redact "****". */
  defaultStrategy?: Strategy;
  columns?: ColumnRule[];
  /** Principals in any of these groups see values unmasked in maskValue. */
  exemptGroups?: string[];
}

export interface Masker {
  detect(text: string): Match[];
  maskText(text: string): string;
  maskValue(columnName: string, text: string, groups?: readonly string[]): string;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

/** Keep the longest match at every position; ties go to the earlier start, then detector order. */
export function resolveOverlaps(matches: Match[]): Match[] {
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

export function createMasker(rules: MaskingRules = {}): Masker {
  const defaultStrategy: Strategy = rules.defaultStrategy ?? { type: "redact" };
  const strategies = { ...(rules.strategies ?? {}) };
  for (const s of [defaultStrategy, ...Object.values(strategies), ...(rules.columns ?? []).map((c) => c.strategy)]) {
    validateStrategy(s);
  }
  const active: Detect[] = (Object.keys(DETECTORS) as DetectorName[])
    .filter((name) => rules.detectors?.[name] !== false)
    .map((name) => DETECTORS[name]);
  // Compile once: maskValue runs per cell, so per-call regex construction would dominate.
  const columns = (rules.columns ?? []).map((c) => ({
    re: globToRegExp(c.match),
    bare: !c.match.includes("."),
    strategy: c.strategy,
    exempt: new Set(c.exemptGroups ?? []),
  }));
  const exempt = new Set(rules.exemptGroups ?? []);

  function detect(text: string): Match[] {
    const all: Match[] = [];
    for (const d of active) all.push(...d(text));
    return resolveOverlaps(all);
  }

  function maskText(text: string): string {
    const matches = detect(text);
    if (matches.length === 0) return text;
    let out = "";
    let pos = 0;
    for (const m of matches) {
      const strategy = strategies[m.kind] ?? defaultStrategy;
      out += text.slice(pos, m.start) + applyStrategy(strategy, text.slice(m.start, m.end), m.kind);
      pos = m.end;
    }
    return out + text.slice(pos);
  }

  function maskValue(columnName: string, text: string, groups: readonly string[] = []): string {
    if (groups.some((g) => exempt.has(g))) return text;
    const bareName = columnName.slice(columnName.lastIndexOf(".") + 1);
    for (const c of columns) {
      if (!(c.re.test(columnName) || (c.bare && c.re.test(bareName)))) continue;
      if (groups.some((g) => c.exempt.has(g))) continue;
      return applyStrategy(c.strategy, text, "column");
    }
    return maskText(text);
  }

  return { detect, maskText, maskValue };
}
