// Bounded, seeded fuzzing of the Postgres front door: random bytes, truncated
// and oversized messages before and after authentication, and a fake target
// that breaks the protocol. Each bad session must end (an ErrorResponse or a
// close, never a hang or an internal error) while a healthy session keeps
// getting correct answers and the gateway keeps accepting new sessions.
import net from "node:net";
import type tls from "node:tls";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, GUARDRAILS_CEDAR, startPgEnv, type PgEnv } from "./harness/pg.js";
import { fields, msg, tlsConnect, wire, wireLogin } from "./harness/pg-wire.js";

const SEED = Number(process.env.AIRLOCK_FUZZ_SEED ?? 20261123);

/** mulberry32: small, seedable, good enough to spread cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { int, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))), pick: <T>(xs: T[]) => xs[int(xs.length)]! };
}

/** SQLSTATEs a bad session may legitimately end with; anything else (XX000 above all) is a gateway bug. */
const ALLOWED = new Set(["08P01", "08006", "0A000", "28000", "28P01", "3D000", "42601", "42501", "54000", "22021", "26000", "34000", "08004", "57014"]);

let env: PgEnv;
let token = "";

beforeAll(async () => {
  env = await startPgEnv({ name: "badinput", policy: { "policy.cedar": GUARDRAILS_CEDAR } });
  token = await env.token("alice", ["developers"]);
});
afterAll(() => env?.close());

/** Collects everything a socket sends until it closes; resolves with the bytes (fails the case on timeout). */
function drain(socket: net.Socket | tls.TLSSocket, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      socket.destroy();
      reject(new Error("the gateway neither answered nor closed the bad session"));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** SQLSTATEs of the ErrorResponses in a byte stream of backend messages (ignores a leading 'S'/'N'). */
function errorCodes(bytes: Buffer): string[] {
  const codes: string[] = [];
  let p = bytes[0] === 0x53 || bytes[0] === 0x4e ? 1 : 0;
  while (p + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[p]!);
    const len = bytes.readInt32BE(p + 1);
    if (len < 4 || p + 1 + len > bytes.length) break;
    if (type === "E") codes.push(fields({ type, body: bytes.subarray(p + 5, p + 1 + len) }).C ?? "?");
    p += 1 + len;
  }
  return codes;
}

/** A healthy session that keeps checking answers while the fuzzing runs. */
function healthyLoop(client: pg.Client) {
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        const r = await client.query("SELECT $1::int + 1 AS n, 'x@example.com' AS email", [i]);
        if (r.rows[0].n !== i + 1 || r.rows[0].email !== "****") failures.push(JSON.stringify(r.rows));
        else ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { stop: async () => ((stop = true), await done, { ok, failures }) };
}

