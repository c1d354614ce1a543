// Auditors' search over recorded sessions and statements: the SQL of the
// filters (search-filter.ts) and the keyset cursor, in one place for the session list, the statement
// search and the streamed export (api/routes-sessions.ts, routes-audit-search.ts,
// routes-audit-export.ts).
//
// Query shapes the indexes were made for (prisma/schema.prisma, raw-objects.sql):
//   statements: (subject, started_at), (started_at), and GIN on
//     to_tsvector('simple', text): the text condition below must stay exactly
//     `to_tsvector('simple', st.text) @@ …` or the planner can't use that index;
//   sessions: (subject, started_at), (started_at); the other session filters
//   (group, connection name, agent, outcome) narrow those (sessions are few next to statements).
// Pages are keyset pages on (started_at, id) for sessions and (started_at,
// session_id, seq) for statements (a batch of statements shares its arrival
// time, and within it they read best in session order), so page N costs what
// page 1 costs and rows recorded meanwhile never shift a page.
import { AirlockError } from "@airlock/shared";
import { isUuid } from "../sessions/statements-sql.js";
import type { Store } from "../store/index.js";
import type { AuditFilter } from "./search-filter.js";
import type { StatementRow } from "../sessions/statements.js";

export * from "./search-filter.js";

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
  /** Newest first (search) or oldest first (export). */
  order?: "desc" | "asc";
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

export interface SessionHit {
  id: string;
  subject: string;
  subjectKind: string;
  authMethod: string | null;
  connectionName: string;
  protocol: string;
  agent: string | null;
  clientAddr: string | null;
  groups: string[];
  startedAt: Date;
  endedAt: Date | null;
  bytesUp: bigint;
  bytesDown: bigint;
  outcome: string;
  errorCode: string | null;
  error: string | null;
  recordMode: string;
  unrecorded: number;
}

/** A statement as searches list it: its record plus its session's identity, connection and agent. */
export interface StatementHit extends StatementRow {
  sessionId: string;
  /** The session's subject and connection. */
  subject: string;
  connectionName: string;
  agent: string | null;
  /** The text was cut to `textLimit` characters (the session view has it whole). */
  textTruncated: boolean;
}

// ---- cursor --------------------------------------------------------------

/** The columns after started_at that make a row's position unique. */
type Tie = { col: string; kind: "uuid" | "int" };
const SESSION_TIES: Tie[] = [{ col: "id", kind: "uuid" }];
const STATEMENT_TIES: Tie[] = [{ col: "session_id", kind: "uuid" }, { col: "seq", kind: "int" }];

/** Opaque to clients: base64url of [started_at in ms, …tie values] of the last row of a page. */
export function encodeCursor(startedAt: Date, ...ties: (string | number)[]): string {
  return Buffer.from(JSON.stringify([startedAt.getTime(), ...ties])).toString("base64url");
}

export function decodeCursor(c: string, ties: readonly Tie[] = SESSION_TIES): { startedAt: Date; ties: (string | number)[] } {
  try {
    const v = JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as unknown;
    const ok = (x: unknown, t: Tie) => (t.kind === "uuid" ? typeof x === "string" && isUuid(x) : Number.isSafeInteger(x));
    if (Array.isArray(v) && v.length === ties.length + 1 && Number.isSafeInteger(v[0]) && ties.every((t, i) => ok(v[i + 1], t))) {
      return { startedAt: new Date(v[0] as number), ties: v.slice(1) as (string | number)[] };
    }
  } catch {
    // fall through: same answer for every malformed cursor
  }
  throw new AirlockError("INVALID_ARGUMENT", "cursor is not one this gateway handed out (for this listing)");
}

// ---- SQL -----------------------------------------------------------------

/** Numbered parameters in the order they are used. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/**
 * A timestamp parameter: started_at is `timestamp(3)` (no zone) holding UTC,
 * and an ISO string's zone suffix would be ignored on the cast, so it is dropped.
 */
const ts = (p: Params, d: Date) => `${p.add(d.toISOString().slice(0, 23))}::timestamp`;

