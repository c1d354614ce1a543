// The write path of StatementLog: group commit of INSERTs (statement records)
// and UPDATEs (their completions), each with at most one write in flight.
// Whatever arrives while a write is in flight goes into the next one, up to
// maxBatch rows: at low load a record costs one round trip, under load the
// cost per row falls as batches grow, and no timer adds latency.
//
// Ordering: a completion for a row whose INSERT hasn't landed is held and
// queued when it lands (an UPDATE before the row exists would change nothing).
// Memory: see StatementLog's header (backpressure, drops).
import { AirlockError, type Logger } from "@airlock/shared";
import { columns, INSERT_COLUMNS, INSERT_SQL, isRowError, sqlState, UPDATE_COLUMNS, UPDATE_SQL } from "./statements-sql.js";

/**
 * Runs one SQL statement with $n parameters in its own transaction; resolves
 * once it is committed. Rejections keep the driver's error (SQLSTATE inside).
 */
export type SqlExecutor = (sql: string, params: unknown[]) => Promise<unknown>;

export interface WriterCounters {
  batches: number;
  rows: number;
  largestBatch: number;
  updateBatches: number;
  completed: number;
  completionsDropped: number;
  backpressureWaits: number;
}

interface InsertJob {
  ids: string[];
  rows: unknown[][];
  /** Characters of text in the rows, to bound a batch's size as well as its row count. */
  chars: number;
  resolve: () => void;
  reject: (err: AirlockError) => void;
}

interface Waiter {
  ready: () => boolean;
  resolve: () => void;
  /** Set for backpressure waits: they fail when completions can't be written. */
  reject?: (err: AirlockError) => void;
}

