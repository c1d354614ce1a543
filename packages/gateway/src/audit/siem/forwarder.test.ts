// The delivery loop with an in-memory outbox: what it acknowledges, what it
// reschedules and how far ahead. The real outbox is covered in outbox.test.ts.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { SiemEvent } from "./events.js";
import { backoffMs, SinkForwarder } from "./forwarder.js";
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

function row(n: number, attempts = 1): OutboxRow {
  return { id: String(n), eventId: `ev-${n}`, type: "statement", payload: { n, started_at: "2030-01-02T03:04:05.678" }, createdAt: new Date(0), attempts };
}

/** Hands out `rows` once, then nothing; records acks and retries. */
function fakeOutbox(rows: OutboxRow[]) {
  const calls = { acked: [] as string[], retried: [] as Array<{ ids: string[]; delayMs: number; error: string }> };
  let pending = rows;
  const outbox = {
    lease: async () => {
      const out = pending;
      pending = [];
      return out;
    },
    ack: async (ids: string[]) => void calls.acked.push(...ids),
    retry: async (ids: string[], delayMs: number, error: string) => void calls.retried.push({ ids, delayMs, error }),
  };
  return { outbox: outbox as unknown as Outbox, calls };
}

class ScriptedSink implements SinkTransport {
  readonly kind = "syslog";
  readonly target = "tcp://collector:514";
  seen: SiemEvent[][] = [];
  constructor(
    readonly name: string,
    private readonly result: DeliveryResult,
  ) {}
  async deliver(events: SiemEvent[]): Promise<DeliveryResult> {
    this.seen.push(events);
    return this.result;
  }
  async close(): Promise<void> {}
}

async function runOnce(sink: ScriptedSink, rows: OutboxRow[]) {
  const { outbox, calls } = fakeOutbox(rows);
  const f = new SinkForwarder(sink, outbox, { batch: 10, pollMs: 5, retryBaseMs: 1000, retryMaxMs: 8000, leaseMs: 30_000, log: pino({ level: "silent" }), random: () => 1 });
  f.start();
  // Until that one batch is settled: all acked, or the rest rescheduled. stop() also ends a backoff pause.
  while (calls.acked.length < rows.length && !calls.retried.length) await new Promise((r) => setTimeout(r, 5));
  await f.stop();
  return { calls, stats: f.snapshot };
}

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
