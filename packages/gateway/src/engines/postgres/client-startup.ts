// The client's side of connection startup, as a small state machine:
//   start --SSLRequest--> tls --StartupMessage--> (password) --> ready
//   start --GSSENCRequest--> start ('N': we do not do GSSAPI encryption)
//   start --CancelRequest--> cancel (handled by the caller, connection closed)
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { FrontendReader, type CancelRequest, type FrontendMessage, type StartupMessage } from "./protocol/index.js";
import { PgFatal } from "./errors.js";

export type StartupOutcome =
  | { kind: "startup"; stream: Duplex; reader: FrontendReader; startup: StartupMessage; tls: boolean }
  | { kind: "cancel"; request: CancelRequest };

export interface ClientStartupOptions {
  /** Answer SSLRequest with 'S' and this context; null answers 'N'. */
  tls: tls.SecureContext | null;
  timeoutMs?: number;
  /** Called with the TLS socket once the upgrade starts: from then on, errors must be written there. */
  onTls?: (secure: Duplex) => void;
}

/** Reads messages from a stream through one reader, across a TLS upgrade. */
class Feed {
  private queue: FrontendMessage[] = [];
  private waiter: { resolve: (m: FrontendMessage) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private stream: Duplex | null = null;

  constructor(readonly reader: FrontendReader) {}

  private readonly onData = (chunk: Buffer) => {
    try {
      this.reader.feed(chunk, (m) => this.queue.push(m));
    } catch (err) {
      this.fail(err as Error);
    }
    this.wake();
  };
  private readonly onEnd = () => this.fail(new PgFatal("08006", "client closed the connection during startup"));
  private readonly onError = (err: Error) => this.fail(err);

  attach(stream: Duplex): void {
    this.detach();
    this.stream = stream;
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.resume(); // an explicitly paused stream stays paused when a 'data' listener is added
  }

  /** Stops listening; pausing keeps later bytes for the next reader (a TLS wrap must find the socket flowing). */
  detach(pause = true): void {
    const s = this.stream;
    if (!s) return;
    s.off("data", this.onData);
    s.off("end", this.onEnd);
    s.off("error", this.onError);
    if (pause) s.pause();
    this.stream = null;
  }

  /** Messages read but not taken. After a message the client must wait on, any is a violation. */
  get queued(): number {
    return this.queue.length;
  }

  next(): Promise<FrontendMessage> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const m = this.queue.shift();
    if (m) {
      this.waiter = null;
      w.resolve(m);
    } else if (this.failure) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }
}

/** Runs the startup phase up to (not including) authentication. */
export async function readClientStartup(stream: Duplex, opts: ClientStartupOptions): Promise<StartupOutcome> {
  const feed = new Feed(new FrontendReader());
  let current = stream;
  let encrypted = false;
  feed.attach(current);
  const timer = setTimeout(() => current.destroy(new PgFatal("08P01", "startup timed out")), opts.timeoutMs ?? 15_000);
  try {
    for (;;) {
      const m = await feed.next();
      switch (m.type) {
        case "SSLRequest": {
          if (!opts.tls) {
            current.write(Buffer.from("N"));
            continue;
          }
          feed.detach(false);
          current.write(Buffer.from("S"));
          const secure = new tls.TLSSocket(current as never, { isServer: true, secureContext: opts.tls });
          current = secure;
          encrypted = true;
          opts.onTls?.(secure);
          feed.attach(secure);
          continue;
        }
        case "GSSENCRequest":
          current.write(Buffer.from("N"));
          continue;
        case "CancelRequest":
          feed.detach();
          return { kind: "cancel", request: m };
        case "StartupMessage":
          feed.detach();
          if (feed.queued) throw pipelinedEarly("the startup message");
          return { kind: "startup", stream: current, reader: feed.reader, startup: m, tls: encrypted };
        default:
          throw new PgFatal("08P01", `unexpected ${m.type} during startup`);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the next message after startup (the password), with the same reader. */
export async function readNext(stream: Duplex, reader: FrontendReader, timeoutMs = 30_000): Promise<FrontendMessage> {
  const feed = new Feed(reader);
  feed.attach(stream);
  const timer = setTimeout(() => stream.destroy(new PgFatal("08P01", "authentication timed out")), timeoutMs);
  try {
    const m = await feed.next();
    if (feed.queued) throw pipelinedEarly(`the ${m.type}`);
    return m;
  } finally {
    clearTimeout(timer);
    feed.detach();
  }
}

/** The client sent more before our answer; those messages would otherwise be dropped unseen. */
function pipelinedEarly(what: string): PgFatal {
  return new PgFatal("08P01", `client sent messages after ${what} without waiting for the server's answer`);
}
