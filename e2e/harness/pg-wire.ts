// A deliberately small, independent Postgres wire client for e2e tests that
// need exact control of the bytes (pipelines with one Sync, binary formats,
// garbage): it does not share code with the gateway's codec on purpose.
// Message layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
//   frontend: Byte1 type, Int32 length (self-inclusive), body; startup-phase messages have no type byte.
//   backend:  Byte1 type, Int32 length, body.
import net from "node:net";
import tls from "node:tls";

const cstr = (s: string) => Buffer.concat([Buffer.from(s, "utf8"), Buffer.from([0])]);
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** A typed frontend message. */
export function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, "ascii"), i32(body.length + 4), body]);
}

export const wire = {
  /** SSLRequest: Int32 8, Int32 80877103. */
  sslRequest: () => Buffer.concat([i32(8), i32(80877103)]),
  /** StartupMessage: Int32 len, Int32 196608 (3.0), (name\0 value\0)*, \0. */
  startup(params: Record<string, string>): Buffer {
    const body = Buffer.concat([i32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
    return Buffer.concat([i32(body.length + 4), body]);
  },
  password: (p: string) => msg("p", cstr(p)),
  query: (sql: string) => msg("Q", cstr(sql)),
  /** Parse: name, query, Int16 nParamTypes (0 here). */
  parse: (sql: string, name = "") => msg("P", cstr(name), cstr(sql), i16(0)),
  /** Bind: portal, statement, param formats (none = text), params (text), result formats. */
  bind(params: (string | null)[] = [], resultFormats: number[] = [], statement = "", portal = ""): Buffer {
    const values = params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(p)), Buffer.from(p)])));
    return msg("B", cstr(portal), cstr(statement), i16(0), i16(params.length), ...values, i16(resultFormats.length), ...resultFormats.map(i16));
  },
  describePortal: (portal = "") => msg("D", Buffer.from("P"), cstr(portal)),
  execute: (portal = "", maxRows = 0) => msg("E", cstr(portal), i32(maxRows)),
  sync: () => msg("S"),
  terminate: () => msg("X"),
};

export interface BackendMsg {
  type: string;
  body: Buffer;
}

/** ErrorResponse/NoticeResponse fields by code letter (S, C, M, D, …). */
export function fields(m: BackendMsg): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < m.body.length && m.body[p] !== 0) {
    const code = String.fromCharCode(m.body[p]!);
    const end = m.body.indexOf(0, p + 1);
    out[code] = m.body.toString("utf8", p + 1, end);
    p = end + 1;
  }
  return out;
}

/** DataRow values (null for SQL NULL). */
export function dataRow(m: BackendMsg): (Buffer | null)[] {
  const n = m.body.readInt16BE(0);
  const values: (Buffer | null)[] = [];
  let p = 2;
  for (let i = 0; i < n; i++) {
    const len = m.body.readInt32BE(p);
    p += 4;
    if (len < 0) values.push(null);
    else {
      values.push(m.body.subarray(p, p + len));
      p += len;
    }
  }
  return values;
}

/** A connection that reads whole backend messages. */
export class WireConn {
  private buf = Buffer.alloc(0);
  private readonly queue: BackendMsg[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  constructor(readonly socket: net.Socket | tls.TLSSocket) {
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < 1 + len) break;
        this.queue.push({ type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, 1 + len) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  send(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** The next message, or null once the connection closed (or timeoutMs passed). */
  async next(timeoutMs = 15_000): Promise<BackendMsg | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, Math.max(1, deadline - Date.now()));
      });
    }
    return this.queue.shift()!;
  }

  /** Messages up to and including ReadyForQuery (or until the connection closes). */
  async untilReady(timeoutMs = 15_000): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!m) return out;
      out.push(m);
      if (m.type === "Z") return out;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** TCP connect, SSLRequest, TLS (no verification), then nothing else. */
export async function tlsConnect(port: number, host = "127.0.0.1"): Promise<tls.TLSSocket> {
  const raw = net.connect(port, host);
  await new Promise<void>((resolve, reject) => raw.once("connect", resolve).once("error", reject));
  raw.write(wire.sslRequest());
  const answer = await new Promise<Buffer>((resolve, reject) => raw.once("data", resolve).once("error", reject));
  if (answer.toString() !== "S") throw new Error(`server refused TLS: ${answer.toString()}`);
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => secure.once("secureConnect", resolve).once("error", reject));
  return secure;
}

/** A logged-in session through the front door: TLS, startup, token as password, up to ReadyForQuery. */
export async function wireLogin(port: number, token: string, connection: string): Promise<{ conn: WireConn; hello: BackendMsg[] }> {
  const conn = new WireConn(await tlsConnect(port));
  conn.send(wire.startup({ user: "alice", database: connection }));
  const auth = await conn.next();
  if (auth?.type !== "R") throw new Error(`expected an authentication request, got ${auth?.type}`);
  conn.send(wire.password(token));
  const hello = await conn.untilReady();
  if (hello.at(-1)?.type !== "Z") throw new Error(`login failed: ${JSON.stringify(hello.map((m) => (m.type === "E" ? fields(m) : m.type)))}`);
  return { conn, hello };
}

/** The transaction status byte of a ReadyForQuery ('I', 'T' or 'E'). */
export const readyStatus = (msgs: BackendMsg[]): string | undefined => {
  const z = msgs.findLast((m) => m.type === "Z");
  return z ? String.fromCharCode(z.body[0]!) : undefined;
};

/** A plain (no TLS) trust-auth session straight on a PostgreSQL server: the reference to compare with. */
export async function plainLogin(port: number, user: string, database: string, host = "127.0.0.1"): Promise<WireConn> {
  const raw = net.connect(port, host);
  await new Promise<void>((resolve, reject) => raw.once("connect", resolve).once("error", reject));
  const conn = new WireConn(raw);
  conn.send(wire.startup({ user, database }));
  const hello = await conn.untilReady();
  if (hello.at(-1)?.type !== "Z") throw new Error("direct login failed");
  return conn;
}
