// The delivery loop with an in-memory outbox: what it acknowledges, what it
// reschedules and how far ahead. The real outbox is covered in outbox.test.ts.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { SiemEvent } from "./events.js";
import { backoffMs, groupsOf, SinkForwarder } from "./forwarder.js";
import type { Outbox, OutboxRow } from "./outbox.js";
import type { DeliveryResult, SinkTransport } from "./transport.js";

describe("backoffMs", () => {
  it("doubles per attempt up to the cap, with jitter in the upper half", () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, 100, 10_000, () => 1))).toEqual([100, 200, 400, 800]);
    expect([1, 2, 3].map((a) => backoffMs(a, 100, 10_000, () => 0))).toEqual([50, 100, 200]);
    expect(backoffMs(40, 100, 10_000, () => 1)).toBe(10_000);
    expect(backoffMs(40, 100, 10_000, () => 0)).toBe(5_000);
  });
});

function row(n: number, attempts = 1, lastError: string | null = null): OutboxRow {
  return { id: String(n), eventId: `ev-${n}`, type: "statement", payload: { n, started_at: "2030-01-02T03:04:05.678" }, createdAt: new Date(0), attempts, lastError };
}

type Rescheduled = { ids: string[]; delayMs: number; error: string };

/** Hands out each of `leases` once, in turn, then nothing; records what becomes of the rows. */
function fakeOutbox(...leases: OutboxRow[][]) {
  const calls = { acked: [] as string[], retried: [] as Rescheduled[], refused: [] as Rescheduled[], dead: [] as Array<{ ids: string[]; note: string }>, released: [] as string[], leases: 0 };
  const outbox = {
    lease: async () => {
      calls.leases++;
      return leases.shift() ?? [];
    },
    ack: async (ids: string[]) => void calls.acked.push(...ids),
    retry: async (ids: string[], delayMs: number, error: string) => void calls.retried.push({ ids, delayMs, error }),
    refuse: async (ids: string[], delayMs: number, error: string) => void calls.refused.push({ ids, delayMs, error }),
    deadLetter: async (ids: string[], note: string) => void calls.dead.push({ ids, note }),
    release: async (ids: string[]) => void calls.released.push(...ids),
  };
  return { outbox: outbox as unknown as Outbox, calls };
}

/** Answers each delivery with the next of `results` (the last one from then on). */
class ScriptedSink implements SinkTransport {
  readonly kind = "syslog";
  readonly target = "tcp://collector:514";
  seen: SiemEvent[][] = [];
  private readonly results: DeliveryResult[];
  constructor(
    readonly name: string,
    ...results: DeliveryResult[]
  ) {
    this.results = results;
  }
  async deliver(events: SiemEvent[]): Promise<DeliveryResult> {
    this.seen.push(events);
    return this.results.length > 1 ? this.results.shift()! : this.results[0]!;
  }
  async close(): Promise<void> {}
}

/** A receiver that refuses (4xx-like) every request carrying one of `bad` and takes the rest. */
class PickySink implements SinkTransport {
  readonly kind = "webhook";
  readonly target = "https://siem.example";
  seen: string[][] = [];
  constructor(
    readonly name: string,
    private readonly bad: (id: string) => boolean,
  ) {}
  async deliver(events: SiemEvent[]): Promise<DeliveryResult> {
    this.seen.push(events.map((e) => e.id));
    return events.some((e) => this.bad(e.id)) ? { delivered: 0, error: "HTTP 400: invalid event", rejected: events.length } : { delivered: events.length };
  }
  async close(): Promise<void> {}
}

const silentLog = pino({ level: "silent" });

/** Runs the loop until every leased batch is handed out and settled. */
async function run(sink: SinkTransport, leases: OutboxRow[][], deadLetterAfter?: number) {
  const n = leases.length;
  const { outbox, calls } = fakeOutbox(...leases);
  const f = new SinkForwarder(sink, outbox, { batch: 10, pollMs: 5, retryBaseMs: 1000, retryMaxMs: 8000, leaseMs: 30_000, log: silentLog, random: () => 1, ...(deadLetterAfter ? { deadLetterAfter } : {}) });
  f.start();
  // One lease past the last batch: every batch before it is settled. stop() also ends a backoff pause.
  while (calls.leases <= n && !(calls.retried.length && calls.leases === n)) await new Promise((r) => setTimeout(r, 5));
  await f.stop();
  return { calls, stats: f.snapshot };
}

const runOnce = (sink: SinkTransport, rows: OutboxRow[]) => run(sink, [rows]);

describe("SinkForwarder", () => {
  it("hands events over as { id, type, time, data } with UTC timestamps, and acks a full delivery", async () => {
    const sink = new ScriptedSink("s", { delivered: 2 });
    const { calls, stats } = await runOnce(sink, [row(1), row(2)]);
    expect(sink.seen[0]![0]).toEqual({ id: "ev-1", type: "statement", time: "1970-01-01T00:00:00.000Z", data: { n: 1, started_at: "2030-01-02T03:04:05.678Z" } });
    expect(calls.acked).toEqual(["1", "2"]);
    expect(calls.retried).toEqual([]);
    expect(stats).toMatchObject({ delivered: 2, failures: 0, lastError: null });
  });

  it("acks the delivered prefix and reschedules the rest with a backoff from their attempts", async () => {
    const sink = new ScriptedSink("s", { delivered: 1, error: "ECONNRESET" });
    const { calls, stats } = await runOnce(sink, [row(1, 3), row(2, 3), row(3, 3)]);
    expect(calls.acked).toEqual(["1"]);
    expect(calls.retried).toEqual([{ ids: ["2", "3"], delayMs: 4000, error: "ECONNRESET" }]);
    expect(stats).toMatchObject({ delivered: 1, failures: 1, lastError: "ECONNRESET" });
  });
});