/** 500 statements of 64 KiB would make a 32 MB INSERT: batches also stop at about this much text. */
const MAX_BATCH_CHARS = 4 * 1024 * 1024;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export class StatementWriter {
  readonly counters: WriterCounters = { batches: 0, rows: 0, largestBatch: 0, updateBatches: 0, completed: 0, completionsDropped: 0, backpressureWaits: 0 };

  private readonly insertQ: InsertJob[] = [];
  private inserting = false;
  private insertsQueued = 0;
  private insertsSettled = 0;
  /** Ids whose INSERT hasn't landed → the completion that arrived early, if any. */
  private readonly unlanded = new Map<string, unknown[] | undefined>();

  /** Encoded completions (id first), FIFO; the batch being written stays at the head until settled. */
  private readonly updateQ: unknown[][] = [];
  private updating = false;
  private updatesQueued = 0;
  private updatesSettled = 0;
  private updateFailure: AirlockError | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_MIN_MS;
  private closing = false;

  private waiters: Waiter[] = [];

  constructor(
    private readonly exec: SqlExecutor,
    private readonly log: Logger,
    private readonly maxBatch: number,
    private readonly maxPending: number,
    /** Completions given up on (their rows, as queued). */
    private readonly onDropped: (rows: unknown[][]) => void = () => {},
  ) {}

  /** Resolves once the rows are committed; rejects STORE_UNAVAILABLE (cause kept). */
  async insert(ids: string[], rows: unknown[][]): Promise<void> {
    if (this.updateQ.length >= this.maxPending) await this.backpressure();
    for (const id of ids) this.unlanded.set(id, undefined);
    return new Promise<void>((resolve, reject) => {
      this.insertQ.push({ ids, rows, chars: textChars(rows), resolve, reject });
      this.insertsQueued++;
      this.pumpInserts();
    });
  }

  complete(row: unknown[]): void {
    const id = row[0] as string;
    if (this.unlanded.has(id)) this.unlanded.set(id, row);
    else this.enqueueUpdate(row);
  }

  async flush(): Promise<void> {
    const inserts = this.insertsQueued;
    await this.until(() => this.insertsSettled >= inserts);
    // Completions held for those inserts are queued by now.
    const updates = this.updatesQueued;
    await this.until(() => this.updatesSettled >= updates);
  }

  /** From now on a completion batch the store fails is dropped, not retried; a pending retry runs now. */
  closeSoon(): void {
    this.closing = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.pumpUpdates();
    }
  }

  pending(): { inserts: number; completions: number } {
    let held = 0;
    for (const c of this.unlanded.values()) if (c) held++;
    return { inserts: this.insertQ.reduce((n, j) => n + j.rows.length, 0), completions: this.updateQ.length + held };
  }

  drop(n: number, err: unknown, why: string, rows: unknown[][] = []): void {
    if (rows.length) this.onDropped(rows);
    this.counters.completionsDropped += n;
    this.log.warn({ dropped: n, total: this.counters.completionsDropped, err: (err as Error | null)?.message }, `statement completions dropped: ${why}`);
  }

  private pumpInserts(): void {
    if (this.inserting || this.insertQ.length === 0) return;
    this.inserting = true;
    // Whole jobs, FIFO, up to maxBatch rows and MAX_BATCH_CHARS (at least one job, however big).
    let take = 1;
    let n = this.insertQ[0]!.rows.length;
    let chars = this.insertQ[0]!.chars;
    for (let next = this.insertQ[take]; next && n + next.rows.length <= this.maxBatch && chars + next.chars <= MAX_BATCH_CHARS; next = this.insertQ[++take]) {
      n += next.rows.length;
      chars += next.chars;
    }
    const jobs = this.insertQ.splice(0, take);
    void this.writeInserts(jobs).finally(() => {
      this.inserting = false;
      this.insertsSettled += jobs.length;
      this.wake();
      this.pumpInserts();
    });
  }

  private async writeInserts(jobs: InsertJob[]): Promise<void> {
    const rows = jobs.length === 1 ? jobs[0]!.rows : jobs.flatMap((j) => j.rows);
    try {
      await this.exec(INSERT_SQL, columns(rows, INSERT_COLUMNS));
    } catch (err) {
      // One bad row (duplicate seq, unknown session) must not fail everyone's statements.
      if (jobs.length > 1 && isRowError(err)) {
        for (const j of jobs) await this.writeInserts([j]);
        return;
      }
      this.log.warn({ err: (err as Error).message, sqlstate: sqlState(err), rows: rows.length }, "could not record statements");
      const message = isRowError(err) ? "the store refused the statement record, so the statement is not run" : "cannot record the statement, so it is not run";
      for (const j of jobs) {
        const early: unknown[][] = [];
        for (const id of j.ids) {
          const c = this.unlanded.get(id);
          if (c) early.push(c);
          this.unlanded.delete(id);
        }
        if (early.length) this.drop(early.length, err, "their statement was never recorded", early);
        j.reject(new AirlockError("STORE_UNAVAILABLE", message, { cause: err }));
      }
      return;
    }
    this.counters.batches++;
    this.counters.rows += rows.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, rows.length);
    for (const j of jobs) {
      for (const id of j.ids) {
        const early = this.unlanded.get(id);
        this.unlanded.delete(id);
        if (early) this.enqueueUpdate(early);
      }
      j.resolve();
    }
  }

  private enqueueUpdate(row: unknown[]): void {
    this.updateQ.push(row);
    this.updatesQueued++;
    this.pumpUpdates();
  }

  private pumpUpdates(): void {
    if (this.updating || this.retryTimer || this.updateQ.length === 0) return;
    this.updating = true;
    const batch = this.updateQ.slice(0, this.maxBatch);
    void this.writeUpdates(batch).then((settled) => {
      this.updating = false;
      if (settled || this.closing) {
        if (!settled) this.drop(batch.length, this.updateFailure, "the store is unavailable at close", batch);
        this.updateQ.splice(0, batch.length);
        this.updatesSettled += batch.length;
      } else {
        this.retryTimer = setTimeout(() => ((this.retryTimer = null), this.pumpUpdates()), this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      }
      this.wake();
      this.pumpUpdates();
    });
  }

  /** True when the batch is settled (written, or its bad rows dropped); false when the store failed (retry later). */
  private async writeUpdates(batch: unknown[][]): Promise<boolean> {
    // Latest completion per id wins; batches are FIFO, so later ones land later.
    const byId = new Map<unknown, unknown[]>();
    for (const row of batch) byId.set(row[0], row);
    const rows = [...byId.values()];
    try {
      await this.exec(UPDATE_SQL, columns(rows, UPDATE_COLUMNS));
    } catch (err) {
      if (!isRowError(err)) {
        this.log.warn({ err: (err as Error).message, pending: this.updateQ.length }, "could not write statement completions; will retry");
        this.updateFailure = new AirlockError("STORE_UNAVAILABLE", "statement completions cannot be written", { cause: err });
        for (const w of this.waiters) w.reject?.(this.updateFailure);
        this.waiters = this.waiters.filter((w) => !w.reject);
        return false;
      }
      if (rows.length === 1) {
        this.drop(1, err, "the store refused the completion", rows);
        return true;
      }
      for (const row of rows) if (!(await this.writeUpdates([row]))) return false;
      return true;
    }
    this.updateFailure = null;
    this.retryMs = RETRY_MIN_MS;
    this.counters.updateBatches++;
    this.counters.completed += rows.length;
    return true;
  }

  /** Waits until half the waiting completions are written; fails at once if they are failing to write. */
  private async backpressure(): Promise<void> {
    if (this.updateFailure) {
      throw new AirlockError("STORE_UNAVAILABLE", "statement outcomes cannot be written, so no new statement is run", { cause: this.updateFailure });
    }
    this.counters.backpressureWaits++;
    await new Promise<void>((resolve, reject) => {
      this.waiters.push({ ready: () => this.updateQ.length < this.maxPending / 2, resolve, reject });
    });
  }

  private until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push({ ready, resolve }));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) (w.ready() ? w.resolve() : still.push(w));
    this.waiters = still;
  }
}

function textChars(rows: unknown[][]): number {
  let n = 0;
  for (const row of rows) for (const v of row) if (typeof v === "string") n += v.length;
  return n;
}
