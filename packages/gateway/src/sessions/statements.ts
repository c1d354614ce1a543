// Statement-level recording for the Postgres front door: one `statements` row
// per SQL statement, written BEFORE the statement is forwarded (record() is
// awaited, and a rejection means the statement is not run: fail closed) and
// completed with its outcome afterwards (complete(), fire and forget). Both
// writes are group-committed by StatementWriter (statements-writer.ts).
//
// Bounded memory: when maxPendingCompletions completions are waiting, record()
// applies backpressure (waits until half of them are written), so sessions
// can't outrun the store; if completions are failing to write at that moment,
// record() rejects STORE_UNAVAILABLE instead. Completions are dropped (logged
// warning, `completionsDropped` counter) only when the store refuses the row
// itself (a bad value), for an unknown id, or at close() while the store is down.
// The statement row written by record() is never dropped: it stays "pending".
import { randomUUID } from "node:crypto";
import { AirlockError, type Logger } from "@airlock/shared";
import { statementEndFields, statementStartFields } from "@airlock/shared/audit/index";
import type { AuditChains } from "../audit/chains.js";
import type { Store } from "../store/index.js";
import { arrayLiteral, bigintText, clean, cleanOrNull, DEFAULT_MAX_TEXT_BYTES, isUuid, truncateUtf8 } from "./statements-sql.js";
import { type SqlExecutor, StatementWriter, type WriterCounters } from "./statements-writer.js";

export type { SqlExecutor } from "./statements-writer.js";

export { truncateUtf8 } from "./statements-sql.js";

export interface StatementStart {
  /** Caller-chosen id (a UUID), e.g. to correlate before the insert lands; default a random UUID. */
  id?: string;
  sessionId: string;
  /** Order within the session, from 1; unique per session. */
  seq: number;
  text: string;
  kind: string;
  command?: string | null;
  objects: string[];
  decision: "allow" | "deny" | "review";
  rule?: string | null;
  reason?: string | null;
  /** "pending" (default) for statements about to run; "denied"/"skipped" for those that won't. */
  status?: "pending" | "denied" | "skipped";
  errorCode?: string | null;
  error?: string | null;
}

export interface StatementEnd {
  status: "ok" | "error" | "skipped";
  durationMs: number;
  rows?: number | bigint | null;
  commandTag?: string | null;
  masked?: number;
  errorCode?: string | null;
  error?: string | null;
}

export interface StatementRow {
  id: string;
  seq: number;
  text: string;
  kind: string;
  command: string | null;
  objects: string[];
  decision: string;
  rule: string | null;
  reason: string | null;
  status: string;
  startedAt: Date;
  durationMs: number | null;
  /** bigint as a decimal string: row counts can pass 2^53. */
  rows: string | null;
  commandTag: string | null;
  masked: number;
  errorCode: string | null;
  error: string | null;
}

export interface StatementLogOptions {
  /** Rows per INSERT/UPDATE; a single record() call is never split. Default 500. */
  maxBatch?: number;
  /** UTF-8 bytes of statement text kept; longer texts end in `…[truncated N bytes]`. Default 64 KiB. */
  maxTextLength?: number;
  /** Waiting completions past which record() applies backpressure. Default 50,000. */
  maxPendingCompletions?: number;
  /**
   * Runs the batch INSERT/UPDATE instead of `store.prisma.$executeRawUnsafe`,
   * e.g. straight on the store's pg pool: Prisma's per-query overhead roughly
   * doubles the cost of these writes (see statements.test.ts figures).
   */
  sql?: SqlExecutor;
  /** Tamper evidence: each record and completion becomes a link of its session's chain. */
  chains?: AuditChains | null;
}

export interface StatementLogStats extends WriterCounters {
  /** Rows queued for the next INSERT. */
  pendingInserts: number;
  /** Completions not yet written (queued, in flight, or held until their INSERT lands). */
  pendingCompletions: number;
}

export class StatementLog {
  private readonly maxText: number;
  private readonly writer: StatementWriter;
  private readonly chains: AuditChains | null;
  private closed = false;

