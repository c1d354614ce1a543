// Byte recordings of raw TCP sessions through real processes: gateway, agent,
// `airlock connect`, and a TCP target written here that answers differently
// from what it is sent (a banner, every byte inverted, a goodbye), so the two
// directions can be told apart. Proves: what the client sent and received is
// recorded; `airlock sessions replay ID --speed 0` writes exactly the bytes
// the client received (and --direction up exactly what it sent); the
// filesystem backend stores one file per chunk; chunk rows are valid links
// of the session's hash chain and the whole session verifies.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { chunkFields, linkHash, verifySession, type SessionMaterial } from "@airlock/shared/audit/index";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dbUrl, PG_ADMIN_URL, sql } from "./harness/cli-helpers.js";
import { CLI, eventually, killAll, startAgent, startConnect, startGateway, tempDir, type GatewayProc } from "./harness/processes.js";

const BANNER = Buffer.from("220 recording-target ready\r\n");
const BYE = Buffer.from("221 bye\r\n");
const DB = `airlock_e2e_rec_${randomBytes(4).toString("hex")}`;
let target: net.Server;
let targetPort: number;

beforeAll(async () => {
  target = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    s.write(BANNER);
    s.on("data", (c: Buffer) => s.write(Buffer.from(c.map((b) => b ^ 0xff))));
    s.on("end", () => s.end(BYE));
  });
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
  targetPort = (target.address() as net.AddressInfo).port;
  await sql(PG_ADMIN_URL, `CREATE DATABASE ${DB}`);
});

