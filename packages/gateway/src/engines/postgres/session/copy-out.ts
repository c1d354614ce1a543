// Masking COPY … TO STDOUT. The CopyData rows carry no column names, so:
//   - the statement's own options give the row format (text/CSV, delimiter, quote, header…);
//   - when a column rule may apply to the principal, the gateway learns the columns before
//     the COPY runs: ahead of the client's Query it sends Parse(unnamed, <the COPY's query, or
//     SELECT <columns> FROM <table>>) + Describe + Sync and swallows the answers (the simple
//     Query that follows replaces the unnamed statement anyway). If that fails, or the column
//     count differs from the CopyOutResponse's, the COPY output is refused, never guessed.
//   - otherwise every field gets the content detectors.
// Binary COPY (and other encodings than UTF8) cannot be masked and is refused when masking applies.
// COPY syntax and formats: https://www.postgresql.org/docs/current/sql-copy.html
import { parseSync, scanSync } from "libpg-query";
import type { ColumnMasker } from "../../../masking/masker.js";
import { compileCopyFormat, maskCopyRow, type CopyFormatOptions } from "../../../masking/copy-text.js";
import { writeFrontend, type CopyOutResponse } from "../protocol/index.js";
import type { CopyOutState } from "./pending.js";
import type { PreparedInfo, SessionState } from "./state.js";

/** What the statement says about its output. */
export interface CopyOutSpec {
  /** null: binary, or options the masking cannot follow (reason in `unsupported`). */
  format: CopyFormatOptions | null;
  unsupported: string | null;
  header: boolean;
  /** A query with the COPY's result columns, or null when none can be written. */
  describeSql: string | null;
}

/** Per COPY statement of a simple Query: its spec and the (pending) description of its columns. */
export interface CopyPlan {
  spec: CopyOutSpec;
  columns: PreparedInfo | null;
}

type Node = Record<string, unknown>;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

function optionValue(arg: unknown): string | null {
  const a = arg as Node | undefined;
  if (!a) return null;
  const str = a.String as { sval?: string } | undefined;
  if (str) return str.sval ?? "";
  const b = a.Boolean as { boolval?: boolean } | undefined;
  if (b) return b.boolval ? "true" : "false";
  const i = a.Integer as { ival?: number } | undefined;
  if (i) return String(i.ival ?? 0);
  return null;
}

/** The text between the parentheses that follow COPY, found with the real scanner (quotes and comments included). */
function innerQuery(text: string): string | null {
  const bytes = Buffer.from(text, "utf8"); // token offsets are byte offsets
  let depth = 0;
  let start = -1;
  for (const t of scanSync(text).tokens) {
    if (t.text === "(") {
      if (depth++ === 0) start = t.end;
    } else if (t.text === ")" && --depth === 0) return bytes.subarray(start, t.start).toString("utf8");
  }
  return null;
}

/** The COPY … TO STDOUT facts of one statement; null when it is not one. */
export function copyOutSpec(text: string): CopyOutSpec | null {
  let stmt: Node | undefined;
  try {
    stmt = (parseSync(text).stmts?.[0]?.stmt as Node | undefined)?.CopyStmt as Node | undefined;
  } catch {
    return null; // it parsed as part of the whole string; alone it should too, else it is not a COPY we can plan
  }
  if (!stmt || stmt.is_from || stmt.filename !== undefined || stmt.is_program) return null;
  const o: CopyFormatOptions = { format: "text" };
  let header = false;
  let unsupported: string | null = null;
  for (const el of (stmt.options as Node[] | undefined) ?? []) {
    const d = el.DefElem as { defname: string; arg?: unknown };
    const v = optionValue(d.arg);
    switch (d.defname) {
      case "format":
        if (v === "csv") o.format = "csv";
        else if (v !== "text") unsupported = `${v} format`;
        break;
      case "header":
        header = v === null || !["false", "off", "0"].includes(v.toLowerCase());
        break;
      case "delimiter":
      case "null":
      case "quote":
      case "escape":
        o[d.defname] = v ?? "";
        break;
      case "encoding":
        if (!/^utf-?8$/i.test(v ?? "")) unsupported = `encoding ${v}`;
        break;
    }
  }
  let describeSql: string | null = null;
  if (stmt.query) describeSql = innerQuery(text);
  else if (stmt.relation) {
    const r = stmt.relation as { schemaname?: string; relname: string };
    const cols = ((stmt.attlist as Node[] | undefined) ?? []).map((a) => ident((a.String as { sval: string }).sval));
    describeSql = `SELECT ${cols.length ? cols.join(", ") : "*"} FROM ${r.schemaname ? `${ident(r.schemaname)}.` : ""}${ident(r.relname)}`;
  }
  if (!unsupported) {
    try {
      compileCopyFormat(o);
    } catch (err) {
      unsupported = (err as Error).message;
    }
  }
  return { format: unsupported ? null : o, unsupported, header, describeSql };
}

