// StatementLog against both real stores: PGlite in a temp dir and a throwaway
// PostgreSQL database. Figures (records/s, latency) are printed, not asserted.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { AirlockError } from "@airlock/shared";
import pg from "pg";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../store/index.js";
import { createTempDatabase } from "../store/testing.js";
import { SessionRecorder } from "./recorder.js";
import { type SqlExecutor, StatementLog, type StatementLogOptions, type StatementStart } from "./statements.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

/** A logger whose lines the test can read (to check warnings, and that no statement text leaks). */
function captureLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) });
  return { logger: pino({ level: "warn" }, sink), lines };
}

interface Backend {
  store: Store;
  /** Makes the store unreachable while it is open. */
  kill(): Promise<void>;
  /** Write path other than Prisma, when the backend tests one. */
  sql?: SqlExecutor;
}

async function postgres(): Promise<Backend & { url: string }> {
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  const dir = await mkdtemp(join(tmpdir(), "airlock-statements-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore({ databaseUrl: db.url, dataDir: dir, logger: pino({ level: "silent" }) });
  cleanups.push(() => store.close());
  // DROP DATABASE … WITH (FORCE) ends the pool's connections; reconnects find no database.
  return { store, url: db.url, kill: () => db.drop() };
}

const backends: { name: string; open: () => Promise<Backend> }[] = [
  {
    name: "PGlite",
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), "airlock-statements-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const store = await openStore({ dataDir: dir, logger: pino({ level: "silent" }) });
      cleanups.push(() => store.close());
      return { store, kill: () => store.close() };
    },
  },
  { name: "PostgreSQL", open: postgres },
  {
    // The same database, the writes going straight to a pg pool: what Prisma's per-query cost is.
    name: "PostgreSQL via pg pool",
    open: async () => {
      const b = await postgres();
      const pool = new pg.Pool({ connectionString: b.url, max: 2 });
      pool.on("error", () => undefined); // killed idle connections
      cleanups.push(() => pool.end());
      return { ...b, sql: (text, params) => pool.query(text, params) };
    },
  },
];

async function newSession(store: Store): Promise<string> {
  const rec = new SessionRecorder(store, pino({ level: "silent" }));
  return rec.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName: "orders-db", protocol: "postgres", clientAddr: "127.0.0.1:5555" });
}