afterAll(async () => {
  await killAll();
  target?.close();
  await sql(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch((e: Error) => console.error(e.message));
});

/** A gateway with one agent and a TCP connection `rec` to the target. */
async function setup(env: Record<string, string> = {}): Promise<GatewayProc> {
  const gw = await startGateway({ env });
  const agent = await startAgent(gw, "rec-site");
  await agent.waitFor(/connected to gateway/);
  const c = await gw.api("POST", "/api/v1/connections", { name: "rec", type: "tcp", host: "127.0.0.1", port: targetPort, agent: "rec-site" });
  expect(c.status).toBe(201);
  return gw;
}

/** One conversation through `airlock connect`: each piece waits for its answer. Returns both directions' bytes. */
async function converse(gw: GatewayProc, pieces: Buffer[]): Promise<{ sent: Buffer; received: Buffer; sessionId: string }> {
  const tunnel = await startConnect(gw, "rec");
  const socket = net.connect(tunnel.port, "127.0.0.1");
  const got: Buffer[] = [];
  let have = 0;
  const waiters: Array<() => void> = [];
  socket.on("data", (c: Buffer) => {
    got.push(c);
    have += c.length;
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<void>((r) => socket.on("close", () => r()));
  const until = async (n: number) => {
    while (have < n) await new Promise<void>((r) => waiters.push(r));
  };
  await until(BANNER.length);
  let expected = BANNER.length;
  for (const p of pieces) {
    socket.write(p);
    expected += p.length;
    await until(expected);
  }
  socket.end();
  await closed;
  await tunnel.kill();
  const received = Buffer.concat(got);
  const sessions = await eventually(async () => {
    const r = await gw.api<{ sessions: Array<{ id: string; endedAt: string | null; bytesUp: number; bytesDown: number }> }>("GET", "/api/v1/sessions?connection=rec");
    return r.body.sessions.every((s) => s.endedAt) && r.body.sessions.length ? r.body.sessions : null;
  }, 15_000, "the session to be recorded as ended");
  const s = sessions[0]!;
  expect([s.bytesUp, s.bytesDown]).toEqual([Buffer.concat(pieces).length, received.length]);
  return { sent: Buffer.concat(pieces), received, sessionId: s.id };
}

/** Runs the CLI to completion and keeps stdout as bytes (replay output is binary). */
function replay(gw: GatewayProc, ...args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "--gateway", gw.apiUrl, "--token", gw.adminToken, "sessions", "replay", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    child.on("exit", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

/** The session's audit material and public keys through the API, checked by the shared verifier. */
async function verify(gw: GatewayProc, id: string) {
  const res = await fetch(`${gw.apiUrl}/api/v1/audit/sessions/${id}/material`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
  expect(res.status).toBe(200);
  let m: SessionMaterial | null = null;
  for (const line of (await res.text()).trim().split("\n")) {
    const l = JSON.parse(line) as { t: string; v: never };
    if (l.t === "session") m = { session: l.v, statements: [], chunks: [], checkpoints: [], tombstones: [] };
    else if (l.t === "chunk") m!.chunks.push(l.v);
    else if (l.t === "checkpoint") m!.checkpoints.push(l.v);
    else if (l.t === "tombstone") m!.tombstones.push(l.v);
  }
  const keys = (await gw.api<{ keys: Array<{ id: string; publicKey: string }> }>("GET", "/api/v1/audit/keys")).body.keys;
  return { material: m!, result: verifySession(m!, new Map(keys.map((k) => [k.id, k.publicKey]))) };
}

const pieces = (n: number, size: number) => Array.from({ length: n }, (_, i) => randomBytes(size + i * 13));
const inverted = (b: Buffer) => Buffer.from(b.map((x) => x ^ 0xff));

describe("recordings in the store (default: db, embedded store)", () => {
  let gw: GatewayProc;
  let conv: { sent: Buffer; received: Buffer; sessionId: string };

  beforeAll(async () => {
    gw = await setup();
    conv = await converse(gw, pieces(25, 3000));
  }, 120_000);

  it("records what was sent and received, in order, with their timing", async () => {
    expect(conv.received.equals(Buffer.concat([BANNER, inverted(conv.sent), BYE]))).toBe(true);
    const res = await fetch(`${gw.apiUrl}/api/v1/sessions/${conv.sessionId}/recording`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
    expect(res.headers.get("content-type")).toMatch(/x-ndjson/);
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { t?: number; dir?: string; data?: string; end?: { gaps: number } });
    const side = (d: string) => Buffer.concat(lines.filter((l) => l.dir === d).map((l) => Buffer.from(l.data!, "base64")));
    expect(side("up").equals(conv.sent)).toBe(true);
    expect(side("down").equals(conv.received)).toBe(true);
    // The banner came first, before anything was sent; times never go backwards.
    expect(lines[0]!.dir).toBe("down");
    const ts = lines.filter((l) => l.t !== undefined).map((l) => l.t!);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(lines.at(-1)).toMatchObject({ end: { gaps: 0 } });
  });

  it("`airlock sessions replay ID --speed 0` writes exactly the target→client bytes; --direction up the client's", async () => {
    const down = await replay(gw, conv.sessionId, "--speed", "0");
    expect(down.stderr).toBe("");
    expect(down.code).toBe(0);
    expect(down.stdout.equals(conv.received)).toBe(true);
    const up = await replay(gw, conv.sessionId, "--speed", "0", "--direction", "up");
    expect(up.code).toBe(0);
    expect(up.stdout.equals(conv.sent)).toBe(true);
    // Paced replay (here 50 times faster than recorded) writes the same bytes.
    const paced = await replay(gw, conv.sessionId, "--speed", "50");
    expect(paced.stdout.equals(conv.received)).toBe(true);
  });

  it("the recording's chunks are links of the session's chain, which verifies with the published keys", async () => {
    const { material, result } = await verify(gw, conv.sessionId);
    expect(material.chunks.length).toBeGreaterThan(1);
    expect(material.session.recordingChunks).toBe(material.chunks.length);
    // Link 1 is the session's start; the chunks follow in order; the end record closes the chain.
    expect(material.chunks.map((c) => [c.idx, c.link])).toEqual(material.chunks.map((_, i) => [i + 1, i + 2]));
    expect(material.session.endLink).toBe(material.chunks.length + 2);
    expect(result).toMatchObject({ ok: true, findings: [], links: material.chunks.length + 2 });
  });
});

describe("recordings on a filesystem directory (PostgreSQL store)", () => {
  let gw: GatewayProc;
  let dir: string;
  let conv: { sent: Buffer; received: Buffer; sessionId: string };

  beforeAll(async () => {
    dir = await tempDir("airlock-recordings-");
    gw = await setup({ AIRLOCK_DATABASE_URL: dbUrl(DB), AIRLOCK_RECORDINGS_STORAGE: "fs", AIRLOCK_RECORDINGS_DIR: dir });
    conv = await converse(gw, pieces(8, 64 * 1024));
  }, 120_000);

  it("stores one file per chunk under DIR/<session>/, with rows that point at them and hold no bytes", async () => {
    const rows = await sql(dbUrl(DB), `select idx, storage, location, data is null from recording_chunks where session_id = '${conv.sessionId}' order by idx`);
    expect(rows.length).toBeGreaterThan(8);
    expect(rows).toEqual(rows.map((_, i) => [String(i + 1), "fs", `${conv.sessionId}/${String(i + 1).padStart(8, "0")}.zz`, "t"]));
    expect((await readdir(join(dir, conv.sessionId))).sort()).toEqual(rows.map((r) => r[2]!.split("/")[1]));
    const [session] = await sql(dbUrl(DB), `select recording_storage, recording_chunks from sessions where id = '${conv.sessionId}'`);
    expect(session).toEqual(["fs", String(rows.length)]);
  });

  it("replays exactly from the files", async () => {
    const r = await replay(gw, conv.sessionId, "--speed", "0");
    expect(r.code).toBe(0);
    expect(r.stdout.equals(conv.received)).toBe(true);
  });

  it("each chunk row's hash covers its fields and follows the previous link; the session verifies", async () => {
    const rows = await sql(
      dbUrl(DB),
      `select c.idx, c.link, encode(c.prev_hash, 'hex'), encode(c.hash, 'hex'), to_char(c.at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), c.frames, c.raw_bytes, encode(c.digest, 'hex'), encode(s.chain_hash, 'hex')
         from recording_chunks c join sessions s on s.id = c.session_id where c.session_id = '${conv.sessionId}' order by c.idx`,
    );
    let prev = rows[0]![8]!; // the session's start record, link 1
    rows.forEach(([idx, link, prevHex, hashHex, at, frames, rawBytes, digest], i) => {
      expect(Number(link)).toBe(i + 2);
      expect(prevHex).toBe(prev);
      const fields = chunkFields({ idx: Number(idx), at: at!, frames: Number(frames), rawBytes: Number(rawBytes), digest: Buffer.from(digest!, "hex") });
      expect(linkHash(Buffer.from(prevHex!, "hex"), "chunk", fields).toString("hex")).toBe(hashHex);
      prev = hashHex!;
    });
    expect((await verify(gw, conv.sessionId)).result).toMatchObject({ ok: true, findings: [] });
  });
});
