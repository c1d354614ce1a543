// connectTarget/cancelOnTarget against a real PostgreSQL (own instance, TLS on, one role per method).
import net from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AirlockError } from "@airlock/shared/errors";
import { generateCa } from "../../../crypto/tls-gen.js";
import type { BackendMessage } from "../protocol/types.js";
import { writeFrontend } from "../protocol/writer.js";
import { cancelOnTarget, connectTarget, type TargetConnection, type TargetTlsOptions } from "./connect.js";
import { startTestPostgres, type TestPostgres, type TestUser } from "./test-server.js";

let pgs: TestPostgres;
beforeAll(async () => {
  const t0 = performance.now();
  pgs = await startTestPostgres({ ssl: true });
  console.log(`test PostgreSQL (initdb + start + roles) ready in ${(performance.now() - t0).toFixed(0)} ms`);
});
afterAll(async () => {
  await pgs?.stop();
});

function dial(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(pgs.port, pgs.host, () => resolve(s));
    s.once("error", reject);
  });
}

/** A Duplex that is not a net.Socket, like the tunnel's mux stream: bytes relayed to and from a socket. */
async function dialDuplex(): Promise<Duplex> {
  const sock = await dial();
  const d = new Duplex({
    read: () => void sock.resume(),
    write: (chunk, _enc, cb) => void sock.write(chunk, cb),
    // The socket may already be finished (the server closed first): ending it again would throw.
    final: (cb) => (sock.writableEnded || sock.destroyed ? cb() : void sock.end(cb)),
    destroy: (err, cb) => {
      sock.destroy();
      cb(err);
    },
  });
  sock.on("data", (c) => {
    if (!d.push(c)) sock.pause();
  });
  sock.on("end", () => d.push(null));
  sock.on("error", (e) => d.destroy(e));
  return d;
}

const PLAIN: TargetTlsOptions = { mode: "disable" };
const login = (u: TestUser, tls: TargetTlsOptions = PLAIN, params: Record<string, string> = {}) => ({
  user: u.user,
  password: u.password,
  database: pgs.database,
  params,
  tls,
});
const verifyFull = (): TargetTlsOptions => ({ mode: "verify-full", caPem: pgs.caPem!, serverName: pgs.serverName! });

/** Runs a simple Query on the returned socket+reader; resolves with every message up to ReadyForQuery. */
function simpleQuery(conn: TargetConnection, sql: string): Promise<BackendMessage[]> {
  return new Promise((resolve, reject) => {
    const out: BackendMessage[] = [];
    const onData = (chunk: Buffer): void => {
      for (const m of conn.reader.push(chunk)) {
        out.push(m);
        if (m.type === "ReadyForQuery") {
          conn.socket.off("data", onData).off("error", reject).pause();
          resolve(out);
          return;
        }
      }
    };
    conn.socket.on("error", reject);
    conn.socket.write(writeFrontend({ type: "Query", query: sql }));
    onData(Buffer.alloc(0));
    conn.socket.on("data", onData).resume();
  });
}

async function firstValue(conn: TargetConnection, sql: string): Promise<string | null> {
  const row = (await simpleQuery(conn, sql)).find((m) => m.type === "DataRow");
  if (row?.type !== "DataRow") throw new Error(`no row for ${sql}`);
  return row.values[0]?.toString("utf8") ?? null;
}

function close(conn: TargetConnection): void {
  conn.socket.end(writeFrontend({ type: "Terminate" }));
}

async function expectFailure(p: Promise<unknown>, code: string, secret?: string): Promise<AirlockError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(AirlockError.is(err), String(err)).toBe(true);
  const e = err as AirlockError;
  expect(e.code).toBe(code);
  if (secret) {
    expect(e.message).not.toContain(secret);
    expect(JSON.stringify(e.details ?? {})).not.toContain(secret);
    expect(String(e.cause ?? "")).not.toContain(secret);
  }
  return e;
}

