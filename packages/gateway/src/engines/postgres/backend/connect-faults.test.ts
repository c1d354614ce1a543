// connectTarget against scripted fake servers, for what a real PostgreSQL never does: wrong SCRAM
// server signatures, skipped steps, unsupported methods, silence, garbage. The fake speaks the real
// wire format over a real socket (FrontendReader/writeBackend), so only the server's intent is faked.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { AirlockError } from "@airlock/shared/errors";
import { FrontendReader } from "../protocol/reader.js";
import type { AuthResponseKind, BackendMessage, FrontendMessage } from "../protocol/types.js";
import { writeBackend } from "../protocol/writer.js";
import { cancelOnTarget, connectTarget, type TargetLogin } from "./connect.js";

const PASSWORD = "fake-secret-\u00e9";

interface FakeConn {
  next(kind?: AuthResponseKind): Promise<FrontendMessage>;
  send(...messages: BackendMessage[]): void;
  raw(bytes: Buffer): void;
  closed: Promise<void>;
  socket: net.Socket;
}

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Listens on a free port and runs `script` for the first connection; resolves with the port. */
async function fake(script: (c: FakeConn) => Promise<void>): Promise<{ port: number; scriptDone: Promise<unknown> }> {
  let scriptDone!: Promise<unknown>;
  const server = net.createServer((socket) => {
    const reader = new FrontendReader();
    const queue: FrontendMessage[] = [];
    let wake: (() => void) | undefined;
    socket.on("data", (chunk) => {
      queue.push(...reader.push(chunk));
      wake?.();
    });
    socket.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const conn: FakeConn = {
      socket,
      closed,
      async next(kind) {
        reader.setAuthResponseKind(kind);
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        return queue.shift()!;
      },
      send: (...messages) => void socket.write(Buffer.concat(messages.map(writeBackend))),
      raw: (bytes) => void socket.write(bytes),
    };
    scriptDone = script(conn).catch((err: unknown) => err);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, get scriptDone() { return scriptDone; } };
}

function dial(port: number): net.Socket {
  return net.connect(port, "127.0.0.1");
}

const login = (extra: Partial<TargetLogin> = {}): TargetLogin => ({
  user: "alice",
  password: PASSWORD,
  database: "db",
  params: {},
  tls: { mode: "disable" },
  ...extra,
});

const OK_TAIL: BackendMessage[] = [
  { type: "AuthenticationOk" },
  { type: "ParameterStatus", name: "server_version", value: "15.0" },
  { type: "BackendKeyData", processId: 42, secretKey: Buffer.from([1, 2, 3, 4]) },
  { type: "ReadyForQuery", status: "I" },
];

async function failure(p: Promise<unknown>, code: string, pattern: RegExp): Promise<AirlockError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(AirlockError.is(err, code as never), String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
  expect((err as Error).message).not.toContain(PASSWORD);
  expect(JSON.stringify((err as AirlockError).details ?? {})).not.toContain(PASSWORD);
  return err as AirlockError;
}

/** Server side of SCRAM-SHA-256 up to the server-final message; `signature` overrides the real one. */
async function scramServer(c: FakeConn, opts: { signature?: Buffer; skipFinal?: boolean; mechanisms?: string[] }): Promise<void> {
  const startup = await c.next();
  expect(startup.type === "StartupMessage" && startup.params.user).toBe("alice");
  c.send({ type: "AuthenticationSASL", mechanisms: opts.mechanisms ?? ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] });
  const initial = await c.next("sasl-initial");
  if (initial.type !== "SASLInitialResponse") throw new Error(`got ${initial.type}`);
  expect(initial.mechanism).toBe("SCRAM-SHA-256");
  const clientFirst = initial.data!.toString();
  const clientFirstBare = clientFirst.slice(3);
  const nonce = `${/r=([^,]+)/.exec(clientFirst)![1]}${randomBytes(12).toString("base64")}`;
  const salt = randomBytes(16);
  const serverFirst = `r=${nonce},s=${salt.toString("base64")},i=4096`;
  c.send({ type: "AuthenticationSASLContinue", data: Buffer.from(serverFirst) });
  const final = await c.next("sasl");
  if (final.type !== "SASLResponse") throw new Error(`got ${final.type}`);
  const [withoutProof, proofAttr] = final.data.toString().split(",p=") as [string, string];
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  // Check the client's proof the way the server does (RFC 5802 §3): it must know the password.
  const salted = pbkdf2Sync(PASSWORD.normalize("NFKC"), salt, 4096, 32, "sha256");
  const storedKey = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest();
  const signature = createHmac("sha256", storedKey).update(authMessage).digest();
  const clientKey = Buffer.from(Buffer.from(proofAttr, "base64").map((x, i) => x ^ signature[i]!));
  expect(timingSafeEqual(createHash("sha256").update(clientKey).digest(), storedKey)).toBe(true);
  if (!opts.skipFinal) {
    const serverSig = opts.signature ?? createHmac("sha256", createHmac("sha256", salted).update("Server Key").digest()).update(authMessage).digest();
    c.send({ type: "AuthenticationSASLFinal", data: Buffer.from(`v=${serverSig.toString("base64")}`) });
  }
}

