// CSV format of COPY TO STDOUT (https://www.postgresql.org/docs/current/sql-copy.html, "CSV Format"):
//   row   = field *(DELIMITER field) "\n"   (DELIMITER default ",")
//   field = unquoted bytes and QUOTE…QUOTE sections (QUOTE default '"'); inside a section,
//           ESCAPE followed by QUOTE or ESCAPE stands for that character (ESCAPE defaults to QUOTE,
//           so "" is a quote), and DELIMITER and newlines are data.
//   NULL  = an unquoted field equal to the NULL marker (default: empty), so "" is an empty string.
// Parsing follows Postgres's CopyReadAttributesCSV; re-encoding follows CopyAttributeOutCSV.
import { AirlockError } from "@airlock/shared";
import type { ColumnMasker } from "./content.js";
import { CR, LF, RowSplice, isNullField, maskField, maskerAt, type CompiledCopyFormat } from "./copy-row.js";

export function maskCsvRows(
  row: Buffer,
  f: CompiledCopyFormat,
  columns: readonly (ColumnMasker | null | undefined)[],
  fallback: ColumnMasker | null,
): { row: Buffer; masked: number } {
  const splice = new RowSplice(row);
  const n = row.length;
  let pos = 0;
  let col = 0;
  while (pos < n) {
    const start = pos;
    let quoted = false;
    while (pos < n) {
      const c = row[pos];
      if (c === f.delimiter || c === LF) break;
      if (c === f.quote) {
        quoted = true;
        pos = skipQuoted(row, pos + 1, f);
      } else pos++;
    }
    const masker = maskerAt(columns, col, fallback);
    if (masker && (quoted || !isNullField(row, start, pos, f.nullMarker))) {
      const out = quoted ? masker.maskBytes(unquote(row, start, pos, f)) : maskField(masker, row, start, pos);
      if (out) splice.replace(start, pos, quoteCsv(out, f, quoted));
    }
    if (pos >= n) break;
    col = row[pos] === LF ? 0 : col + 1;
    pos++;
  }
  return splice.result();
}

/** From just after an opening quote to just after its closing quote. */
function skipQuoted(row: Buffer, pos: number, f: CompiledCopyFormat): number {
  while (pos < row.length) {
    const c = row[pos++];
    if (c === f.escape && pos < row.length && (row[pos] === f.quote || row[pos] === f.escape)) pos++;
    else if (c === f.quote) return pos;
  }
  // A server never sends this; without the closing quote the field boundaries are unknown, and
  // guessing them could forward an unmasked value.
  throw new AirlockError("TARGET_PROTOCOL_ERROR", "unterminated quoted field in CSV COPY data");
}

/** The value of a field that has quoted sections: quotes removed, escapes resolved. */
export function unquote(row: Buffer, start: number, end: number, f: CompiledCopyFormat): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  let inQuote = false;
  for (let i = start; i < end; i++) {
    const c = row[i] as number;
    if (inQuote && c === f.escape && i + 1 < end && (row[i + 1] === f.quote || row[i + 1] === f.escape)) {
      out[o++] = row[++i] as number;
    } else if (c === f.quote) inQuote = !inQuote;
    else out[o++] = c;
  }
  return out.subarray(0, o);
}

const BACKSLASH_DOT = Buffer.from("\\.");

/**
 * Encodes a masked value. Quoted when it must be (delimiter, quote, CR or LF inside; equal to the
 * NULL marker, so it is not read back as NULL; "\." which could read as end-of-data) or when the
 * original field was (FORCE_QUOTE output keeps its shape).
 */
export function quoteCsv(value: Buffer, f: CompiledCopyFormat, wasQuoted: boolean): Buffer {
  const needs =
    wasQuoted ||
    value.equals(f.nullMarker) ||
    value.equals(BACKSLASH_DOT) ||
    value.some((c) => c === f.delimiter || c === f.quote || c === LF || c === CR);
  if (!needs) return value;
  const out: number[] = [f.quote];
  for (const c of value) {
    if (c === f.quote || c === f.escape) out.push(f.escape);
    out.push(c);
  }
  out.push(f.quote);
  return Buffer.from(out);
}