describe("bad client input", () => {
  it("ends every bad session cleanly while a healthy one keeps working", async () => {
    const rnd = prng(SEED);
    const healthy = await env.connect(token);
    const loop = healthyLoop(healthy);
    const histogram = new Map<string, number>();
    const note = (kind: string, codes: string[]) => {
      for (const code of codes.length ? codes : ["(closed)"]) histogram.set(`${kind} ${code}`, (histogram.get(`${kind} ${code}`) ?? 0) + 1);
      for (const code of codes) expect(ALLOWED, `${kind}: unexpected SQLSTATE ${code}`).toContain(code);
    };
    const startup = wire.startup({ user: "alice", database: env.connection });
    let cases = 0;

    // Before TLS: random bytes, truncated startups, absurd lengths. We half-close after
    // writing, as a crashed client would, so an incomplete message cannot just wait.
    for (let i = 0; i < 160; i++, cases++) {
      const s = net.connect(env.pgPort, "127.0.0.1");
      await new Promise((r) => s.once("connect", r));
      const kind = rnd.pick(["random", "truncated", "oversized", "bad-version"]);
      let bytes: Buffer;
      if (kind === "random") bytes = rnd.bytes(1 + rnd.int(300));
      else if (kind === "truncated") bytes = startup.subarray(0, rnd.int(startup.length));
      else if (kind === "oversized") bytes = Buffer.concat([Buffer.from([0x7f, 0xff, 0xff, rnd.int(256)]), rnd.bytes(rnd.int(64))]);
      else bytes = Buffer.concat([startup.subarray(0, 4), Buffer.from([0, rnd.int(256), 0, rnd.int(256)]), startup.subarray(8)]);
      const closed = drain(s);
      s.end(bytes);
      note(`pre-tls ${kind}`, errorCodes(await closed));
    }

    // Inside TLS, before or instead of a startup message.
    for (let i = 0; i < 40; i++, cases++) {
      const s = await tlsConnect(env.pgPort);
      const kind = rnd.pick(["random", "truncated", "ssl-again"]);
      const bytes = kind === "random" ? rnd.bytes(1 + rnd.int(300)) : kind === "truncated" ? startup.subarray(0, rnd.int(startup.length)) : wire.sslRequest();
      const closed = drain(s);
      s.end(bytes);
      note(`in-tls ${kind}`, errorCodes(await closed));
    }

    // After authentication: garbage, truncated or oversized messages in the middle of a session.
    for (let i = 0; i < 120; i++, cases++) {
      const { conn } = await wireLogin(env.pgPort, token, env.connection);
      const kind = rnd.pick(["garbage", "after-query", "oversized", "truncated", "startup-again"]);
      if (kind === "after-query") {
        conn.send(wire.query("SELECT 1"));
        expect((await conn.untilReady()).map((m) => m.type).join("")).toBe("TDCZ");
      }
      const query = wire.query("SELECT 'a fine statement'");
      const bytes =
        kind === "oversized"
          ? msg("Q", rnd.bytes(8)).fill(0x7f, 1, 2)
          : kind === "truncated"
            ? Buffer.concat([query.subarray(0, 1 + rnd.int(query.length - 2))])
            : kind === "startup-again"
              ? startup
              : Buffer.concat([Buffer.from([rnd.pick([0x00, 0x51, 0x50, 0x42, 0x45, 0x44, 0x70, 0xff])]), rnd.bytes(4 + rnd.int(200))]);
      const closed = drain(conn.socket);
      conn.socket.end(bytes);
      note(`session ${kind}`, errorCodes(await closed));
    }

    const { ok, failures } = await loop.stop();
    console.log(`fuzz seed ${SEED}: ${cases} bad sessions; healthy session ran ${ok} queries meanwhile`);
    console.log([...histogram.entries()].sort().map(([k, n]) => `  ${k}: ${n}`).join("\n"));
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    await healthy.end();
    // New sessions are still accepted.
    const fresh = await env.connect(token);
    expect((await fresh.query("SELECT 41 + 1 AS n")).rows).toEqual([{ n: 42 }]);
    await fresh.end();
    expect(env.gw.child.exitCode).toBeNull();
  });

  it("refuses clear-text bytes after SSLRequest (CVE-2021-23214) and messages sent before their answer", async () => {
    const s = net.connect(env.pgPort, "127.0.0.1");
    await new Promise((r) => s.once("connect", r));
    const closed = drain(s);
    s.write(Buffer.concat([wire.sslRequest(), wire.startup({ user: "alice", database: env.connection })]));
    const bytes = await closed;
    expect(errorCodes(bytes)).toEqual(["08P01"]);
    expect(bytes.toString()).toMatch(/unencrypted data after SSLRequest/);

    // Over TLS: a password sent with the startup message, then a query sent with the password.
    for (const early of [Buffer.concat([wire.startup({ user: "alice", database: env.connection }), wire.password(token)]), null]) {
      const tlsSocket = await tlsConnect(env.pgPort);
      const done = drain(tlsSocket);
      if (early) tlsSocket.write(early);
      else {
        tlsSocket.write(wire.startup({ user: "alice", database: env.connection }));
        await new Promise((r) => tlsSocket.once("data", r)); // AuthenticationCleartextPassword
        tlsSocket.write(Buffer.concat([wire.password(token), wire.query("SELECT 1")]));
      }
      const out = await done;
      expect(errorCodes(out)).toEqual(["08P01"]);
      expect(out.toString()).toMatch(/without waiting for the server's answer/);
    }
  });

  it("answers a message that is too large at once, without reading it", async () => {
    const { conn } = await wireLogin(env.pgPort, token, env.connection);
    const closed = drain(conn.socket);
    // Declares ~1 GiB and sends 5 bytes: the gateway must not wait for (or buffer) the body.
    conn.send(Buffer.from([0x51, 0x40, 0x00, 0x00, 0x00, 0x20]));
    expect(errorCodes(await closed)).toEqual(["54000"]); // program_limit_exceeded, from the codec
  });
});

/** A fake PostgreSQL: trust login (AuthenticationOk, BackendKeyData, ReadyForQuery), then `misbehave`. */
async function fakeTarget(misbehave: (socket: net.Socket, afterQuery: boolean) => void, onQuery: boolean): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let started = false;
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!started && buf.length >= 4 && buf.length >= buf.readInt32BE(0)) {
        started = true;
        buf = buf.subarray(buf.readInt32BE(0));
        s.write(Buffer.concat([msg("R", Buffer.from([0, 0, 0, 0])), msg("K", Buffer.from([0, 0, 0, 1, 1, 2, 3, 4])), msg("Z", Buffer.from("I"))]));
        if (!onQuery) misbehave(s, false);
      } else if (started && onQuery && buf.length > 0) {
        buf = Buffer.alloc(0);
        misbehave(s, true);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

describe("a target that breaks the protocol", () => {
  const rnd = prng(SEED + 1);
  const behaviours: Array<[string, boolean, (s: net.Socket) => void]> = [
    ["random bytes after a query", true, (s) => s.write(rnd.bytes(64))],
    ["a DataRow without a RowDescription", true, (s) => s.write(msg("D", Buffer.from([0, 1, 0, 0, 0, 3]), Buffer.from("abc")))],
    ["an unknown message type", true, (s) => s.write(msg("@", Buffer.from("hello")))],
    ["a huge length", true, (s) => s.write(Buffer.from([0x44, 0x7f, 0xff, 0xff, 0xff]))],
    ["ReadyForQuery out of turn, unprompted", false, (s) => s.write(msg("Z", Buffer.from("I")))],
    ["garbage right after login", false, (s) => s.write(rnd.bytes(32))],
  ];

  it.each(behaviours)("%s: the client gets an error, the gateway carries on", async (name, onQuery, misbehave) => {
    const server = await fakeTarget((s) => misbehave(s), onQuery);
    const conn = `fake-${behaviours.findIndex((b) => b[0] === name)}`;
    await env.addConnection(conn, "127.0.0.1", (server.address() as net.AddressInfo).port);
    try {
      const client = new pg.Client(env.config(token, { connection: conn }));
      client.on("error", () => {});
      const err = await errorOf(client.connect().then(() => client.query("SELECT 1")));
      console.log(`fake target, ${name}: ${(err as { code?: string }).code ?? "-"} ${err.message}`);
      expect(["08P01", "08006", "0A000", undefined]).toContain((err as { code?: string }).code);
      if ((err as { code?: string }).code === undefined) expect(err.message).toMatch(/terminated|closed|ECONNRESET/i);
      await client.end().catch(() => {});
      const fresh = await env.connect(token);
      expect((await fresh.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
      await fresh.end();
    } finally {
      server.close();
    }
  });

  it("a raw client sees an 08P01 ErrorResponse naming the target, then the close", async () => {
    const server = await fakeTarget((s) => s.write(msg("@", Buffer.from("nonsense"))), true);
    await env.addConnection("fake-raw", "127.0.0.1", (server.address() as net.AddressInfo).port);
    try {
      const { conn } = await wireLogin(env.pgPort, token, "fake-raw");
      const closed = drain(conn.socket);
      conn.send(wire.query("SELECT 1"));
      const bytes = await closed;
      expect(errorCodes(bytes)).toEqual(["08P01"]);
      expect(bytes.toString()).toMatch(/target broke the protocol/);
    } finally {
      server.close();
    }
  });
});