describe("connectTarget against misbehaving servers", () => {
  it("completes a correct SCRAM exchange and keeps bytes that arrived after ReadyForQuery", async () => {
    const server = await fake(async (c) => {
      await scramServer(c, {});
      c.send(
        { type: "NoticeResponse", fields: { S: "NOTICE", C: "00000", M: "welcome" } },
        ...OK_TAIL,
        // Same write as ReadyForQuery: these must still be in the returned reader.
        { type: "ParameterStatus", name: "TimeZone", value: "UTC" },
        { type: "NoticeResponse", fields: { S: "NOTICE", C: "00000", M: "after" } },
      );
    });
    const conn = await connectTarget(dial(server.port), login());
    expect(await server.scriptDone).toBeUndefined(); // the fake accepted our proof
    expect(conn.authMethod).toBe("scram-sha-256");
    expect(conn.notices.map((n) => n.fields.M)).toEqual(["welcome"]);
    expect(conn.parameters).toEqual([{ name: "server_version", value: "15.0" }]);
    expect(conn.backendKey).toEqual({ processId: 42, secretKey: Buffer.from([1, 2, 3, 4]) });
    expect(conn.reader.push(Buffer.alloc(0)).map((m) => m.type)).toEqual(["ParameterStatus", "NoticeResponse"]);
    conn.socket.destroy();
  });

  it("rejects a wrong SCRAM server signature and closes the stream", async () => {
    let serverSawClose!: Promise<void>;
    const { port } = await fake(async (c) => {
      serverSawClose = c.closed;
      await scramServer(c, { signature: randomBytes(32) });
      c.send(...OK_TAIL);
    });
    await failure(connectTarget(dial(port), login()), "TARGET_AUTH_FAILED", /server signature is wrong/);
    await serverSawClose;
  });

  it("rejects AuthenticationOk that skips the SCRAM server-final message", async () => {
    const { port } = await fake(async (c) => {
      await scramServer(c, { skipFinal: true });
      c.send(...OK_TAIL);
    });
    await failure(connectTarget(dial(port), login()), "TARGET_AUTH_FAILED", /skipped the SCRAM server signature/);
  });

  it("fails clearly when only SCRAM-SHA-256-PLUS or unknown mechanisms are offered", async () => {
    for (const [mechanisms, pattern] of [
      [["SCRAM-SHA-256-PLUS"], /only offers SCRAM-SHA-256-PLUS/],
      [["OAUTHBEARER"], /no supported SASL mechanism \(OAUTHBEARER\)/],
    ] as const) {
      const { port } = await fake(async (c) => {
        await c.next();
        c.send({ type: "AuthenticationSASL", mechanisms: [...mechanisms] });
      });
      await failure(connectTarget(dial(port), login()), "TARGET_AUTH_FAILED", pattern);
    }
  });

  it("names unsupported authentication methods", async () => {
    for (const [message, name] of [
      [{ type: "AuthenticationGSS" }, "GSSAPI"],
      [{ type: "AuthenticationSSPI" }, "SSPI"],
      [{ type: "AuthenticationKerberosV5" }, "Kerberos V5"],
    ] as const) {
      const { port } = await fake(async (c) => {
        await c.next();
        c.send(message);
      });
      const err = await failure(connectTarget(dial(port), login()), "TARGET_AUTH_FAILED", new RegExp(name));
      expect(err.details).toEqual({ method: name });
    }
  });

  it("accepts NegotiateProtocolVersion and sends the cleartext password it was asked for", async () => {
    let received: FrontendMessage | undefined;
    const { port } = await fake(async (c) => {
      await c.next();
      c.send({ type: "NegotiateProtocolVersion", newestMinorVersion: 0, unrecognizedOptions: ["_pq_.x"] }, { type: "AuthenticationCleartextPassword" });
      received = await c.next("password");
      c.send(...OK_TAIL);
    });
    const conn = await connectTarget(dial(port), login());
    expect(conn.authMethod).toBe("password");
    expect(received).toEqual({ type: "PasswordMessage", password: PASSWORD });
    conn.socket.destroy();
  });

  it("scrubs the password from a server error and maps SQLSTATE class 28 to TARGET_AUTH_FAILED", async () => {
    const { port } = await fake(async (c) => {
      await c.next();
      c.send({ type: "ErrorResponse", fields: { S: "FATAL", V: "FATAL", C: "28000", M: `no entry for ${PASSWORD}`, D: `detail ${PASSWORD}` } });
    });
    const err = await failure(connectTarget(dial(port), login()), "TARGET_AUTH_FAILED", /no entry for \[redacted\]/);
    expect(err.details).toEqual({ sqlstate: "28000", message: "no entry for [redacted]", severity: "FATAL", detail: "detail [redacted]" });
  });

  it("times out a silent server and destroys the stream", async () => {
    const { port } = await fake(async (c) => {
      await c.next(); // and never answer
    });
    const socket = dial(port);
    await failure(connectTarget(socket, login({ timeoutMs: 300 })), "TARGET_PROTOCOL_ERROR", /did not finish startup in 300 ms/);
    expect(socket.destroyed).toBe(true);
  });

  it("reports a server that closes mid-startup, and garbage, as TARGET_PROTOCOL_ERROR", async () => {
    const closes = await fake(async (c) => {
      await c.next();
      c.send({ type: "AuthenticationMD5Password", salt: Buffer.from("salt") });
      await c.next("password");
      c.socket.end();
    });
    await failure(connectTarget(dial(closes.port), login()), "TARGET_PROTOCOL_ERROR", /closed the connection during startup/);
    const garbage = await fake(async (c) => {
      await c.next();
      c.raw(Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n"));
    });
    const err = await failure(connectTarget(dial(garbage.port), login()), "TARGET_PROTOCOL_ERROR", /target protocol error/);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it("rejects an out-of-order message during authentication", async () => {
    const { port } = await fake(async (c) => {
      await c.next();
      c.send({ type: "ReadyForQuery", status: "I" });
    });
    await failure(connectTarget(dial(port), login()), "TARGET_PROTOCOL_ERROR", /sent ReadyForQuery during authentication/);
  });

  it("fails with TARGET_TLS_FAILED when the target answers 'N' to SSLRequest (startup and cancel)", async () => {
    for (const run of [
      (port: number) => connectTarget(dial(port), login({ tls: { mode: "require" } })),
      (port: number) => cancelOnTarget(dial(port), { processId: 1, secretKey: Buffer.alloc(4) }, { mode: "require" }),
    ]) {
      const { port } = await fake(async (c) => {
        expect((await c.next()).type).toBe("SSLRequest");
        c.raw(Buffer.from("N"));
      });
      await failure(run(port), "TARGET_TLS_FAILED", /target does not accept TLS/);
    }
  });

  it("sends a well-formed CancelRequest and resolves once the server hung up", async () => {
    let got: FrontendMessage | undefined;
    const { port } = await fake(async (c) => {
      got = await c.next();
      c.socket.end();
    });
    await cancelOnTarget(dial(port), { processId: 1234, secretKey: Buffer.from([9, 8, 7, 6]) }, { mode: "disable" });
    expect(got).toEqual({ type: "CancelRequest", processId: 1234, secretKey: Buffer.from([9, 8, 7, 6]) });
  });
});
