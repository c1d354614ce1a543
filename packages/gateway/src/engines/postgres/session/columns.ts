// Per-result masking plan: which masker runs on each column of a RowDescription,
// and how each value is laid out on the wire (text, or one of the binary forms
// whose bytes are text). Binary values of other types cannot be masked in place:
// under a column rule they are refused; under content detection, integers and
// numerics are decoded and refused only if a detector would change their text,
// types that cannot hold detectable text pass, and every other type (inet,
// arrays, composites, domains, extension types…) is refused, because its binary
// form would carry what the text form has masked.
// Binary formats: https://github.com/postgres/postgres/tree/master/src/backend/utils/adt (*send functions).
import type { ColumnMasker, Masker } from "../../../masking/masker.js";
import type { FieldDescription } from "../protocol/index.js";

/** How a column's values are masked. */
export type ColumnMode =
  | { kind: "none" }
  | { kind: "text"; masker: ColumnMasker } // text format, or binary whose bytes are the text
  | { kind: "jsonb"; masker: ColumnMasker } // binary jsonb: version byte 1, then the JSON text
  | { kind: "check"; masker: ColumnMasker; column: string; toText: (v: Buffer) => string | null } // binary number: refuse if its text would be masked
  | { kind: "refuse"; column: string }; // the binary value is opaque and must not pass

// Types whose binary send format is their UTF-8 text (textsend/varcharsend/namesend/xml/json),
// and bytea whose binary form is its raw bytes (detectors see them as latin-1-ish text).
const BINARY_AS_TEXT = new Set([25, 1043, 1042, 19, 18, 705, 114, 142, 17]);
const JSONB = 3802;
// bool, oid, xid, cid, float4/8, date, time(tz), timestamp(tz), interval, uuid: their text forms
// hold no digit run, address or word a content detector could match.
const NO_CONTENT = new Set([16, 26, 28, 29, 700, 701, 1082, 1083, 1266, 1114, 1184, 1186, 2950]);

/** int2/int4/int8 (big-endian two's complement) and numeric, as their text forms; null if malformed. */
const NUMBER_TEXT: Record<number, (v: Buffer) => string | null> = {
  21: (v) => (v.length === 2 ? String(v.readInt16BE(0)) : null),
  23: (v) => (v.length === 4 ? String(v.readInt32BE(0)) : null),
  20: (v) => (v.length === 8 ? v.readBigInt64BE(0).toString() : null),
  1700: numericText,
};

/**
 * numeric_send: Int16 ndigits, Int16 weight, Int16 sign (0 +, 0x4000 -, 0xC000 NaN, 0xD000 +Inf,
 * 0xF000 -Inf), Int16 dscale, Int16[ndigits] base-10000 digits; the first has weight `weight`.
 */
export function numericText(v: Buffer): string | null {
  if (v.length < 8) return null;
  const ndigits = v.readInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  const dscale = v.readInt16BE(6);
  if (ndigits < 0 || v.length !== 8 + 2 * ndigits || dscale < 0) return null;
  if (sign === 0xc000) return "NaN";
  if (sign === 0xd000) return "Infinity";
  if (sign === 0xf000) return "-Infinity";
  const digit = (i: number) => (i >= 0 && i < ndigits ? v.readInt16BE(8 + 2 * i) : 0);
  let int = "";
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, "0");
  let frac = "";
  for (let i = weight + 1; frac.length < dscale; i++) frac += String(digit(i)).padStart(4, "0");
  return (sign === 0x4000 ? "-" : "") + (int || "0") + (dscale > 0 ? `.${frac.slice(0, dscale)}` : "");
}

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
    } else if (NO_CONTENT.has(f.dataTypeOid)) modes.push({ kind: "none" });
    else if (NUMBER_TEXT[f.dataTypeOid]) modes.push({ kind: "check", masker: m, column: name, toText: NUMBER_TEXT[f.dataTypeOid]! });
    else {
      modes.push({ kind: "refuse", column: name });
      refuse ??= name;
    }
  }
  return { modes, passthrough: modes.every((m) => m.kind === "none"), refuse };
}

/**
 * Masks one DataRow's values in place; returns how many values changed, or the column whose
 * value must not be sent (then the caller refuses the whole result).
 */
export function maskRow(values: (Buffer | null)[], plan: ColumnPlan): number | { refuse: string } {
  // A row that does not match its description cannot be masked column by column.
  if (values.length !== plan.modes.length) return { refuse: `(row of ${values.length} values for ${plan.modes.length} columns)` };
  let changed = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    const mode = plan.modes[i]!;
    if (mode.kind === "text") {
      const out = mode.masker.maskBytes(v);
      if (out) {
        values[i] = out;
        changed++;
      }
    } else if (mode.kind === "jsonb") {
      if (v[0] !== 1) return { refuse: `(jsonb binary version ${v[0]})` };
      const out = mode.masker.maskBytes(v.subarray(1));
      if (out) {
        values[i] = Buffer.concat([v.subarray(0, 1), out]);
        changed++;
      }
    } else if (mode.kind === "check") {
      const text = mode.toText(v);
      if (text === null || mode.masker.maskText(text) !== text) return { refuse: mode.column };
    } else if (mode.kind === "refuse") return { refuse: mode.column };
  }
  return changed;
}