const stmt = (sessionId: string, seq: number, over: Partial<StatementStart> = {}): StatementStart => ({
  sessionId,
  seq,
  text: `SELECT ${seq}`,
  kind: "select",
  command: "SELECT",
  objects: [],
  decision: "allow",
  ...over,
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe.each(backends)("StatementLog on $name", ({ name, open: openBackend }) => {
  let sql: SqlExecutor | undefined;
  const open = async () => {
    const b = await openBackend();
    sql = b.sql;
    return b;
  };
  const newLog = (store: Store, logger = pino({ level: "silent" }), opts: StatementLogOptions = {}) => new StatementLog(store, logger, { ...opts, ...(sql ? { sql } : {}) });

  it("records, completes and lists statements with every field", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sid = await newSession(store);
    const before = Date.now();
    const ids = await log.record([
      stmt(sid, 1, { text: "SELECT full_name FROM customers WHERE id = $1", objects: ["public.customers", 'odd,"name"{x}\\y'] }),
      stmt(sid, 2, { text: "DROP TABLE orders", kind: "ddl", command: "DROP", objects: ["orders"], decision: "deny", rule: "no-ddl,prod", reason: "DDL is not allowed", status: "denied", errorCode: "STATEMENT_DENIED", error: "denied by policy" }),
      stmt(sid, 3, { command: null, decision: "review", text: "nul\0byte" }),
    ]);
    const after = Date.now();
    expect(ids).toHaveLength(3);
    log.complete(ids[0]!, { status: "ok", durationMs: 1.25, rows: 5, commandTag: "SELECT 5", masked: 3 });
    log.complete(ids[2]!, { status: "error", durationMs: 0.5, errorCode: "TARGET_PROTOCOL_ERROR", error: "relation does not exist" });
    await log.flush();

    const rows = await log.list(sid);
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows[0]).toMatchObject({ seq: 1, kind: "select", command: "SELECT", objects: ["public.customers", 'odd,"name"{x}\\y'], decision: "allow", status: "ok", durationMs: 1.25, rows: "5", commandTag: "SELECT 5", masked: 3, rule: null, errorCode: null });
    expect(rows[1]).toMatchObject({ seq: 2, text: "DROP TABLE orders", kind: "ddl", decision: "deny", rule: "no-ddl,prod", reason: "DDL is not allowed", status: "denied", errorCode: "STATEMENT_DENIED", error: "denied by policy", durationMs: null, rows: null, masked: 0 });
    // NUL can't be stored in PostgreSQL text: it becomes U+FFFD rather than failing the batch.
    expect(rows[2]).toMatchObject({ seq: 3, command: null, decision: "review", text: "nul\uFFFDbyte", status: "error", errorCode: "TARGET_PROTOCOL_ERROR", error: "relation does not exist" });
    for (const r of rows) {
      expect(r.startedAt).toBeInstanceOf(Date);
      // timestamp(3) keeps milliseconds: the arrival time lies within the call.
      expect(r.startedAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(r.startedAt.getTime()).toBeLessThanOrEqual(after);
    }
    expect(await log.counts(sid)).toEqual({ total: 3, denied: 1 });
    expect((await log.list(sid, { afterSeq: 1, limit: 1 })).map((r) => r.seq)).toEqual([2]);
    expect(await log.list(sid, { afterSeq: 3 })).toEqual([]);
    expect(await log.list(randomUUID())).toEqual([]);
    expect(await log.counts("not-a-uuid")).toEqual({ total: 0, denied: 0 });
    await log.close();
  });

  it("stores row counts past 2^53 exactly, from bigint and from number", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sid = await newSession(store);
    const ids = await log.record([stmt(sid, 1), stmt(sid, 2), stmt(sid, 3)]);
    log.complete(ids[0]!, { status: "ok", durationMs: 1, rows: 2n ** 63n - 1n });
    log.complete(ids[1]!, { status: "ok", durationMs: 1, rows: 2 ** 53 + 2 });
    log.complete(ids[2]!, { status: "ok", durationMs: 1, rows: null });
    await log.close();
    expect((await log.list(sid)).map((r) => r.rows)).toEqual(["9223372036854775807", "9007199254740994", null]);
  });

  it("truncates long texts on a character boundary with a marker saying how much was cut", async () => {
    const { store } = await open();
    const log = newLog(store, undefined, { maxTextLength: 1000 });
    const sid = await newSession(store);
    const text = `SELECT '${"é".repeat(3000)}'`; // 2 bytes per é: the cut at 1000 bytes falls inside one
    const exact = "x".repeat(1000);
    await log.record([stmt(sid, 1, { text }), stmt(sid, 2, { text: exact })]);
    const [long, fits] = await log.list(sid);
    const total = Buffer.byteLength(text);
    const m = /^(SELECT '(?:é)+)…\[truncated (\d+) bytes\]$/.exec(long!.text);
    expect(m, long!.text.slice(-40)).not.toBeNull();
    expect(Buffer.byteLength(m![1]!)).toBeLessThanOrEqual(1000);
    expect(Buffer.byteLength(m![1]!) + Number(m![2])).toBe(total);
    expect(text.startsWith(m![1]!)).toBe(true);
    expect(fits!.text).toBe(exact);
    await log.close();
  });

  it("caps a batch by the size of its texts as well as by rows", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sid = await newSession(store);
    const blocker = log.record([stmt(sid, 1)]); // in flight: the next 100 queue up together
    const big = "x".repeat(60_000);
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.record([stmt(sid, i + 2, { text: big })])));
    await blocker;
    // 4 Mi characters per batch hold 69 rows of 60,000 (plus their ids and names).
    expect(log.stats()).toMatchObject({ rows: 101, batches: 3, largestBatch: 69 });
    expect((await log.counts(sid)).total).toBe(101);
    await log.close();
  });

  it("applies a completion that arrives before its insert has landed", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sid = await newSession(store);
    const first = log.record([stmt(sid, 1)]); // in flight
    const id = randomUUID();
    const second = log.record([stmt(sid, 2, { id })]); // queued behind it
    log.complete(id, { status: "ok", durationMs: 2, rows: 7, commandTag: "SELECT 7" });
    expect(log.stats().pendingCompletions).toBe(1); // held, not sent ahead of its row
    expect(await second).toEqual([id]);
    await first;
    await log.flush();
    const rows = await log.list(sid);
    expect(rows[1]).toMatchObject({ id, status: "ok", rows: "7", commandTag: "SELECT 7" });
    expect(log.stats()).toMatchObject({ completed: 1, completionsDropped: 0, pendingCompletions: 0 });
    await log.close();
  });

  it("groups 2,000 concurrent records from 50 sessions into few batches, each seq once", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sessions = await Promise.all(Array.from({ length: 50 }, () => newSession(store)));
    const t0 = performance.now();
    const ids = await Promise.all(sessions.flatMap((sid) => Array.from({ length: 40 }, (_, i) => log.record([stmt(sid, i + 1)]))));
    const ms = performance.now() - t0;
    for (const [i, [id]] of ids.entries()) log.complete(id!, { status: "ok", durationMs: 0.1, rows: i });
    await log.flush();
    const s = log.stats();
    console.log(`[${name}] burst: 2000 records in ${ms.toFixed(1)} ms = ${Math.round(2000 / (ms / 1000))} records/s; ${s.batches} INSERTs (largest ${s.largestBatch} rows), ${s.updateBatches} UPDATEs`);
    expect(s).toMatchObject({ rows: 2000, completed: 2000, completionsDropped: 0, pendingInserts: 0, pendingCompletions: 0 });
    expect(s.batches).toBeLessThan(2000);
    expect(s.largestBatch).toBeGreaterThan(1);
    expect(s.largestBatch).toBeLessThanOrEqual(500);
    expect(new Set(ids.flat()).size).toBe(2000);
    for (const sid of sessions) {
      const rows = await log.list(sid);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(rows.every((r) => r.status === "ok")).toBe(true);
    }
    await log.close();
  });

  it("measures record latency: one session alone, then 50 sessions in a closed loop", async () => {
    const { store } = await open();
    const log = newLog(store);
    const run = async (sessions: number, perSession: number) => {
      const sids = await Promise.all(Array.from({ length: sessions }, () => newSession(store)));
      const lat: number[] = [];
      const t0 = performance.now();
      await Promise.all(
        sids.map(async (sid) => {
          for (let seq = 1; seq <= perSession; seq++) {
            const t = performance.now();
            const [id] = await log.record([stmt(sid, seq)]);
            lat.push(performance.now() - t);
            log.complete(id!, { status: "ok", durationMs: 0.2, rows: 1, commandTag: "SELECT 1" });
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      await log.flush();
      lat.sort((a, b) => a - b);
      return { rate: Math.round(lat.length / secs), p50: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length };
    };
    const alone = await run(1, 500);
    const loaded = await run(50, 100);
    console.log(`[${name}] record() alone: p50 ${alone.p50.toFixed(3)} ms, p99 ${alone.p99.toFixed(3)} ms (${alone.rate}/s)`);
    console.log(`[${name}] record() 50 sessions: p50 ${loaded.p50.toFixed(3)} ms, p99 ${loaded.p99.toFixed(3)} ms, ${loaded.rate} records/s; stats ${JSON.stringify(log.stats())}`);
    expect(alone.n + loaded.n).toBe(5500);
    expect(log.stats()).toMatchObject({ rows: 5500, completed: 5500, completionsDropped: 0 });
    await log.close();
  });

  it("fails only the caller whose row the store refuses, not the rest of its batch", async () => {
    const { store } = await open();
    const log = newLog(store);
    const sid = await newSession(store);
    await log.record([stmt(sid, 1)]); // a duplicate seq from now on
    const blocker = log.record([stmt(sid, 2)]); // in flight, so the next three share a batch
    const results = await Promise.allSettled([log.record([stmt(sid, 3)]), log.record([stmt(sid, 1)]), log.record([stmt(randomUUID(), 1)]), log.record([stmt(sid, 4)])]);
    await blocker;
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    const err = (results[1] as PromiseRejectedResult).reason as AirlockError;
    expect(err).toBeInstanceOf(AirlockError);
    expect(err.code).toBe("STORE_UNAVAILABLE");
    expect(err.cause).toBeDefined();
    expect((await log.list(sid)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await log.close();
  });

  it("applies backpressure on record() while completions pile up, and loses none", async () => {
    const { store } = await open();
    const log = newLog(store, undefined, { maxPendingCompletions: 10 });
    const sid = await newSession(store);
    const ids = await log.record(Array.from({ length: 100 }, (_, i) => stmt(sid, i + 1)));
    for (const id of ids) log.complete(id, { status: "ok", durationMs: 1 });
    expect(log.stats().pendingCompletions).toBe(100);
    await log.record([stmt(sid, 101)]); // waits for the completions to drain below 5
    expect(log.stats().backpressureWaits).toBe(1);
    await log.close();
    expect((await log.counts(sid)).total).toBe(101);
    expect((await log.list(sid, { limit: 100 })).every((r) => r.status === "ok")).toBe(true);
  });

  it("rejects STORE_UNAVAILABLE when the store is gone, without logging statement text", async () => {
    const { store, kill } = await open();
    const { logger, lines } = captureLogger();
    const log = newLog(store, logger);
    const sid = await newSession(store);
    const [id] = await log.record([stmt(sid, 1)]);
    await kill();
    const err = await log.record([stmt(sid, 2, { text: "ALTER ROLE app PASSWORD 's3cr3t-value'" })]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockError);
    expect((err as AirlockError).code).toBe("STORE_UNAVAILABLE");
    expect((err as AirlockError).cause).toBeDefined();
    // A completion can't be written either: it is retried, then dropped (and counted) at close.
    log.complete(id!, { status: "ok", durationMs: 1 });
    await log.close();
    expect(log.stats()).toMatchObject({ completionsDropped: 1, completed: 0 });
    await expect(log.record([stmt(sid, 3)])).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    expect(lines.join("")).toMatch(/could not record statements/);
    expect(lines.join("")).toMatch(/statement completions dropped/);
    expect(lines.join("")).not.toContain("s3cr3t");
  });
});