/**
 * Before a simple Query is forwarded: plans each COPY TO STDOUT among its statements and, when
 * column rules may apply, queues the describe of its columns. Returns null when there is none.
 */
export function planCopies(s: SessionState, texts: readonly string[], toServer: (b: Buffer) => void): Array<CopyPlan | null> | null {
  if (!texts.some((t) => /copy/i.test(t))) return null;
  const needColumns = s.columnRulesApply();
  let plans: Array<CopyPlan | null> | null = null;
  texts.forEach((text, i) => {
    const spec = /copy/i.test(text) ? copyOutSpec(text) : null;
    if (!spec) return;
    plans ??= texts.map(() => null);
    let columns: PreparedInfo | null = null;
    if (needColumns && spec.describeSql) {
      columns = { verdict: null, text: spec.describeSql, fields: null };
      toServer(writeFrontend({ type: "Parse", name: "", query: spec.describeSql, paramTypes: [] }));
      toServer(writeFrontend({ type: "Describe", kind: "S", name: "" }));
      toServer(writeFrontend({ type: "Sync" }));
      s.expect({ t: "parse", denial: null, internal: true });
      s.expect({ t: "describe", kind: "S", internal: true, portal: null, stmt: columns });
      s.expect({ t: "sync", internal: true });
    }
    plans[i] = { spec, columns };
  });
  return plans;
}

/** How the rows of a starting COPY OUT are masked (or why they are refused). */
export function copyOutState(s: SessionState, m: CopyOutResponse, plan: CopyPlan | null): CopyOutState {
  const content = s.content();
  const needColumns = s.columnRulesApply();
  const base = { format: m.format, header: 0, columns: [] as (ColumnMasker | null)[], fallback: content, rows: null as CopyFormatOptions | null };
  if (!content && !needColumns) return { ...base, refused: null };
  if (m.format !== 0) return { ...base, refused: "binary COPY output cannot be masked; use COPY … TO STDOUT in text or CSV format" };
  const spec = plan?.spec;
  if (!spec?.format) return { ...base, refused: `COPY output cannot be masked (${spec?.unsupported ?? "its statement is unknown"})` };
  const state: CopyOutState = { ...base, refused: null, rows: spec.format, header: spec.header ? 1 : 0 };
  if (!needColumns) return state;
  const fields = plan?.columns?.fields;
  if (!fields) return { ...base, refused: "the columns of this COPY could not be determined, so masked columns cannot be found; COPY a query or a column list through the simple query protocol" };
  if (fields.length !== m.columnFormats.length) {
    return { ...base, refused: `COPY sends ${m.columnFormats.length} columns but its query describes ${fields.length}; list the columns to COPY` };
  }
  const masker = s.policy.current().masker;
  state.columns = fields.map((f) => masker.forColumn(s.columnName(f), s.groups));
  return state;
}

/** Masks one CopyData row; returns the bytes to forward and how many values changed. */
export function maskCopyData(state: CopyOutState, data: Buffer): { data: Buffer; masked: number } {
  if (state.header > 0) {
    state.header--;
    return { data, masked: 0 };
  }
  if (!state.rows || (state.fallback === null && state.columns.every((c) => c === null))) return { data, masked: 0 };
  const r = maskCopyRow(data, state.rows, state.columns.length ? state.columns : [], state.fallback);
  return { data: r.row, masked: r.masked };
}