/** Conditions on the session row `s` (joined with its agent `a`). */
function sessionConditions(f: AuditFilter, p: Params): string[] {
  const c: string[] = [];
  if (f.user !== undefined) c.push(`s.subject = ${p.add(f.user)}`);
  if (f.group !== undefined) c.push(`${p.add(f.group)} = ANY (s.groups)`);
  if (f.connection !== undefined) c.push(`s.connection_name = ${p.add(f.connection)}`);
  if (f.agent !== undefined) c.push(`a.name = ${p.add(f.agent)}`);
  if (f.outcome !== undefined) c.push(`s.outcome = ${p.add(f.outcome)}`);
  return c;
}

/** Conditions on the statement row `st` from the decision and text filters. */
function statementConditions(f: AuditFilter, p: Params): string[] {
  const c: string[] = [];
  if (f.decision === "denied") c.push(`st.decision = 'deny'`);
  else if (f.decision === "reviewed") c.push(`st.decision = 'review'`);
  else if (f.decision === "masked") c.push(`st.masked > 0`);
  // Exactly the indexed expression (statements_text_fts_idx).
  if (f.q !== undefined) c.push(`to_tsvector('simple', st.text) @@ websearch_to_tsquery('simple', ${p.add(f.q)})`);
  return c;
}

function range(alias: string, f: AuditFilter, p: Params): string[] {
  const c: string[] = [];
  if (f.from) c.push(`${alias}.started_at >= ${ts(p, f.from)}`);
  if (f.to) c.push(`${alias}.started_at < ${ts(p, f.to)}`);
  return c;
}

function keyset(alias: string, ties: readonly Tie[], page: PageRequest, p: Params): { cond: string[]; order: string } {
  const dir = page.order === "asc" ? "ASC" : "DESC";
  const cols = [`${alias}.started_at`, ...ties.map((t) => `${alias}.${t.col}`)];
  const order = cols.map((c) => `${c} ${dir}`).join(", ");
  if (!page.cursor) return { cond: [], order };
  const c = decodeCursor(page.cursor, ties);
  const t = ts(p, c.startedAt);
  const values = [t, ...ties.map((tie, i) => `${p.add(c.ties[i])}::${tie.kind === "uuid" ? "uuid" : "int"}`)];
  const [cmp, bound] = dir === "ASC" ? [">", ">="] : ["<", "<="];
  // The plain bound lets a started_at index start at the cursor (the indexes don't
  // hold the tie columns, so the row comparison alone would filter every earlier row).
  return { cond: [`${alias}.started_at ${bound} ${t}`, `(${cols.join(", ")}) ${cmp} (${values.join(", ")})`], order };
}

const where = (c: string[]) => (c.length ? `WHERE ${c.join("\n   AND ")}` : "");

/** The SQL of one page of sessions; exported for EXPLAIN in tests and the bench. */
export function sessionsSql(f: AuditFilter, page: PageRequest): { text: string; values: unknown[] } {
  const p = new Params();
  const cond = [...sessionConditions(f, p), ...range("s", f, p)];
  const inner = statementConditions(f, p);
  if (inner.length) {
    // The subject copy lets PostgreSQL find the user's matching statements once (subject index AND
    // text index) instead of probing the text index per session: 150 → 7 ms on the bench's 1M statements.
    // '' covers statements recorded before the copy existed (see statementsSql).
    if (f.user !== undefined) inner.unshift(`st.subject IN (${p.add(f.user)}, '')`);
    // A session matches when one of its statements meets every statement-level filter together.
    cond.push(`EXISTS (SELECT 1 FROM statements st WHERE st.session_id = s.id AND ${inner.join(" AND ")})`);
  }
  const k = keyset("s", SESSION_TIES, page, p);
  cond.push(...k.cond);
  const text = `SELECT s.id, s.subject, s.subject_kind, s.auth_method, s.connection_name, s.protocol, a.name AS agent_name, s.client_addr, s.groups,
       s.started_at, s.ended_at, s.bytes_up, s.bytes_down, s.outcome, s.error_code, s.error, s.record_mode, s.unrecorded
  FROM sessions s LEFT JOIN agents a ON a.id = s.agent_id
 ${where(cond)}
 ORDER BY ${k.order}
 LIMIT ${p.add(page.limit + 1)}`;
  return { text, values: p.values };
}

/**
 * The SQL of one page of statements. `textLimit` cuts texts (characters) in
 * the database, so a page of 64 KiB texts doesn't travel whole; null keeps them.
 */