describe("SinkForwarder with a receiver that refuses", () => {
  it("splits a refused batch, delivers the others one at a time, and notes the refused event with a backoff of its own", async () => {
    const sink = new PickySink("s", (id) => id === "ev-2");
    const { calls, stats } = await runOnce(sink, [row(1), row(2), row(3)]);
    expect(sink.seen).toEqual([["ev-1", "ev-2", "ev-3"], ["ev-1"], ["ev-2"], ["ev-3"]]);
    expect(calls.acked).toEqual(["1", "3"]);
    expect(calls.refused).toEqual([{ ids: ["2"], delayMs: 1000, error: "rejected 1/20: HTTP 400: invalid event" }]);
    expect(calls.retried).toEqual([]);
    expect(calls.dead).toEqual([]);
    expect(stats).toMatchObject({ delivered: 2, refused: 1, deadLettered: 0, failures: 0, lastError: "HTTP 400: invalid event" });
  });

  it("sends an event refused before on its own, and dead-letters it at the limit", async () => {
    const sink = new PickySink("s", (id) => id === "ev-2");
    const { calls, stats } = await run(sink, [[row(1), row(2, 9, "rejected 2/3: HTTP 400: invalid event"), row(3), row(4)]], 3);
    // No batch fails because of it: it goes alone, the others together.
    expect(sink.seen).toEqual([["ev-1"], ["ev-2"], ["ev-3", "ev-4"]]);
    expect(calls.acked).toEqual(["1", "3", "4"]);
    expect(calls.refused).toEqual([]);
    expect(calls.dead).toEqual([{ ids: ["2"], note: "dead-letter: refused 3 times: HTTP 400: invalid event" }]);
    expect(stats).toMatchObject({ delivered: 3, refused: 1, deadLettered: 1 });
  });

  it("a receiver refusing every event is treated like an outage: nothing counts toward dead-lettering", async () => {
    const sink = new PickySink("s", () => true);
    const { calls, stats } = await run(sink, [[row(1, 3), row(2, 3, "rejected 19/20: HTTP 400: old")]]);
    expect(sink.seen).toEqual([["ev-1"], ["ev-2"]]);
    expect(calls.refused).toEqual([]);
    expect(calls.dead).toEqual([]);
    // Both back off together, held like a failed batch (the outbox keeps ev-2's refusal note).
    expect(calls.retried).toEqual([{ ids: ["1", "2"], delayMs: 4000, error: "HTTP 400: invalid event" }]);
    expect(stats).toMatchObject({ delivered: 0, refused: 0, failures: 1 });
  });

  it("counts a refusal of an event refused before when the receiver took events in the round before", async () => {
    const sink = new PickySink("s", (id) => id === "ev-2");
    const { calls } = await run(sink, [[row(1), row(2)], [row(2, 2, "rejected 1/20: HTTP 400: invalid event")]]);
    expect(sink.seen).toEqual([["ev-1", "ev-2"], ["ev-1"], ["ev-2"], ["ev-2"]]);
    expect(calls.refused.map((r) => r.error)).toEqual(["rejected 1/20: HTTP 400: invalid event", "rejected 2/20: HTTP 400: invalid event"]);
  });

  it("splits only the refused request of a batch sent as several (a byte cap), and keeps going after it", async () => {
    // The transport sent ev-1..2 in one request, then ev-3..4 in another, which was refused; ev-5 was not tried.
    const sink = new ScriptedSink("s", { delivered: 2, error: "HTTP 413: too large", rejected: 2 }, { delivered: 1 }, { delivered: 0, error: "HTTP 413: too large", rejected: 1 }, { delivered: 1 });
    const { calls } = await runOnce(sink, [row(1), row(2), row(3), row(4), row(5)]);
    expect(sink.seen.map((b) => b.map((e) => e.id))).toEqual([["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"], ["ev-3"], ["ev-4"], ["ev-5"]]);
    expect(calls.acked).toEqual(["1", "2", "3", "5"]);
    expect(calls.refused).toEqual([{ ids: ["4"], delayMs: 1000, error: "rejected 1/20: HTTP 413: too large" }]);
  });

  it("a transport failure after a refusal reschedules what was not tried, and still counts the refusal", async () => {
    const sink = new ScriptedSink("s", { delivered: 1, error: "connection reset", rejected: 1 }, { delivered: 0, error: "ECONNREFUSED" });
    const { calls } = await runOnce(sink, [row(1), row(2), row(3)]);
    expect(calls.acked).toEqual(["1"]);
    expect(calls.refused.map((r) => r.ids)).toEqual([["2"]]);
    expect(calls.retried).toEqual([{ ids: ["3"], delayMs: 1000, error: "ECONNREFUSED" }]);
  });

  it("groups a leased batch: events refused before alone, the others together", () => {
    const r = (n: number, refused = false) => row(n, 1, refused ? "rejected 1/20: x" : n % 2 ? "ECONNRESET" : null);
    expect(groupsOf([r(1), r(2), r(3, true), r(4), r(5, true), r(6, true)]).map((g) => g.map((x) => x.id))).toEqual([["1", "2"], ["3"], ["4"], ["5"], ["6"]]);
  });
});
