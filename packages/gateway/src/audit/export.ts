// Export of sessions and statements as JSON Lines or CSV, any size: rows are
// read in keyset pages (audit/search.ts) and encoded page by page, and the next
// page is only read when the consumer asked for more (pull, see exportLines),
// so memory stays at one page however large the export is.
import { searchSessions, searchStatements, type AuditFilter, type Page, type SessionHit, type StatementHit } from "./search.js";
import type { Store } from "../store/index.js";

export type ExportKind = "sessions" | "statements";
export type ExportFormat = "jsonl" | "csv";

/** Rows per page: statement texts can be 64 KiB each, so a page stays ≤ ~16 MiB at worst. */
const PAGE_ROWS: Record<ExportKind, number> = { sessions: 1000, statements: 250 };

type Value = string | number | boolean | null | Date | bigint | string[];

const SESSION_COLUMNS = [
  "id", "subject", "subjectKind", "authMethod", "connectionName", "protocol", "agent", "clientAddr", "groups", "startedAt", "endedAt",
  "bytesUp", "bytesDown", "outcome", "errorCode", "error", "recordMode", "unrecorded",
] as const satisfies readonly (keyof SessionHit)[];

const STATEMENT_COLUMNS = [
  "id", "sessionId", "seq", "subject", "connectionName", "agent", "startedAt", "kind", "command", "objects", "decision", "rule", "reason",
  "status", "durationMs", "rows", "commandTag", "masked", "errorCode", "error", "text",
] as const satisfies readonly (keyof StatementHit)[];

export const COLUMNS: Record<ExportKind, readonly string[]> = { sessions: SESSION_COLUMNS, statements: STATEMENT_COLUMNS };

/**
 * One CSV field per RFC 4180: quoted when it holds a quote, comma, CR or LF,
 * quotes doubled. Arrays are JSON (names may hold any character). Text that a
 * spreadsheet would run as a formula (= + - @ TAB CR first) gets a leading `'`:
 * statement texts are whatever a client sent, and an export must not become a
 * way to run formulas on an auditor's machine. JSON Lines is the exact format.
 * https://www.rfc-editor.org/rfc/rfc4180#section-2
 * https://owasp.org/www-community/attacks/CSV_Injection
 */
export function csvField(v: Value): string {
  if (v === null) return "";
  let s: string;
  if (v instanceof Date) s = v.toISOString();
  else if (Array.isArray(v)) s = JSON.stringify(v);
  else if (typeof v === "string") s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  else s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV record, CRLF-terminated as RFC 4180 has it. */
export const csvRecord = (fields: readonly Value[]): string => `${fields.map(csvField).join(",")}\r\n`;

function jsonValue(v: Value): unknown {
  if (v instanceof Date) return v.toISOString();
  // Byte counts as numbers (as the API returns them); exact up to 2^53.
  if (typeof v === "bigint") return Number(v);
  return v;
}

function encoder(kind: ExportKind, format: ExportFormat): (row: SessionHit | StatementHit) => string {
  const cols = COLUMNS[kind];
  const pick = (row: SessionHit | StatementHit) => cols.map((c) => (row as unknown as Record<string, Value>)[c] ?? null);
  if (format === "csv") return (row) => csvRecord(pick(row));
  return (row) => {
    const o: Record<string, unknown> = {};
    const vals = pick(row);
    cols.forEach((c, i) => (o[c] = jsonValue(vals[i]!)));
    return `${JSON.stringify(o)}\n`;
  };
}

export interface ExportRequest {
  kind: ExportKind;
  format: ExportFormat;
  filter: AuditFilter;
  /** Override the page size (tests). */
  pageRows?: number;
}

/**
 * The export as text chunks (one per page), oldest first. The first page is
 * read before this returns, so a bad filter or an unreachable store fails the
 * request with a problem answer instead of cutting a stream already started.
 */
export async function exportLines(store: Store, req: ExportRequest): Promise<AsyncGenerator<string>> {
  const limit = req.pageRows ?? PAGE_ROWS[req.kind];
  // Without an end, rows recorded while the export runs would keep extending it.
  const filter = { ...req.filter, to: req.filter.to ?? new Date() };
  const next = (cursor?: string): Promise<Page<SessionHit | StatementHit>> =>
    req.kind === "sessions" ? searchSessions(store, filter, { limit, cursor, order: "asc" }) : searchStatements(store, filter, { limit, cursor, order: "asc" });
  const encode = encoder(req.kind, req.format);
  const first = await next();
  return (async function* () {
    if (req.format === "csv") yield csvRecord([...COLUMNS[req.kind]]);
    for (let page = first; ; ) {
      if (page.items.length) yield page.items.map(encode).join("");
      if (!page.nextCursor) return;
      page = await next(page.nextCursor);
    }
  })();
}
