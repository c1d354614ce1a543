// The outbox against real stores (a throwaway PostgreSQL database, and PGlite):
// the triggers queue one row per enabled sink, leases are exclusive, acks
// delete, retries back off and hold newer rows back, refused rows don't,
// dead letters are parked until retried, starting a gateway never disables a
// sink, and two forwarders on two connection pools never have the same row in
// flight at once.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { SessionRecorder } from "../../sessions/recorder.js";
import { openStore, type Store } from "../../store/index.js";
import { createTempDatabase } from "../../store/testing.js";
import { SinkForwarder } from "./forwarder.js";
import { SiemForwarding } from "./index.js";
import { Outbox, type SqlQuery } from "./outbox.js";
import type { SiemEvent } from "./events.js";
import type { DeliveryResult, SinkTransport } from "./transport.js";

const silent = pino({ level: "silent" });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

const sqlOf = (store: Store): SqlQuery => (text, params) => store.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(text, ...params);

async function pgStores(n: number): Promise<Store[]> {
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  const dir = await mkdtemp(join(tmpdir(), "airlock-outbox-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const stores: Store[] = [];
  // One after the other: the first applies the migrations.
  for (let i = 0; i < n; i++) {
    const store = await openStore({ databaseUrl: db.url, dataDir: dir, logger: silent });
    cleanups.push(() => store.close());
    stores.push(store);
  }
  return stores;
}

async function pgliteStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), "airlock-outbox-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore({ dataDir: dir, logger: silent });
  cleanups.push(() => store.close());
  return store;
}

/** Registers `sink` and queues `n` events for it directly (what the triggers do), ids ev-<from>.. in order. */
async function queue(sql: SqlQuery, sink: string, n: number, from = 1): Promise<void> {
  await new Outbox(sql).registerSinks([sink]);
  await sql(
    `INSERT INTO audit_outbox (sink, event_id, type, payload)
     SELECT $1, 'ev-' || g, 'statement', jsonb_build_object('n', g, 'text', 'é "q" ]') FROM generate_series($2::int, $3::int) g ORDER BY g`,
    [sink, from, from + n - 1],
  );
}

const ids = (rows: Array<{ eventId: string }>) => rows.map((r) => r.eventId);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => `ev-${a + i}`);