export function statementsSql(f: AuditFilter, page: PageRequest, textLimit: number | null): { text: string; values: unknown[] } {
  const p = new Params();
  const cond: string[] = [];
  if (f.user !== undefined) {
    // st.subject (a copy of the session's) serves the (subject, started_at) index; statements
    // recorded before the copy existed (migration 0005) have '' there, so those are candidates too.
    // The session's own column stays the authority for who may see what.
    const u = p.add(f.user);
    cond.push(`st.subject IN (${u}, '')`, `s.subject = ${u}`);
  }
  cond.push(...sessionConditions({ ...f, user: undefined }, p), ...range("st", f, p), ...statementConditions(f, p));
  const k = keyset("st", STATEMENT_TIES, page, p);
  cond.push(...k.cond);
  const textCol = textLimit === null ? "st.text, false AS text_cut" : `left(st.text, ${Math.trunc(textLimit)}) AS text, length(st.text) > ${Math.trunc(textLimit)} AS text_cut`;
  const text = `SELECT st.id, st.session_id, st.seq, s.subject, s.connection_name, a.name AS agent_name, st.started_at, ${textCol},
       st.kind, st.command, st.objects, st.decision, st.rule, st.reason, st.status, st.duration_ms, st.rows, st.command_tag,
       st.masked, st.error_code, st.error
  FROM statements st JOIN sessions s ON s.id = st.session_id LEFT JOIN agents a ON a.id = s.agent_id
 ${where(cond)}
 ORDER BY ${k.order}
 LIMIT ${p.add(page.limit + 1)}`;
  return { text, values: p.values };
}

// ---- running -------------------------------------------------------------

type Raw = Record<string, unknown>;

async function query(store: Store, q: { text: string; values: unknown[] }): Promise<Raw[]> {
  try {
    return await store.prisma.$queryRawUnsafe<Raw[]>(q.text, ...q.values);
  } catch (err) {
    throw AirlockError.from(err, "STORE_UNAVAILABLE");
  }
}

/** One more row than the page was asked for tells whether there is a next page. */
function paged<T>(rows: T[], limit: number, cursorOf: (row: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? cursorOf(last) : null };
}

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

export async function searchSessions(store: Store, f: AuditFilter, page: PageRequest): Promise<Page<SessionHit>> {
  const rows = await query(store, sessionsSql(f, page));
  return paged(
    rows.map((r) => ({
      id: r.id as string,
      subject: r.subject as string,
      subjectKind: r.subject_kind as string,
      authMethod: str(r.auth_method),
      connectionName: r.connection_name as string,
      protocol: r.protocol as string,
      agent: str(r.agent_name),
      clientAddr: str(r.client_addr),
      groups: (r.groups as string[] | null) ?? [],
      startedAt: r.started_at as Date,
      endedAt: (r.ended_at as Date | null) ?? null,
      bytesUp: BigInt(r.bytes_up as bigint),
      bytesDown: BigInt(r.bytes_down as bigint),
      outcome: r.outcome as string,
      errorCode: str(r.error_code),
      error: str(r.error),
      recordMode: r.record_mode as string,
      unrecorded: Number(r.unrecorded),
    })),
    page.limit,
    (h) => encodeCursor(h.startedAt, h.id),
  );
}

export async function searchStatements(store: Store, f: AuditFilter, page: PageRequest, opts: { textLimit?: number | null } = {}): Promise<Page<StatementHit>> {
  const rows = await query(store, statementsSql(f, page, opts.textLimit === undefined ? null : opts.textLimit));
  return paged(
    rows.map((r) => ({
      id: r.id as string,
      sessionId: r.session_id as string,
      seq: Number(r.seq),
      subject: r.subject as string,
      connectionName: r.connection_name as string,
      agent: str(r.agent_name),
      startedAt: r.started_at as Date,
      text: r.text as string,
      textTruncated: r.text_cut === true,
      kind: r.kind as string,
      command: str(r.command),
      objects: (r.objects as string[] | null) ?? [],
      decision: r.decision as string,
      rule: str(r.rule),
      reason: str(r.reason),
      status: r.status as string,
      durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
      rows: str(r.rows),
      commandTag: str(r.command_tag),
      masked: Number(r.masked ?? 0),
      errorCode: str(r.error_code),
      error: str(r.error),
    })),
    page.limit,
    (h) => encodeCursor(h.startedAt, h.sessionId, h.seq),
  );
}
