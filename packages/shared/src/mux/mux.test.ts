import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import type { CommonFrame } from "./frames.js";
import { Mux } from "./mux.js";
import type { MuxStream } from "./stream.js";

/**
 * Two muxes joined by an in-memory link that delivers asynchronously and
 * reports backpressure once `linkBuffer` bytes are queued, like a gRPC call.
 */
function pair(opts: { window?: number; linkBuffer?: number; keepalive?: number } = {}) {
  const window = opts.window ?? 256 * 1024;
  const limit = opts.linkBuffer ?? 512 * 1024;
  const mk = () => ({ queue: [] as CommonFrame[], bytes: 0, scheduled: false });
  const qa = mk(); // frames from a to b
  const qb = mk();
  const size = (f: CommonFrame) => (f.case === "data" ? f.value.payload.length : 16);
  const muxOpts = { initialWindow: window, keepaliveIntervalMs: opts.keepalive ?? 0, keepaliveTimeoutMs: (opts.keepalive ?? 0) * 3 };
  let a!: Mux;
  let b!: Mux;
  const writer = (q: ReturnType<typeof mk>, from: () => Mux, to: () => Mux) => (f: CommonFrame) => {
    q.queue.push(f);
    q.bytes += size(f);
    if (!q.scheduled) {
      q.scheduled = true;
      setImmediate(() => {
        q.scheduled = false;
        const frames = q.queue.splice(0);
        q.bytes = 0;
        for (const fr of frames) to().receive(fr);
        from().onTransportDrain();
      });
    }
    return q.bytes < limit;
  };
  a = new Mux(writer(qa, () => a, () => b), muxOpts, window);
  b = new Mux(writer(qb, () => b, () => a), muxOpts, window);
  const open = (): [MuxStream, MuxStream] => {
    const sa = a.openStream();
    const sb = b.acceptStream(sa.id);
    if (!sb) throw new Error("accept failed");
    return [sa, sb];
  };
  return { a, b, open, qa };
}

// Not `for await`: the async iterator destroys a Duplex when its readable side
// ends, which would reset a stream that is only half-closed.
function readAll(s: MuxStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
  });
}

describe("Mux", () => {
  it("carries bytes both ways with half-close honoured each way", async () => {
    const { a, b, open } = pair();
    const [sa, sb] = open();
    const up = randomBytes(3 * 1024 * 1024 + 17);
    const down = randomBytes(2 * 1024 * 1024 + 5);
    const gotUp = readAll(sb);
    sa.end(up);
    // b can still write after a half-closed its side.
    expect((await gotUp).equals(up)).toBe(true);
    const gotDown = readAll(sa);
    sb.end(down);
    expect((await gotDown).equals(down)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(a.size).toBe(0);
    expect(b.size).toBe(0);
  });

  it("a reader that stops does not stall other streams, and buffers at most one window", async () => {
    const window = 128 * 1024;
    const { open } = pair({ window });
    const [slowA, slowB] = open();
    const [fastA, fastB] = open();
    slowB.pause();
    let slowWritten = 0;
    const big = Buffer.alloc(64 * 1024, 1);
    // Keep the slow stream's writer busy: it must stop once credit runs out.
    const pump = () => {
      while (slowA.write(big)) slowWritten += big.length;
      slowWritten += big.length;
    };
    pump();
    slowA.on("drain", pump);
    const payload = randomBytes(8 * 1024 * 1024);
    const got = readAll(fastB);
    fastA.end(payload);
    expect((await got).equals(payload)).toBe(true);
    // The paused receiver holds no more than the window it granted.
    expect(slowB.readableLength).toBeLessThanOrEqual(window);
    expect(slowB.bytesIn).toBeLessThanOrEqual(window);
    // The sender accepted at most the window in flight plus its own write buffer.
    expect(slowWritten).toBeLessThanOrEqual(window + slowA.writableHighWaterMark + big.length);
    slowB.on("error", () => {});
    slowA.destroy();
  });

  it("a peer exceeding the window is a fatal flow-control violation", async () => {
    const { b, open } = pair({ window: 1024 });
    const [sa, sb] = open();
    sb.on("error", () => {});
    const fatal = once(b, "fatal");
    b.receive({ case: "data", value: { $typeName: "airlock.tunnel.v1.Data", streamId: sa.id, payload: new Uint8Array(2048) } });
    const [err] = (await fatal) as [AirlockError];
    expect(err.code).toBe("FLOW_CONTROL_VIOLATION");
  });

  it("frames for a never-opened stream are fatal; for an ended stream they are ignored", async () => {
    const { a, b, open } = pair();
    const [sa, sb] = open();
    sa.on("error", () => {});
    sb.destroy();
    await new Promise((r) => setImmediate(r));
    b.receive({ case: "data", value: { $typeName: "airlock.tunnel.v1.Data", streamId: sb.id, payload: new Uint8Array(10) } });
    expect(b.isDead).toBe(false);
    expect(sa.destroyed).toBe(true);
    const fatal = once(a, "fatal");
    a.receive({ case: "halfClose", value: { $typeName: "airlock.tunnel.v1.HalfClose", streamId: 99 } });
    const [err] = (await fatal) as [AirlockError];
    expect(err.code).toBe("LINK_PROTOCOL_ERROR");
    expect(err.message).toMatch(/never opened/);
  });

  it("a stream reset carries its error code to the other side", async () => {
    const { open } = pair();
    const [sa, sb] = open();
    const failed = once(sa, "error");
    sb.on("error", () => {});
    sb.destroy(new AirlockError("STREAM_REFUSED", "connect ECONNREFUSED 10.0.0.1:5432"));
    const [err] = (await failed) as [AirlockError];
    expect(err.code).toBe("STREAM_REFUSED");
    expect(err.message).toContain("ECONNREFUSED");
  });

  it("link failure ends every stream with the link's error", async () => {
    const { a, open } = pair();
    const streams = [open(), open(), open()].map(([s]) => s);
    const errors = Promise.all(streams.map((s) => once(s, "error")));
    a.shutdown(new AirlockError("LINK_LOST", "agent went away"));
    const errs = (await errors).map(([e]) => (e as AirlockError).code);
    expect(errs).toEqual(["LINK_LOST", "LINK_LOST", "LINK_LOST"]);
    expect(() => a.openStream()).toThrow(/agent went away/);
  });

  it("keepalive declares a silent peer dead within the timeout", async () => {
    const a = new Mux(() => true, { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 200 });
    const started = Date.now();
    a.startKeepalive();
    const [err] = (await once(a, "fatal")) as [AirlockError];
    expect(err.code).toBe("LINK_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("keepalive stays up while the peer answers pings", async () => {
    const { a, b } = pair({ keepalive: 30 });
    a.startKeepalive();
    b.startKeepalive();
    await new Promise((r) => setTimeout(r, 400));
    expect(a.isDead).toBe(false);
    expect(b.isDead).toBe(false);
    a.shutdown(new AirlockError("LINK_LOST"));
    b.shutdown(new AirlockError("LINK_LOST"));
  });
});
