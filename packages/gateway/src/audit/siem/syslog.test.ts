// The syslog sink against real local collectors: plain TCP and TLS (a CA and
// server certificate made for the test), a refused connection, a collector
// that drops the connection (the next batch re-dials), one that closes the
// connection on a message over its size limit (reported as that event
// refused), and a certificate the sink must not trust.
import net from "node:net";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { desiredSanNames, generateCa, issueServerCert } from "../../crypto/tls-gen.js";
import type { SiemEvent } from "./events.js";
import { parseFrames } from "./syslog-format.js";
import { SyslogSink } from "./syslog.js";

const never = new AbortController().signal;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

interface Collector {
  port: number;
  messages: string[];
  connections: number;
  /** Ends every open connection (the collector restarting its workers). */
  dropAll(): void;
}

/** `maxMessage`: a frame announcing more bytes than this ends the connection (some collectors do). */
async function collector(kind: "tcp" | "tls", tlsOpts?: tls.TlsOptions, maxMessage = Infinity): Promise<Collector> {
  const sockets = new Set<net.Socket>();
  const c: Collector = { port: 0, messages: [], connections: 0, dropAll: () => sockets.forEach((s) => s.destroy()) };
  const onSocket = (s: net.Socket) => {
    c.connections++;
    sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      const r = parseFrames(Buffer.concat([buf, d]));
      c.messages.push(...r.messages);
      buf = Buffer.from(r.rest);
      const announced = /^(\d+) /.exec(buf.subarray(0, 20).toString("latin1"));
      if (announced && Number(announced[1]) > maxMessage) s.destroy();
    });
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  };
  const server = kind === "tls" ? tls.createServer(tlsOpts!, onSocket) : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  c.port = (server.address() as net.AddressInfo).port;
  closers.push(() => {
    c.dropAll();
    return new Promise((r) => server.close(r));
  });
  return c;
}

const ev = (n: number): SiemEvent => ({ id: `statement:${n}`, type: "statement", time: "2030-01-01T00:00:00.000Z", data: { n, session_id: "s", subject: "alice" } });
const evs = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => ev(a + i));
const msgIds = (c: Collector) => c.messages.map((m) => /event_id="([^"]+)"/.exec(m)?.[1]);

async function until(fn: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !fn(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe("SyslogSink", () => {
  it("writes octet-counted RFC 5424 messages over TCP and re-dials after the collector dropped the connection", async () => {
    const c = await collector("tcp");
    const sink = new SyslogSink({ name: "sl", url: `tcp://127.0.0.1:${c.port}`, hostname: "gw-1", timeoutMs: 5_000 });
    closers.push(() => sink.close());
    expect(await sink.deliver(evs(1, 3), never)).toEqual({ delivered: 3 });
    await until(() => c.messages.length === 3);
    expect(msgIds(c)).toEqual(["statement:1", "statement:2", "statement:3"]);
    expect(c.messages[0]).toMatch(/^<110>1 2030-01-01T00:00:00.000Z gw-1 airlock \d+ statement \[airlock@32473 event_id="statement:1" session="s" subject="alice"\] \{"n":1,/);
    c.dropAll();
    // The sink notices the close (FIN) before its next batch.
    await until(() => !sink.connected);
    expect(sink.connected).toBe(false);
    expect(await sink.deliver(evs(4, 5), never)).toEqual({ delivered: 2 });
    await until(() => c.messages.length === 5);
    expect(msgIds(c).slice(3)).toEqual(["statement:4", "statement:5"]);
    expect(c.connections).toBe(2);
  });

  it("speaks TLS (RFC 5425) to a collector whose CA it was given", async () => {
    const ca = await generateCa();
    const cert = await issueServerCert(ca, desiredSanNames());
    const c = await collector("tls", { cert: cert.certPem, key: cert.keyPem });
    const sink = new SyslogSink({ name: "sl", url: `tls://localhost:${c.port}`, caPem: ca.certPem, timeoutMs: 5_000 });
    closers.push(() => sink.close());
    expect(await sink.deliver(evs(1, 2), never)).toEqual({ delivered: 2 });
    await until(() => c.messages.length === 2);
    expect(msgIds(c)).toEqual(["statement:1", "statement:2"]);
  });

  it("refuses a collector certificate it cannot verify, and reports a refused connection", async () => {
    const ca = await generateCa();
    const cert = await issueServerCert(ca, desiredSanNames());
    const c = await collector("tls", { cert: cert.certPem, key: cert.keyPem });
    const untrusting = new SyslogSink({ name: "sl", url: `tls://localhost:${c.port}`, timeoutMs: 5_000 });
    const r = await untrusting.deliver(evs(1, 1), never);
    expect(r.delivered).toBe(0);
    expect(r.error).toMatch(/certificate/i);
    expect(c.messages).toEqual([]);

    const free = net.createServer();
    await new Promise<void>((res) => free.listen(0, "127.0.0.1", res));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((res) => free.close(res));
    const refused = await new SyslogSink({ name: "sl", url: `tcp://127.0.0.1:${port}`, timeoutMs: 5_000 }).deliver(evs(1, 1), never);
    expect(refused.delivered).toBe(0);
    expect(refused.error).toMatch(/ECONNREFUSED/);
    // A connection that cannot be opened is the transport's failure, never a refusal of the event.
    expect(refused.rejected).toBeUndefined();
    expect(r.rejected).toBeUndefined();
  });

  it("a collector closing the connection on a message over its limit: the events before it are delivered, it is reported as refused", async () => {
    const c = await collector("tcp", undefined, 64 * 1024);
    const sink = new SyslogSink({ name: "sl", url: `tcp://127.0.0.1:${c.port}`, timeoutMs: 20_000 });
    closers.push(() => sink.close());
    // Far larger than any socket buffers on both ends: its write cannot complete before the collector closes.
    const big: SiemEvent = { ...ev(3), data: { n: 3, session_id: "s", subject: "alice", text: "x".repeat(64 * 1024 * 1024) } };
    const r = await sink.deliver([ev(1), ev(2), big, ev(4)], never);
    expect(r).toMatchObject({ delivered: 2, rejected: 1 });
    expect(r.error).toBeTruthy();
    await until(() => c.messages.length === 2);
    expect(msgIds(c)).toEqual(["statement:1", "statement:2"]);
    // The next batch re-dials and gets through.
    expect(await sink.deliver([ev(4)], never)).toEqual({ delivered: 1 });
  });

  it("rejects URLs that are not tcp:// or tls://", () => {
    expect(() => new SyslogSink({ name: "sl", url: "udp://x:514", timeoutMs: 1 })).toThrow(/tcp:\/\/ or tls:\/\//);
    expect(new SyslogSink({ name: "sl", url: "tls://collector.example", timeoutMs: 1 }).target).toBe("tls://collector.example:6514");
  });
});