  constructor(
    private readonly store: Store,
    log: Logger,
    opts: StatementLogOptions = {},
  ) {
    this.maxText = Math.max(64, opts.maxTextLength ?? DEFAULT_MAX_TEXT_BYTES);
    this.chains = opts.chains ?? null;
    const sql = opts.sql ?? ((text: string, params: unknown[]) => store.prisma.$executeRawUnsafe(text, ...params));
    // A completion the store never takes leaves its numbered link missing: a tombstone explains it.
    const onDropped = (rows: unknown[][]) => {
      for (const r of rows) if (r[8] != null && r[11] != null) this.chains?.lost(r[11] as string, { link: r[8] as number, prev: r[9] as Buffer, hash: r[10] as Buffer }, "outcome not recorded: the store refused or was unavailable when it was written");
    };
    this.writer = new StatementWriter(sql, log, Math.max(1, opts.maxBatch ?? 500), Math.max(1, opts.maxPendingCompletions ?? 50_000), onDropped);
  }

  /**
   * Resolves with the ids once the rows are durably inserted; rejects with AirlockError STORE_UNAVAILABLE (cause kept).
   * bestEffort (connections with record mode best_effort): when the store fails, resolves anyway with
   * ids starting "unrecorded:" (their completions are ignored) and the gap is explained by a tombstone.
   */
  async record(starts: StatementStart[], opts: { bestEffort?: boolean } = {}): Promise<string[]> {
    if (this.closed) throw new AirlockError("STORE_UNAVAILABLE", "the statement log is closed, so the statement is not run");
    if (starts.length === 0) return [];
    // A session whose chain is sealed is over: a record now (a held statement after the client left)
    // would be an unchained row, so it is refused like any record the store cannot take.
    if (this.chains) for (const s of starts) if (!this.chains.has(s.sessionId)) throw new AirlockError("STORE_UNAVAILABLE", "the session's record is closed, so the statement is not run");
    const startedAt = new Date().toISOString(); // arrival time, before any batching or backpressure wait
    const ids = starts.map((s) => s.id ?? randomUUID());
    const rows = starts.map((s, i) => this.encodeStart(ids[i]!, s, startedAt));
    try {
      await this.writer.insert(ids, rows);
    } catch (err) {
      // Numbered links that never landed: a signed tombstone explains the gap (audit/chains.ts).
      const reason = opts.bestEffort
        ? "forwarded without a record: the store could not record it and the connection records best effort"
        : "not recorded: the store could not record the statement, so it was not run";
      let room = true;
      for (const row of rows) {
        const link = row[15] as number | null;
        if (link !== null) room = this.chains!.lost(row[1] as string, { link, prev: row[16] as Buffer, hash: row[17] as Buffer }, reason, opts.bestEffort && row[10] === "pending") && room;
      }
      if (!opts.bestEffort) throw err;
      // Best effort has a limit: past it the gaps could no longer be explained, so the session ends.
      if (!room) throw new AirlockError("STORE_UNAVAILABLE", "too many statements ran without a record in this session; it is ended", { cause: err });
      return ids.map((id) => `unrecorded:${id}`);
    }
    return ids;
  }

  /** `sessionId` links the completion into the session's chain (without it, no link). */
  complete(id: string, end: StatementEnd, sessionId?: string): void {
    if (id.startsWith("unrecorded:")) return; // ran without a record (best effort): nothing to complete
    if (this.closed || !isUuid(id)) {
      this.writer.drop(1, null, this.closed ? "the statement log is closed" : `${JSON.stringify(id)} is not a statement id`);
      return;
    }
    // The session's chain is sealed (a late answer after the session ended): the row stays "pending"
    // rather than get an outcome no link vouches for.
    if (sessionId && this.chains && !this.chains.has(sessionId)) return this.writer.drop(1, null, "the session's record is closed");
    const row = encodeEnd(id, end);
    const link = sessionId ? this.chains?.append(sessionId, "statement.end", statementEndFields({ status: row[1] as string, durationMs: row[2] as number | null, rows: row[3] as string | null, commandTag: row[4] as string | null, masked: row[5] as number, errorCode: row[6] as string | null, error: row[7] as string | null })) : null;
    row.push(link?.link ?? null, link?.prev ?? null, link?.hash ?? null, sessionId ?? null);
    this.writer.complete(row);
  }

