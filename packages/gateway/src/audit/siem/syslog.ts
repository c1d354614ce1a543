// The syslog sink: RFC 5424 messages, octet-counted (RFC 6587), over TCP or
// TLS (RFC 5425). One connection is kept open and re-dialled when it breaks.
//
// Syslog has no application-level acknowledgement: an event counts as
// delivered once its write callback fired, i.e. the kernel took the bytes.
// A collector that crashes with data in its buffers loses it, and we cannot
// know; the webhook sink (2xx per batch) is the path without that gap.
//
// Nor can a collector refuse one message, except by breaking the connection
// (as some do on a message over their size limit). So when a connection that
// worked breaks while an event is being written (not by our own timeout or
// shutdown), that event is reported as `rejected`: the forwarder sends it
// alone and, should that keep happening to it while other events get through,
// dead-letters it instead of stalling the sink behind it. A refused or failed
// connect is a plain transport failure, retried for as long as it takes.
import net from "node:net";
import os from "node:os";
import tls from "node:tls";
import { AirlockError } from "@airlock/shared";
import type { SiemEvent } from "./events.js";
import { formatMessage, frame, type SyslogHeader } from "./syslog-format.js";
import { describeError, type DeliveryResult, type SinkTransport } from "./transport.js";

export interface SyslogSinkOptions {
  name: string;
  /** tcp://host:port or tls://host:port (default ports 514 and 6514). */
  url: string;
  caPem?: string;
  /** TLS without certificate checks (tests only). */
  insecure?: boolean;
  /** HOSTNAME field (default: this machine's name). */
  hostname?: string;
  /** Connecting, and writing one batch. */
  timeoutMs: number;
}

function parseUrl(name: string, url: string): { tls: boolean; host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AirlockError("CONFIG_INVALID", `SIEM sink ${name}: url is not a valid URL`);
  }
  if (u.protocol !== "tcp:" && u.protocol !== "tls:") throw new AirlockError("CONFIG_INVALID", `SIEM sink ${name}: url must be tcp:// or tls://`);
  const secure = u.protocol === "tls:";
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!host) throw new AirlockError("CONFIG_INVALID", `SIEM sink ${name}: url has no host`);
  return { tls: secure, host, port: u.port ? Number(u.port) : secure ? 6514 : 514 };
}

/** Resolves when the socket can take more, or is gone (the write callbacks then report the failure). */
function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.once("drain", done);
    socket.once("close", done);
  });
}

export class SyslogSink implements SinkTransport {
  readonly kind = "syslog";
  readonly name: string;
  readonly target: string;
  private readonly endpoint: { tls: boolean; host: string; port: number };
  private readonly header: SyslogHeader;
  private socket: net.Socket | null = null;
  /** Why the current socket broke, for the delivery that notices. */
  private broken: string | null = null;

  constructor(private readonly opts: SyslogSinkOptions) {
    this.name = opts.name;
    this.endpoint = parseUrl(opts.name, opts.url);
    const h = this.endpoint.host.includes(":") ? `[${this.endpoint.host}]` : this.endpoint.host;
    this.target = `${this.endpoint.tls ? "tls" : "tcp"}://${h}:${this.endpoint.port}`;
    this.header = { hostname: opts.hostname ?? os.hostname(), procId: String(process.pid) };
  }

  /** Whether a connection to the collector is open now. */
  get connected(): boolean {
    return this.socket !== null && !this.socket.destroyed;
  }

