// The outbox against real stores (a throwaway PostgreSQL database, and PGlite):
// the triggers queue one row per enabled sink, leases are exclusive, acks
// delete, retries back off and hold newer rows back, and two forwarders on two
// connection pools never have the same row in flight at once.
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
  await new Outbox(sql).syncSinks([sink]);
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
    await outbox.syncSinks(["siem-a", "old"]);
    await outbox.syncSinks(["siem-a"]);
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