  /** Waits until everything queued so far is written (completions retrying through a store outage included). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Counters for tests and metrics. */
  stats(): StatementLogStats {
    const p = this.writer.pending();
    return { ...this.writer.counters, pendingInserts: p.inserts, pendingCompletions: p.completions };
  }

  async list(sessionId: string, opts: { limit?: number; afterSeq?: number } = {}): Promise<StatementRow[]> {
    if (!isUuid(sessionId)) return [];
    const take = Math.min(Math.max(Math.trunc(opts.limit ?? 1000), 1), 10_000);
    try {
      const rows = await this.store.prisma.statement.findMany({
        where: { sessionId, ...(opts.afterSeq === undefined ? {} : { seq: { gt: opts.afterSeq } }) },
        orderBy: { seq: "asc" },
        take,
      });
      return rows.map(({ sessionId: _s, rows: n, ...r }) => ({ ...r, rows: n === null ? null : n.toString() }));
    } catch (err) {
      throw AirlockError.from(err, "STORE_UNAVAILABLE");
    }
  }

  async counts(sessionId: string): Promise<{ total: number; denied: number }> {
    if (!isUuid(sessionId)) return { total: 0, denied: 0 };
    try {
      const [r] = await this.store.prisma.$queryRaw<{ total: number; denied: number }[]>`
        SELECT count(*)::int AS total, (count(*) FILTER (WHERE decision = 'deny'))::int AS denied
          FROM statements WHERE session_id = ${sessionId}::uuid`;
      return { total: r?.total ?? 0, denied: r?.denied ?? 0 };
    } catch (err) {
      throw AirlockError.from(err, "STORE_UNAVAILABLE");
    }
  }

  /** Stops taking records, then flushes; while the store is down, waiting completions get one last try, then are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    this.writer.closeSoon();
    await this.writer.flush();
  }

  private encodeStart(id: string, s: StatementStart, startedAt: string): unknown[] {
    const status = s.status ?? "pending";
    // A pending record's error fields are the completion's to set (one owner per column, as the chain hashes them).
    const pending = status === "pending";
    const rec = {
      id, seq: s.seq, subject: this.chains?.subjectOf(s.sessionId) ?? "", text: truncateUtf8(clean(s.text), this.maxText), kind: clean(s.kind), command: cleanOrNull(s.command),
      objects: s.objects.map(clean), decision: s.decision, rule: cleanOrNull(s.rule), reason: cleanOrNull(s.reason), status, startedAt,
      errorCode: pending ? null : cleanOrNull(s.errorCode), error: pending ? null : cleanOrNull(s.error),
    };
    const link = this.chains?.append(s.sessionId, "statement", statementStartFields(rec)) ?? null;
    return [
      id, s.sessionId, s.seq, rec.text, rec.kind, rec.command, arrayLiteral(rec.objects), rec.decision, rec.rule, rec.reason, status,
      startedAt, rec.errorCode, rec.error, rec.subject, link?.link ?? null, link?.prev ?? null, link?.hash ?? null,
    ];
  }
}

function encodeEnd(id: string, e: StatementEnd): unknown[] {
  return [
    id, e.status, Number.isFinite(e.durationMs) ? e.durationMs : null, bigintText(e.rows), cleanOrNull(e.commandTag),
    // Clamped to the int column: a value the store would refuse could not be written under its signed link.
    typeof e.masked === "number" && Number.isFinite(e.masked) ? Math.min(Math.max(Math.trunc(e.masked), 0), 2_147_483_647) : 0, cleanOrNull(e.errorCode), cleanOrNull(e.error),
  ];
}