  async deliver(events: SiemEvent[], signal: AbortSignal): Promise<DeliveryResult> {
    if (!events.length) return { delivered: 0 };
    // A kept-open connection may have died unnoticed; a first write failing on it says nothing about the event.
    const reused = this.socket !== null && !this.socket.destroyed && this.socket.writable;
    let socket: net.Socket;
    try {
      socket = await this.connect(signal);
    } catch (err) {
      return { delivered: 0, error: `cannot connect to ${this.target}: ${describeError(err)}` };
    }
    // The socket broken on our side (timeout, shutdown), not by the collector.
    let ours = false;
    // A collector that stops reading must not hold the batch forever.
    const timer = setTimeout(() => ((ours = true), socket.destroy(new Error(`timed out writing to ${this.target}`))), this.opts.timeoutMs);
    const onAbort = () => ((ours = true), socket.destroy(new Error("gateway is stopping")));
    signal.addEventListener("abort", onAbort, { once: true });
    // A write whose callback has not fired when the socket closes is not known to have left: retried.
    let onClose = () => {};
    const closed = new Promise<Error>((resolve) => (onClose = () => resolve(new Error(this.broken ?? "connection closed"))));
    socket.once("close", onClose);
    const written: Array<Promise<Error | null>> = [];
    let result: { ok: number; err: Error | null };
    try {
      for (const e of events) {
        if (socket.destroyed) break;
        // Node calls back without an error for a write still pending when the socket is destroyed
        // (stream_base_commons onWriteComplete): the bytes did not necessarily leave, so not delivered.
        const done = new Promise<Error | null>((resolve) =>
          socket.write(frame(formatMessage(e, this.header)), (err) => resolve(err ?? (socket.destroyed ? new Error(this.broken ?? "connection closed") : null))),
        );
        written.push(Promise.race([done, closed]));
        // Backpressure: memory stays at one batch even when the collector is slow.
        if (socket.writableNeedDrain) await drained(socket);
      }
      result = await this.firstFailure(written);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.off("close", onClose);
    }
    return this.tally(events.length, result, !ours && (!reused || result.ok > 0));
  }

  /** Write callbacks fire in order; the delivered prefix ends at the first error. */
  private async firstFailure(written: Array<Promise<Error | null>>): Promise<{ ok: number; err: Error | null }> {
    let ok = 0;
    for (const p of written) {
      const err = await p;
      if (err) return { ok, err };
      ok++;
    }
    return { ok, err: null };
  }

  /** `byCollector`: the collector broke a connection that worked, while taking event `r.ok`. */
  private tally(total: number, r: { ok: number; err: Error | null }, byCollector: boolean): DeliveryResult {
    if (r.ok >= total && !r.err) return { delivered: total };
    const error = r.err ? describeError(r.err) : (this.broken ?? "connection closed");
    this.drop();
    return { delivered: Math.min(r.ok, total), error, ...(byCollector ? { rejected: 1 } : {}) };
  }

  private connect(signal: AbortSignal): Promise<net.Socket> {
    const current = this.socket;
    if (current && !current.destroyed && current.writable) return Promise.resolve(current);
    this.drop();
    const { host, port } = this.endpoint;
    return new Promise((resolve, reject) => {
      const socket = this.endpoint.tls
        ? tls.connect({
            host,
            port,
            ...(net.isIP(host) ? {} : { servername: host }),
            ...(this.opts.caPem ? { ca: this.opts.caPem } : {}),
            rejectUnauthorized: !this.opts.insecure,
          })
        : net.connect({ host, port });
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error("connect timed out")), this.opts.timeoutMs);
      const onAbort = () => fail(new Error("gateway is stopping"));
      const ready = () => {
        cleanup();
        this.adopt(socket);
        resolve(socket);
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        socket.off("error", fail);
        socket.off(this.endpoint.tls ? "secureConnect" : "connect", ready);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", fail);
      socket.once(this.endpoint.tls ? "secureConnect" : "connect", ready);
    });
  }

  /** Watches a connected socket: a collector that closes or fails it gets a fresh one next time. */
  private adopt(socket: net.Socket): void {
    this.socket = socket;
    this.broken = null;
    socket.setKeepAlive(true, 30_000);
    socket.setNoDelay(true);
    // Collectors send nothing; whatever comes is discarded so it cannot pile up.
    socket.resume();
    socket.on("error", (err) => {
      if (this.socket === socket) this.broken = describeError(err);
    });
    socket.on("end", () => socket.destroy());
    socket.on("close", () => {
      if (this.socket === socket) {
        this.broken ??= "the collector closed the connection";
        this.socket = null;
      }
    });
  }

  private drop(): void {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (!s || s.destroyed) return;
    // Let queued bytes go out, but do not wait on a collector that stopped reading.
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (s.destroy(), resolve()), 1_000);
      s.end(() => (clearTimeout(t), resolve()));
    });
    s.destroy();
  }
}