describe.each([
  { name: "PostgreSQL", open: async () => (await pgStores(1))[0]! },
  { name: "PGlite", open: pgliteStore },
])("outbox on $name", ({ open }) => {
  it("the triggers queue session and statement events for enabled sinks only", async () => {
    const store = await open();
    const outbox = new Outbox(sqlOf(store));
    await outbox.registerSinks(["siem-a", "old"]);
    expect(await outbox.setEnabled("old", false)).toBe(true);
    expect(await outbox.setEnabled("nope", false)).toBe(false);
    const rec = new SessionRecorder(store, silent);
    const id = await rec.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
    const stmt = randomUUID();
    await store.sql(`INSERT INTO statements (id, session_id, seq, text, kind, decision, subject) VALUES ($1::uuid, $2::uuid, 1, 'select 1', 'select', 'allow', 'alice')`, [stmt, id]);
    await store.sql(`UPDATE statements SET status = 'ok' WHERE id = $1::uuid`, [stmt]);
    await rec.finish(id, { bytesUp: 1, bytesDown: 2, outcome: "ok" });
    const rows = await outbox.lease("siem-a", 10, 30_000);
    expect(ids(rows)).toEqual([`session.start:${id}`, `statement:${stmt}`, `statement.end:${stmt}`, `session.end:${id}`]);
    expect(rows[2]!.payload).toMatchObject({ id: stmt, session_id: id, status: "ok", text: "select 1" });
    expect(rows[3]!.payload).toMatchObject({ id, subject: "alice", outcome: "ok" });
    expect(rows[0]!.payload).not.toHaveProperty("chain_hash");
    expect(await outbox.lease("old", 10, 30_000)).toEqual([]);
    const status = await outbox.status();
    expect(status.map((s) => [s.sink, s.enabled, s.pending])).toEqual([
      ["old", false, 0],
      ["siem-a", true, 4],
    ]);
    // Enabled again: queued for once more.
    await outbox.setEnabled("old", true);
    const id2 = await rec.start({ subject: "bob", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
    expect(ids(await outbox.lease("old", 10, 30_000))).toEqual([`session.start:${id2}`]);
  });

  it("registering sinks (a gateway starting) adds new ones but never disables or re-enables one", async () => {
    const store = await open();
    const outbox = new Outbox(sqlOf(store));
    expect(await outbox.registerSinks(["a", "b"])).toEqual([
      { name: "a", enabled: true },
      { name: "b", enabled: true },
    ]);
    await outbox.setEnabled("b", false);
    // A gateway with a stale configuration (only "c") starts: "a" stays enabled, "b" stays as the admin left it.
    expect(await outbox.registerSinks(["c"])).toEqual([
      { name: "a", enabled: true },
      { name: "b", enabled: false },
      { name: "c", enabled: true },
    ]);
    expect(await outbox.registerSinks(["b"])).toContainEqual({ name: "b", enabled: false });
    expect(await outbox.registerSinks([])).toHaveLength(3);
  });

  it("a refused row holds nothing back; a dead letter is never leased, is counted apart, and retry makes it due again", async () => {
    const store = await open();
    const sql = sqlOf(store);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 4);
    const [r1, r2, r3, r4] = await outbox.lease("s", 10, 30_000);
    await outbox.ack([r1!.id]);
    // ev-2 refused (backing off), ev-3 dead-lettered, ev-4 failed on the transport but due now.
    await outbox.refuse([r2!.id], 60_000, "rejected 1/3: HTTP 413: too large");
    await outbox.deadLetter([r3!.id], "dead-letter: refused 3 times: HTTP 400: bad event");
    await outbox.retry([r4!.id], 0, "ECONNRESET");
    await queue(sql, "s", 1, 5);
    // Neither the refused row nor the dead letter keeps ev-4/ev-5 waiting.
    const next = await outbox.lease("s", 10, 30_000);
    expect(ids(next)).toEqual(["ev-4", "ev-5"]);
    expect(next[0]!.lastError).toBe("ECONNRESET");
    await outbox.ack(next.map((r) => r.id));
    let st = (await outbox.status()).find((s) => s.sink === "s")!;
    expect(st).toMatchObject({ pending: 1, deadLettered: 1, lastError: "rejected 1/3: HTTP 413: too large", deadLetterError: "dead-letter: refused 3 times: HTTP 400: bad event" });
    // A transport failure keeps the refusal count.
    await outbox.retry([r2!.id], 0, "ECONNREFUSED");
    const again = await outbox.lease("s", 10, 30_000);
    expect(again.map((r) => [r.eventId, r.lastError])).toEqual([["ev-2", "rejected 1/3: HTTP 413: too large"]]);
    await outbox.ack([again[0]!.id]);
    expect(await outbox.lease("s", 10, 30_000)).toEqual([]);
    // retry NAME: the dead letter is due again, first in line, with a fresh count.
    expect(await outbox.redeliverDeadLetters("s")).toBe(1);
    expect(await outbox.redeliverDeadLetters("s")).toBe(0);
    const back = await outbox.lease("s", 10, 30_000);
    expect(back.map((r) => [r.eventId, r.lastError, r.attempts])).toEqual([["ev-3", null, 1]]);
    st = (await outbox.status()).find((s) => s.sink === "s")!;
    expect(st).toMatchObject({ pending: 1, deadLettered: 0, deadLetterError: null });
  });

  it("a row backing off after a transport failure still holds newer rows back; a leased one does not", async () => {
    const store = await open();
    const sql = sqlOf(store);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 3);
    const [r1] = await outbox.lease("s", 1, 30_000);
    // ev-1 is leased (in flight elsewhere): ev-2 and ev-3 go on.
    const rest = await outbox.lease("s", 10, 30_000);
    expect(ids(rest)).toEqual(["ev-2", "ev-3"]);
    await outbox.retry([r1!.id], 60_000, "HTTP 503");
    await outbox.retry(rest.map((r) => r.id), 0, "HTTP 503");
    expect(await outbox.lease("s", 10, 30_000)).toEqual([]);
  });

  it("leases in id order, exclusively; ack deletes; retry backs off and holds newer rows back", async () => {
    const store = await open();
    const sql = sqlOf(store);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 5);
    const first = await outbox.lease("s", 3, 30_000);
    expect(ids(first)).toEqual(range(1, 3));
    expect(first.map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(first[0]!.payload).toEqual({ n: 1, text: 'é "q" ]' });
    // Leased rows are not handed out again; the rest are.
    expect(ids(await outbox.lease("s", 10, 30_000))).toEqual(range(4, 5));
    await outbox.ack(first.slice(0, 1).map((r) => r.id));
    await outbox.retry(first.slice(1).map((r) => r.id), 60_000, "HTTP 503");
    await queue(sql, "s", 2, 6);
    // ev-2/ev-3 back off; ev-6/ev-7 are due but must not overtake them.
    expect(await outbox.lease("s", 10, 30_000)).toEqual([]);
    const st = (await outbox.status()).find((s) => s.sink === "s")!;
    expect(st).toMatchObject({ pending: 6, lastError: "HTTP 503" });
    expect(st.oldestPendingSeconds).toBeGreaterThanOrEqual(0);
    // Due again now: handed out first, with their attempts counted.
    await outbox.retry(first.slice(1).map((r) => r.id), 0, "HTTP 503");
    const again = await outbox.lease("s", 10, 30_000);
    expect(ids(again)).toEqual(["ev-2", "ev-3", "ev-6", "ev-7"]);
    expect(again.map((r) => r.attempts)).toEqual([2, 2, 1, 1]);
  });

  it("a lease that ran out (a gateway died mid-delivery) is handed out again", async () => {
    const store = await open();
    const sql = sqlOf(store);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 2);
    expect(ids(await outbox.lease("s", 10, 1))).toEqual(range(1, 2));
    await new Promise((r) => setTimeout(r, 20));
    const again = await outbox.lease("s", 10, 30_000);
    expect(ids(again)).toEqual(range(1, 2));
    expect(again.map((r) => r.attempts)).toEqual([2, 2]);
  });
});

