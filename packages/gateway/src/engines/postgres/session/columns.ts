// Per-result masking plan: which masker runs on each column of a RowDescription,
// and how each value is laid out on the wire (text, or one of the binary forms
// whose bytes are text). Binary values of other types cannot be masked in place.
import type { ColumnMasker, Masker } from "../../../masking/masker.js";
import type { FieldDescription } from "../protocol/index.js";

/** How a column's values are masked. */
export type ColumnMode =
  | { kind: "none" }
  | { kind: "text"; masker: ColumnMasker } // text format, or binary whose bytes are the text
  | { kind: "jsonb"; masker: ColumnMasker } // binary jsonb: version byte 1, then the JSON text
  | { kind: "refuse"; column: string }; // a column rule applies but the binary value is opaque

// Types whose binary send format is their UTF-8 text (textsend/varcharsend/namesend/xml/json),
// and bytea whose binary form is its raw bytes (detectors see them as latin-1-ish text).
const BINARY_AS_TEXT = new Set([25, 1043, 1042, 19, 18, 705, 114, 142, 17]);
const JSONB = 3802;

export interface ColumnPlan {
  modes: ColumnMode[];
  /** True when no column needs work: rows are forwarded untouched. */
  passthrough: boolean;
  /** First column that must be refused, if any. */
  refuse: string | null;
}

/**
 * `resolveName` maps a field to "schema.table.column" when known; otherwise the field's
 * own (possibly aliased) name is used, which column-name patterns such as `*email*` still match.
 */
export function planColumns(
  fields: readonly FieldDescription[],
  masker: Masker,
  groups: readonly string[],
  resolveName: (f: FieldDescription) => string = (f) => f.name,
): ColumnPlan {
  const modes: ColumnMode[] = [];
  let refuse: string | null = null;
  for (const f of fields) {
    const name = resolveName(f);
    const m = masker.forColumn(name, groups);
    if (!m) {
      modes.push({ kind: "none" });
      continue;
    }
    if (f.format === 0 || BINARY_AS_TEXT.has(f.dataTypeOid)) modes.push({ kind: "text", masker: m });
    else if (f.dataTypeOid === JSONB) modes.push({ kind: "jsonb", masker: m });
    else if (masker.hasColumnRule(name, groups)) {
      // A rule says this column is sensitive, but its binary value (a number, date, …) has
      // no text we could rewrite: refuse rather than leak.
      modes.push({ kind: "refuse", column: name });
      refuse ??= name;
    } else modes.push({ kind: "none" }); // content detectors only look at text
  }
  return { modes, passthrough: modes.every((m) => m.kind === "none"), refuse };
}

/** Masks one DataRow's values in place; returns how many values changed. */
export function maskRow(values: (Buffer | null)[], plan: ColumnPlan): number {
  let changed = 0;
  const n = Math.min(values.length, plan.modes.length);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    const mode = plan.modes[i]!;
    if (mode.kind === "text") {
      const out = mode.masker.maskBytes(v);
      if (out) {
        values[i] = out;
        changed++;
      }
    } else if (mode.kind === "jsonb" && v.length > 1) {
      const out = mode.masker.maskBytes(v.subarray(1));
      if (out) {
        values[i] = Buffer.concat([v.subarray(0, 1), out]);
        changed++;
      }
    }
  }
  return changed;
}
