// Shared plumbing for masking COPY TO STDOUT rows (copy-text.ts = entry point and text format,
// copy-csv.ts = CSV format): the compiled options and the splice that rebuilds a changed row.
import { AirlockError } from "@airlock/shared";
import { ContentMasker, type ColumnMasker } from "./content.js";

/**
 * The COPY options that shape text/CSV output, as given in the statement's WITH (…) clause.
 * Spec: https://www.postgresql.org/docs/current/sql-copy.html ("Parameters", "File Formats").
 */
export interface CopyFormatOptions {
  format: "text" | "csv";
  /** One single-byte character. Default tab (text) or "," (csv). */
  delimiter?: string;
  /** The NULL marker. Default "\N" (text) or "" (csv, an unquoted empty field). */
  null?: string;
  /** csv only: one single-byte character, default '"'. */
  quote?: string;
  /** csv only: one single-byte character, default the quote character. */
  escape?: string;
}

export interface CompiledCopyFormat {
  csv: boolean;
  delimiter: number;
  nullMarker: Buffer;
  quote: number;
  escape: number;
}

export const LF = 0x0a;
export const CR = 0x0d;
export const BACKSLASH = 0x5c;

function oneByte(name: string, value: string): number {
  const c = value.charCodeAt(0);
  if (value.length !== 1 || c > 0x7f) {
    throw new AirlockError("MASKING_UNSUPPORTED", `COPY ${name} must be a single one-byte character to be masked`);
  }
  return c;
}

const TEXT_FORBIDDEN_DELIMITERS = "\\.abcdefghijklmnopqrstuvwxyz0123456789";

function compile(o: CopyFormatOptions): CompiledCopyFormat {
  const csv = o.format === "csv";
  const quote = oneByte("QUOTE", o.quote ?? '"');
  const f: CompiledCopyFormat = {
    csv,
    delimiter: oneByte("DELIMITER", o.delimiter ?? (csv ? "," : "\t")),
    nullMarker: Buffer.from(o.null ?? (csv ? "" : "\\N"), "utf8"),
    quote,
    escape: o.escape === undefined ? quote : oneByte("ESCAPE", o.escape),
  };
  // Postgres refuses these too (copy.c, ProcessCopyOptions); with them a row could not be split
  // unambiguously, e.g. a text-format delimiter "n" against the "\n" escape.
  const d = String.fromCharCode(f.delimiter);
  if (d === "\n" || d === "\r" || (!csv && TEXT_FORBIDDEN_DELIMITERS.includes(d)) || (csv && f.delimiter === f.quote)) {
    throw new AirlockError("MASKING_UNSUPPORTED", "COPY delimiter conflicts with the format's special characters");
  }
  return f;
}

const TEXT_DEFAULT = compile({ format: "text" });
const CSV_DEFAULT = compile({ format: "csv" });
// Per options object, so a caller that keeps one object for the whole COPY compiles once (do not
// mutate it afterwards).
const compiled = new WeakMap<CopyFormatOptions, CompiledCopyFormat>();

export function compileCopyFormat(o: CopyFormatOptions): CompiledCopyFormat {
  if (o.delimiter === undefined && o.null === undefined && o.quote === undefined && o.escape === undefined) {
    return o.format === "csv" ? CSV_DEFAULT : TEXT_DEFAULT;
  }
  let f = compiled.get(o);
  if (!f) {
    f = compile(o);
    compiled.set(o, f);
  }
  return f;
}

/** The masker for column i of a row: an explicit null means "leave alone", a missing entry the fallback. */
export function maskerAt(columns: readonly (ColumnMasker | null | undefined)[], i: number, fallback: ColumnMasker | null): ColumnMasker | null {
  const m = columns[i];
  return m === undefined ? fallback : m;
}

export function isNullField(row: Buffer, start: number, end: number, marker: Buffer): boolean {
  if (end - start !== marker.length) return false;
  for (let i = 0; i < marker.length; i++) if (row[start + i] !== marker[i]) return false;
  return true;
}

/** Rebuilds a row from its untouched stretches and replaced fields; allocates only on the first change. */
export class RowSplice {
  private parts: Buffer[] | null = null;
  private copied = 0;
  masked = 0;

  constructor(private readonly row: Buffer) {}

  replace(start: number, end: number, encoded: Buffer): void {
    (this.parts ??= []).push(this.row.subarray(this.copied, start), encoded);
    this.copied = end;
    this.masked++;
  }

  result(): { row: Buffer; masked: number } {
    if (!this.parts) return { row: this.row, masked: 0 };
    this.parts.push(this.row.subarray(this.copied));
    return { row: Buffer.concat(this.parts), masked: this.masked };
  }
}

/** Masks row[start, end) as one value; content maskers scan it in place, without a view. */
export function maskField(masker: ColumnMasker, row: Buffer, start: number, end: number): Buffer | null {
  return masker instanceof ContentMasker ? masker.maskRange(row, start, end) : masker.maskBytes(row.subarray(start, end));
}