describe("connectTarget against PostgreSQL", () => {
  const methods = [
    ["scram", "scram-sha-256"],
    ["md5", "md5"],
    ["plain", "password"],
    ["trust", "trust"],
  ] as const;

  for (const [key, method] of methods) {
    it(`logs in with ${method} over a plain socket and runs a query`, async () => {
      const user = pgs.users[key];
      const conn = await connectTarget(await dial(), login(user, PLAIN, { application_name: "airlock-test" }));
      expect(conn.authMethod).toBe(method);
      expect(conn.status).toBe("I");
      expect(conn.backendKey?.secretKey.length).toBe(4);
      const params = Object.fromEntries(conn.parameters.map((p) => [p.name, p.value]));
      expect(params.server_version).toMatch(/^\d+/);
      expect(params.application_name).toBe("airlock-test");
      expect(conn.socket.listenerCount("data")).toBe(0);
      expect(conn.socket.isPaused()).toBe(true);
      expect(await firstValue(conn, "select current_user")).toBe(user.user);
      expect(await firstValue(conn, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()")).toBe("false");
      close(conn);
    });
  }

  it("uses TLS with mode require, and the query runs encrypted", async () => {
    const conn = await connectTarget(await dial(), login(pgs.users.scram, { mode: "require" }));
    expect(conn.socket).toBeInstanceOf(TLSSocket);
    expect(await firstValue(conn, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()")).toBe("true");
    close(conn);
  });

  it("verify-full accepts the right CA and name (DNS and IP)", async () => {
    for (const tls of [verifyFull(), { ...verifyFull(), serverName: "127.0.0.1" }]) {
      const conn = await connectTarget(await dial(), login(pgs.users.md5, tls));
      expect((conn.socket as TLSSocket).authorized).toBe(true);
      expect(await firstValue(conn, "select 40 + 2")).toBe("42");
      close(conn);
    }
  });

  it("verify-full rejects a wrong name, another CA and a missing name", async () => {
    const other = await generateCa();
    const wrongName = await expectFailure(connectTarget(await dial(), login(pgs.users.scram, { ...verifyFull(), serverName: "evil.example" })), "TARGET_TLS_FAILED");
    expect(wrongName.message).toMatch(/evil\.example|altnames/);
    const wrongCa = await expectFailure(connectTarget(await dial(), login(pgs.users.scram, { ...verifyFull(), caPem: other.certPem })), "TARGET_TLS_FAILED");
    expect(wrongCa.message).toMatch(/certificate/);
    await expectFailure(connectTarget(await dial(), login(pgs.users.scram, { mode: "verify-full", caPem: pgs.caPem! })), "TARGET_TLS_FAILED");
  });

  it("works over a non-socket Duplex, TLS included", async () => {
    for (const tls of [PLAIN, verifyFull()]) {
      const conn = await connectTarget(await dialDuplex(), login(pgs.users.scram, tls));
      expect(await firstValue(conn, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()")).toBe(String(tls.mode !== "disable"));
      expect(await firstValue(conn, "select string_agg(g::text, ',') from generate_series(1, 3) g")).toBe("1,2,3");
      close(conn);
    }
  });

  it("fails with TARGET_AUTH_FAILED on a wrong password, never showing it", async () => {
    for (const key of ["scram", "md5", "plain"] as const) {
      const wrong = `wrong-${pgs.users[key].password}`;
      const err = await expectFailure(connectTarget(await dial(), { ...login(pgs.users[key]), password: wrong }), "TARGET_AUTH_FAILED", wrong);
      expect(err.details?.sqlstate).toBe("28P01");
      expect(err.message).toContain("password authentication failed");
    }
  });

  it("fails with TARGET_PROTOCOL_ERROR and the server's SQLSTATE for an unknown database", async () => {
    const err = await expectFailure(connectTarget(await dial(), { ...login(pgs.users.trust), database: "nope" }), "TARGET_PROTOCOL_ERROR");
    expect(err.details).toMatchObject({ sqlstate: "3D000", severity: "FATAL" });
  });

  it("SASLprep matches the server: a non-ASCII password works as stored and in its prepared form", async () => {
    // U+FB01 (fi ligature) → "fi" and U+00AD (soft hyphen) → nothing under SASLprep; both ends prep.
    await pgs.query("CREATE ROLE u_unicode LOGIN PASSWORD 'pässwörd-\uFB01\u00AD!'");
    await pgs.query("CREATE ROLE u_rawprep LOGIN PASSWORD 'raw\uE000pw'"); // private use: not preppable, raw on both ends
    for (const password of ["pässwörd-\uFB01\u00AD!", "pässwörd-fi!"]) {
      const conn = await connectTarget(await dial(), { ...login(pgs.users.scram), user: "u_unicode", password });
      expect(await firstValue(conn, "select current_user")).toBe("u_unicode");
      close(conn);
    }
    const conn = await connectTarget(await dial(), { ...login(pgs.users.scram), user: "u_rawprep", password: "raw\uE000pw" });
    close(conn);
  });

  it("cancelOnTarget stops a running query (plain and TLS)", async () => {
    for (const tls of [PLAIN, { mode: "require" } as TargetTlsOptions]) {
      const conn = await connectTarget(await dial(), login(pgs.users.scram, tls));
      const running = simpleQuery(conn, "select pg_sleep(30)");
      await new Promise((r) => setTimeout(r, 200)); // let the statement start
      const t0 = performance.now();
      await cancelOnTarget(await dial(), conn.backendKey!, tls);
      const t1 = performance.now();
      const messages = await running;
      const error = messages.find((m) => m.type === "ErrorResponse");
      expect(error?.type === "ErrorResponse" && error.fields.C).toBe("57014");
      const ms = (t: number): string => (t - t0).toFixed(1);
      console.log(`cancel (${tls.mode}): cancelOnTarget took ${ms(t1)} ms, query ended ${ms(performance.now())} ms after the cancel started`);
      expect(await firstValue(conn, "select 'still usable'")).toBe("still usable");
      close(conn);
    }
  });

  it("measures login cost per method (figures only)", async () => {
    const n = 20;
    for (const [key, method] of methods) {
      for (const tls of [PLAIN, verifyFull()]) {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) close(await connectTarget(await dial(), login(pgs.users[key], tls)));
        console.log(`connectTarget ${method} tls=${tls.mode}: ${((performance.now() - t0) / n).toFixed(2)} ms per login (n=${n}, incl. TCP connect)`);
      }
    }
    expect(n).toBeGreaterThan(0);
  });
});
