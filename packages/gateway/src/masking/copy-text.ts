// Masking of COPY … TO STDOUT output in text and CSV format. Postgres sends one row per CopyData
// message ('d'); a buffer holding several whole rows is handled too. Only fields whose masker
// changes them are decoded, masked and re-encoded; everything else is copied byte for byte, and a
// row with no change is returned as the same Buffer. Binary COPY is not handled here: the caller
// refuses it when masking applies. The rows are assumed to be UTF-8 (client_encoding UTF8).
//
// Text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"):
//   row   = field *(DELIMITER field) "\n"          DELIMITER default tab
//   field = the NULL marker (default \N, compared before unescaping) | escaped bytes
//   escapes: \b \f \n \r \t \v, \ + 1-3 octal digits, \x + 1-2 hex digits, \ + any other
//   character = that character (so \\ and \DELIMITER). A raw newline always ends the row.
// CSV format: see copy-csv.ts.
import type { ColumnMasker } from "./content.js";
import { maskCsvRows } from "./copy-csv.js";
import { BACKSLASH, LF, RowSplice, compileCopyFormat, isNullField, maskField, maskerAt, type CompiledCopyFormat, type CopyFormatOptions } from "./copy-row.js";

export { compileCopyFormat, type CopyFormatOptions } from "./copy-row.js";

export interface CopyRowResult {
  /** The row to forward: the input Buffer itself when nothing changed. */
  row: Buffer;
  /** Values that were changed. */
  masked: number;
}

/**
 * Masks one COPY TO STDOUT row (or several whole rows). `columns[i]` masks column i; an entry
 * that is missing (undefined) uses `fallback`, an explicit null leaves the column alone. With
 * HEADER, the caller forwards the first row (column names) without calling this.
 */
export function maskCopyRow(
  row: Buffer,
  format: CopyFormatOptions,
  columns: readonly (ColumnMasker | null | undefined)[],
  fallback: ColumnMasker | null,
): CopyRowResult {
  if (fallback === null && columns.every((c) => c === null)) return { row, masked: 0 };
  const f = compileCopyFormat(format);
  return f.csv ? maskCsvRows(row, f, columns, fallback) : maskTextRows(row, f, columns, fallback);
}

function maskTextRows(row: Buffer, f: CompiledCopyFormat, columns: readonly (ColumnMasker | null | undefined)[], fallback: ColumnMasker | null): CopyRowResult {
  const splice = new RowSplice(row);
  const n = row.length;
  const delimiter = f.delimiter;
  let pos = 0;
  let col = 0;
  while (pos < n) {
    const start = pos;
    let escaped = false;
    for (; pos < n; pos++) {
      const c = row[pos];
      if (c === BACKSLASH) {
        escaped = true;
        pos++; // the escaped byte can be neither a delimiter nor a row end
      } else if (c === delimiter || c === LF) break;
    }
    const end = Math.min(pos, n);
    const masker = maskerAt(columns, col, fallback);
    if (masker && !isNullField(row, start, end, f.nullMarker)) {
      const out = escaped ? masker.maskBytes(unescapeText(row, start, end)) : maskField(masker, row, start, end);
      if (out) splice.replace(start, end, escapeText(out, delimiter));
    }
    if (pos >= n) break;
    col = row[pos] === LF ? 0 : col + 1;
    pos++;
  }
  return splice.result();
}

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = { 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11 }; // b f n r t v

const isOctal = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x37;
function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Decodes the backslash escapes of one text-format field, as Postgres's CopyReadAttributesText does. */
export function unescapeText(row: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  let i = start;
  while (i < end) {
    const c = row[i++] as number;
    if (c !== BACKSLASH || i >= end) {
      out[o++] = c; // a trailing lone backslash is kept as is
      continue;
    }
    const e = row[i++] as number;
    if (isOctal(e)) {
      let v = e - 0x30;
      for (let k = 0; k < 2 && i < end && isOctal(row[i]); k++) v = v * 8 + ((row[i++] as number) - 0x30);
      out[o++] = v & 0xff;
    } else if (e === 0x78 && i < end && hexValue(row[i]) >= 0) {
      let v = hexValue(row[i++]);
      if (i < end && hexValue(row[i]) >= 0) v = v * 16 + hexValue(row[i++]);
      out[o++] = v;
    } else out[o++] = SIMPLE_ESCAPES[e] ?? e;
  }
  return out.subarray(0, o);
}

const LETTER_FOR: Readonly<Record<number, number>> = { 8: 0x62, 12: 0x66, 10: 0x6e, 13: 0x72, 9: 0x74, 11: 0x76 };

/** Encodes a value for a text-format field exactly as Postgres's CopyAttributeOutText does. */
export function escapeText(value: Buffer, delimiter: number): Buffer {
  const special = (c: number): boolean => c === BACKSLASH || c === delimiter || LETTER_FOR[c] !== undefined;
  if (!value.some(special)) return value;
  const out: number[] = [];
  for (const c of value) {
    const letter = LETTER_FOR[c];
    if (letter !== undefined) out.push(BACKSLASH, letter);
    else if (c === BACKSLASH || c === delimiter) out.push(BACKSLASH, c);
    else out.push(c); // other control characters are sent raw
  }
  return Buffer.from(out);
}