/** Records what it is given and which events are in flight, to catch overlap. */
class RecordingSink implements SinkTransport {
  readonly kind = "webhook";
  readonly target = "test://sink";
  received: string[] = [];
  overlaps: string[] = [];
  constructor(
    readonly name: string,
    private readonly inFlight: Set<string>,
    private readonly up: () => boolean,
  ) {}
  async deliver(events: SiemEvent[]): Promise<DeliveryResult> {
    for (const e of events) {
      if (this.inFlight.has(e.id)) this.overlaps.push(e.id);
      this.inFlight.add(e.id);
    }
    // Yield so the other forwarder's lease runs while this batch is in flight.
    await new Promise((r) => setTimeout(r, 5));
    for (const e of events) this.inFlight.delete(e.id);
    if (!this.up()) return { delivered: 0, error: "HTTP 503" };
    this.received.push(...events.map((e) => e.id));
    return { delivered: events.length };
  }
  async close(): Promise<void> {}
}

describe("two forwarders on two connection pools", () => {
  it("never have the same row in flight, and together deliver every event (exactly once without failures)", async () => {
    const [a, b] = await pgStores(2);
    const sql = sqlOf(a!);
    await queue(sql, "s", 400);
    const inFlight = new Set<string>();
    const sinks = [new RecordingSink("s", inFlight, () => true), new RecordingSink("s", inFlight, () => true)];
    const opts = { batch: 7, pollMs: 10, retryBaseMs: 5, retryMaxMs: 20, leaseMs: 30_000, log: silent };
    const forwarders = [new SinkForwarder(sinks[0]!, new Outbox(sqlOf(a!)), opts), new SinkForwarder(sinks[1]!, new Outbox(sqlOf(b!)), opts)];
    for (const f of forwarders) f.start();
    cleanups.push(() => Promise.all(forwarders.map((f) => f.stop())));
    const outbox = new Outbox(sql);
    for (let i = 0; i < 500 && (await outbox.status()).find((s) => s.sink === "s")?.pending !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(forwarders.map((f) => f.stop()));
    const all = [...sinks[0]!.received, ...sinks[1]!.received];
    expect(sinks[0]!.overlaps).toEqual([]);
    expect(sinks[1]!.overlaps).toEqual([]);
    expect(all.sort()).toEqual(range(1, 400).sort());
    // Both took part: the leases really were concurrent.
    expect(sinks[0]!.received.length).toBeGreaterThan(0);
    expect(sinks[1]!.received.length).toBeGreaterThan(0);
  });

  it("a sink that is down for a while, then back, gets every event; none lost", async () => {
    const [a, b] = await pgStores(2);
    const sql = sqlOf(a!);
    await queue(sql, "s", 50);
    let up = false;
    const inFlight = new Set<string>();
    const sinks = [new RecordingSink("s", inFlight, () => up), new RecordingSink("s", inFlight, () => up)];
    const opts = { batch: 10, pollMs: 10, retryBaseMs: 5, retryMaxMs: 40, leaseMs: 30_000, log: silent };
    const forwarders = [new SinkForwarder(sinks[0]!, new Outbox(sqlOf(a!)), opts), new SinkForwarder(sinks[1]!, new Outbox(sqlOf(b!)), opts)];
    for (const f of forwarders) f.start();
    cleanups.push(() => Promise.all(forwarders.map((f) => f.stop())));
    const outbox = new Outbox(sql);
    // Down until both forwarders have failed a few times, with more events queued meanwhile.
    for (let i = 0; i < 500 && forwarders.some((f) => f.snapshot.failures < 3); i++) await new Promise((r) => setTimeout(r, 10));
    await queue(sql, "s", 50, 51);
    expect(forwarders.every((f) => f.snapshot.failures >= 3)).toBe(true);
    expect(forwarders.map((f) => f.snapshot.lastError)).toEqual(["HTTP 503", "HTTP 503"]);
    up = true;
    for (let i = 0; i < 500 && (await outbox.status()).find((s) => s.sink === "s")?.pending !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(forwarders.map((f) => f.stop()));
    const all = [...sinks[0]!.received, ...sinks[1]!.received];
    expect(new Set(all).size).toBe(100);
    expect([...new Set(all)].sort()).toEqual(range(1, 100).sort());
    expect(forwarders[0]!.snapshot.delivered + forwarders[1]!.snapshot.delivered).toBe(all.length);
  });
});

/**
 * A receiver with a validating rule: it refuses (as a 4xx would) any request
 * that carries one of `bad`, and takes everything else. Records what it took.
 */
class ValidatingSink implements SinkTransport {
  readonly kind = "webhook";
  readonly target = "test://validating";
  received: string[] = [];
  requests = 0;
  constructor(
    readonly name: string,
    readonly bad: Set<string>,
  ) {}
  async deliver(events: SiemEvent[]): Promise<DeliveryResult> {
    this.requests++;
    if (events.some((e) => this.bad.has(e.id))) return { delivered: 0, error: "HTTP 413: payload too large", rejected: events.length };
    this.received.push(...events.map((e) => e.id));
    return { delivered: events.length };
  }
  async close(): Promise<void> {}
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

describe("refused events on PostgreSQL", () => {
  it("one event the receiver refuses no longer blocks the sink: the rest is delivered, it is dead-lettered, and retry sends it again", async () => {
    const [store] = await pgStores(1);
    const sql = sqlOf(store!);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 30);
    const sink = new ValidatingSink("s", new Set(["ev-3"]));
    const f = new SinkForwarder(sink, outbox, { batch: 10, pollMs: 10, retryBaseMs: 5, retryMaxMs: 20, leaseMs: 30_000, deadLetterAfter: 3, log: silent });
    f.start();
    cleanups.push(() => f.stop());
    const status = async () => (await outbox.status()).find((s) => s.sink === "s")!;
    await until(async () => (await status()).deadLettered === 1, "ev-3 dead-lettered");
    // Events queued after it flow as ever.
    await queue(sql, "s", 10, 31);
    await until(async () => (await status()).pending === 0, "everything else delivered");
    expect([...new Set(sink.received)].sort()).toEqual(range(1, 40).filter((id) => id !== "ev-3").sort());
    const st = await status();
    expect(st).toMatchObject({ pending: 0, deadLettered: 1 });
    expect(st.deadLetterError).toBe("dead-letter: refused 3 times: HTTP 413: payload too large");
    expect(f.snapshot).toMatchObject({ refused: 3, deadLettered: 1 });
    // Parked: no more attempts at it.
    const requests = sink.requests;
    await queue(sql, "s", 1, 41);
    await until(async () => (await status()).pending === 0, "ev-41 delivered");
    expect(sink.requests).toBe(requests + 1);
    // The receiver is fixed; retry sends it.
    sink.bad.clear();
    expect(await outbox.redeliverDeadLetters("s")).toBe(1);
    await until(async () => sink.received.includes("ev-3"), "ev-3 delivered after retry");
    await until(async () => (await status()).deadLettered === 0 && (await status()).pending === 0, "outbox empty");
  });

  it("a receiver that refuses everything (a wrong token) is an outage: nothing is dead-lettered, everything waits", async () => {
    const [store] = await pgStores(1);
    const sql = sqlOf(store!);
    const outbox = new Outbox(sql);
    await queue(sql, "s", 5);
    const sink = new ValidatingSink("s", new Set(range(1, 5)));
    const f = new SinkForwarder(sink, outbox, { batch: 10, pollMs: 10, retryBaseMs: 5, retryMaxMs: 20, leaseMs: 30_000, deadLetterAfter: 2, log: silent });
    f.start();
    cleanups.push(() => f.stop());
    // Several rounds, each splitting the batch and finding every event refused.
    await until(async () => f.snapshot.failures >= 4, "several failed rounds");
    await f.stop();
    const st = (await outbox.status()).find((s) => s.sink === "s")!;
    expect(st).toMatchObject({ pending: 5, deadLettered: 0 });
    expect(f.snapshot).toMatchObject({ delivered: 0, refused: 0, deadLettered: 0 });
    // None carries a refusal count either.
    const rows = await sql(`SELECT last_error FROM audit_outbox WHERE sink = 's'`, []);
    expect(rows.map((r) => r.last_error)).toEqual(Array(5).fill("HTTP 413: payload too large"));
  });
});

describe("SiemForwarding on a shared PostgreSQL store", () => {
  /** A logger that keeps what it logs. */
  function capture() {
    const lines: Array<{ level: number; msg: string; sinks?: string[] }> = [];
    const log = pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    return { log, lines };
  }

  it("a gateway with a stale configuration disables nothing and says which enabled sinks it does not deliver; admins enable and disable", async () => {
    const [a, b] = await pgStores(2);
    const hook = { type: "webhook" as const, name: "hook", url: "http://127.0.0.1:9/x", secret: "whsec_0123456789abcdef" };
    const gw1 = await SiemForwarding.start({ sinks: [hook], sql: sqlOf(a!), log: silent, delivery: { pollMs: 60_000 } });
    cleanups.push(() => gw1.stop());
    // The second gateway was deployed without the sink.
    const c = capture();
    const gw2 = await SiemForwarding.start({ sinks: [], sql: sqlOf(b!), log: c.log });
    cleanups.push(() => gw2.stop());
    expect(c.lines.find((l) => l.level === 40 && l.sinks)).toMatchObject({ sinks: ["hook"], msg: expect.stringMatching(/not configured on this gateway/) });
    // Still queued for: the triggers see it enabled.
    const rec = new SessionRecorder(b!, silent);
    const id = await rec.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
    expect(await gw2.status()).toEqual([expect.objectContaining({ name: "hook", configured: false, type: null, enabled: true, pending: 1, deadLettered: 0 })]);
    // An admin disables it (from any gateway): nothing new is queued.
    expect(await gw2.setEnabled("hook", false, "admin-1")).toMatchObject({ name: "hook", enabled: false, pending: 1 });
    await rec.finish(id, { bytesUp: 0, bytesDown: 0, outcome: "ok" });
    expect((await gw1.status())[0]).toMatchObject({ configured: true, enabled: false, pending: 1 });
    // A restart with the sink configured does not override the admin; it warns.
    const c3 = capture();
    const gw3 = await SiemForwarding.start({ sinks: [hook], sql: sqlOf(a!), log: c3.log, delivery: { pollMs: 60_000 } });
    cleanups.push(() => gw3.stop());
    expect(c3.lines.find((l) => l.level === 40 && l.sinks)).toMatchObject({ sinks: ["hook"], msg: expect.stringMatching(/disabled in the store/) });
    expect((await gw3.status())[0]).toMatchObject({ enabled: false });
    expect(await gw3.setEnabled("hook", true, "admin-1")).toMatchObject({ enabled: true });
    await expect(gw3.setEnabled("nope", true, "admin-1")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(gw3.retryDeadLetters("nope", "admin-1")).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await gw3.retryDeadLetters("hook", "admin-1")).toBe(0);
  });

  it("rejects an out-of-range deadLetterAfter or batchBytes", async () => {
    const [a] = await pgStores(1);
    const hook = { type: "webhook" as const, name: "hook", url: "http://127.0.0.1:9/x", secret: "whsec_0123456789abcdef" };
    await expect(SiemForwarding.start({ sinks: [hook], sql: sqlOf(a!), log: silent, delivery: { deadLetterAfter: 0 } })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(SiemForwarding.start({ sinks: [{ ...hook, batchBytes: 10 }], sql: sqlOf(a!), log: silent })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});
