import { ContentMasker, type ColumnMasker } from "./content.js";
import { DETECTOR_NAMES, type DetectorName } from "./detectors/index.js";
import type { Match } from "./detectors/types.js";
import { applyStrategy, validateStrategy, type Strategy } from "./strategies.js";

export type { Match } from "./detectors/types.js";
export type { ColumnMasker } from "./content.js";
export { resolveOverlaps } from "./content.js";
export { DETECTORS, type DetectorName } from "./detectors/index.js";

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
  /**
   * For one result column (qualified "schema.table.column" when known, else the bare name) and
   * the principal's groups: null when nothing can change this column's values (exempt, or no
   * column rule and no detectors on). Resolve once per result, then mask every row with it.
   */
  forColumn(columnName: string, groups: readonly string[]): ColumnMasker | null;
  /**
   * Content-only masking for free text such as error messages and COPY rows with unknown
   * columns: forColumn("", groups) without the column rules.
   */
  content(groups?: readonly string[]): ColumnMasker | null;
  /**
   * True when a column rule (not content detection) decides this column for these groups: its
   * values must be masked whatever they hold, so a caller that cannot rewrite them must refuse.
   */
  hasColumnRule(columnName: string, groups: readonly string[]): boolean;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

/** A column rule's masker: the whole value is replaced, whatever it holds. */
class RuleMasker implements ColumnMasker {
  /** Set when the result does not depend on the value ("****"), so it is encoded once. */
  private readonly constant: Buffer | null;

  constructor(private readonly strategy: Strategy) {
    this.constant = strategy.type === "redact" && strategy.sameLength !== true ? Buffer.from(applyStrategy(strategy, "", "column")) : null;
  }

  maskText(text: string): string {
    return applyStrategy(this.strategy, text, "column");
  }

  maskBytes(value: Buffer): Buffer | null {
    if (this.constant) return value.equals(this.constant) ? null : this.constant;
    const text = value.toString("utf8");
    const out = this.maskText(text);
    return out === text ? null : Buffer.from(out, "utf8");
  }
}

export function createMasker(rules: MaskingRules = {}): Masker {
  const defaultStrategy: Strategy = rules.defaultStrategy ?? { type: "redact" };
  const strategies = { ...(rules.strategies ?? {}) };
  for (const s of [defaultStrategy, ...Object.values(strategies), ...(rules.columns ?? []).map((c) => c.strategy)]) {
    validateStrategy(s);
  }
  const active = DETECTOR_NAMES.filter((name) => rules.detectors?.[name] !== false);
  const contentMasker = new ContentMasker(active, (kind) => strategies[kind] ?? defaultStrategy);
  const contentOrNull = active.length > 0 ? contentMasker : null;
  // Compile once: maskValue runs per cell, so per-call regex construction would dominate.
  const columns = (rules.columns ?? []).map((c) => ({
    re: globToRegExp(c.match),
    bare: !c.match.includes("."),
    masker: new RuleMasker(c.strategy),
    exempt: new Set(c.exemptGroups ?? []),
  }));
  const exempt = new Set(rules.exemptGroups ?? []);

  function content(groups: readonly string[] = []): ColumnMasker | null {
    return groups.some((g) => exempt.has(g)) ? null : contentOrNull;
  }

  /** The column rule that decides this column for these groups, if any (global exemption aside). */
  function ruleFor(columnName: string, groups: readonly string[]): RuleMasker | null {
    const bareName = columnName.slice(columnName.lastIndexOf(".") + 1);
    for (const c of columns) {
      if (!(c.re.test(columnName) || (c.bare && c.re.test(bareName)))) continue;
      // A per-rule exemption skips only this rule: later rules and content detection still apply.
      if (groups.some((g) => c.exempt.has(g))) continue;
      return c.masker;
    }
    return null;
  }

  function forColumn(columnName: string, groups: readonly string[]): ColumnMasker | null {
    if (groups.some((g) => exempt.has(g))) return null;
    return ruleFor(columnName, groups) ?? contentOrNull;
  }

  function hasColumnRule(columnName: string, groups: readonly string[]): boolean {
    return !groups.some((g) => exempt.has(g)) && ruleFor(columnName, groups) !== null;
  }

  return {
    detect: (text) => contentMasker.detect(text),
    maskText: (text) => contentMasker.maskText(text),
    maskValue: (columnName, text, groups = []) => forColumn(columnName, groups)?.maskText(text) ?? text,
    forColumn,
    hasColumnRule,
    content,
  };
}
