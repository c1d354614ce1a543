// GET /sessions/:id/recording on a real store (PGlite) behind the real auth
// and problem handlers: NDJSON frames, direction filter, who may read what,
// clear 404s; and `airlock sessions replay` (the CLI's command code) over
// HTTP: exact bytes at --speed 0 per direction, the statement timeline.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerUser } from "../../../cli/src/commands/user.js";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { Recordings } from "../recordings/service.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { StatementLog } from "../sessions/statements.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { installProblemHandler } from "./problem.js";
import { recordingRoutes } from "./routes-recordings.js";
import { sessionRoutes } from "./routes-sessions.js";

type CommandT = Parameters<typeof registerUser>[0];
const { Command } = createRequire(new URL("../../../cli/package.json", import.meta.url))("commander") as { Command: new (name: string) => CommandT };

const logger = pino({ level: "silent" });
let dir: string;
let store: Store;
let sessions: SessionRecorder;
let statements: StatementLog;
let recordings: Recordings;
let app: FastifyInstance;
let url: string;
const tok: Record<string, string> = {};
/** alice's TCP session: what each side sent, in order. */
const sent: Array<{ dir: 0 | 1; data: Buffer }> = [];
let aliceTcp: string;
let alicePg: string;

async function tcpSession(subject: string, pieces: Array<{ dir: 0 | 1; data: Buffer }>): Promise<string> {
  const id = await sessions.start({ subject, tokenId: null, connectionId: null, agentId: null, connectionName: "echo", protocol: "tcp", clientAddr: null });
  const rec = recordings.begin({ sessionId: id, connection: { recordMode: "closed" } as never, log: logger })!;
  for (const p of pieces) rec.record(p.dir, p.data);
  const s = await rec.finish();
  await sessions.finish(id, { bytesUp: 0, bytesDown: 0, outcome: "ok", recording: { chunks: s.chunks, bytes: s.bytes, storage: s.storage } });
  return id;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-routes-recordings-"));
  store = await openStore({ dataDir: dir, logger });
  const tokens = new AccessTokenService(store, { defaultTtlSeconds: 3600, maxTtlSeconds: 7200 });
  sessions = new SessionRecorder(store, logger);
  statements = new StatementLog(store, logger);
  recordings = new Recordings({ store, chains: null, config: { storage: "db", chunkBytes: 1024, flushMs: 60_000 }, dataDir: dir, log: logger });
  const people: [string, Role][] = [["auditor", "auditor"], ["alice", "user"], ["bob", "user"]];
  for (const [who, role] of people) tok[who] = (await tokens.mint({ subject: who, roles: [role] })).token;
  for (let i = 0; i < 30; i++) sent.push({ dir: i % 3 === 0 ? 0 : 1, data: randomBytes(50 + i * 40) });
  aliceTcp = await tcpSession("alice", sent);
  alicePg = await sessions.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName: "orders-db", protocol: "postgres", clientAddr: null });
  const ids = await statements.record([
    { sessionId: alicePg, seq: 1, text: "SELECT email\n  FROM customers", kind: "select", command: "SELECT", objects: ["public.customers"], decision: "allow" },
    { sessionId: alicePg, seq: 2, text: "DROP TABLE orders", kind: "ddl", command: "DROP", objects: [], decision: "deny", rule: "no-ddl", reason: "no DDL", status: "denied", errorCode: "STATEMENT_DENIED" },
  ]);
  statements.complete(ids[0]!, { status: "ok", durationMs: 2.5, rows: 3, commandTag: "SELECT 3", masked: 3 });
  await statements.flush();

  const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, tokens, logger) });
  await a.register(
    async (v1) => {
      await v1.register(sessionRoutes, { sessions, statements, store });
      await v1.register(recordingRoutes, { store, sessions, recordings });
    },
    { prefix: "/api/v1" },
  );
  app = a as unknown as FastifyInstance;
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await app?.close();
  await statements?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (path: string, who: string) => app.inject({ method: "GET", url: `/api/v1${path}`, headers: { authorization: `Bearer ${tok[who]}` } });
const ndjson = (body: string) => body.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
const bytes = (dir: 0 | 1 | "both") => Buffer.concat(sent.filter((p) => dir === "both" || p.dir === dir).map((p) => p.data));

describe("GET /sessions/:id/recording", () => {
  it("streams the frames as NDJSON in recorded order, then an end line", async () => {
    const r = await get(`/sessions/${aliceTcp}/recording`, "alice");
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    const lines = ndjson(r.body);
    const frames = lines.filter((l) => "t" in l) as Array<{ t: number; dir: string; data: string }>;
    // Pieces may be split across chunks: compare runs of one direction, which must come back in order.
    const runs = (xs: Array<{ dir: string; data: Buffer }>) =>
      xs.reduce<Array<{ dir: string; hex: string }>>((acc, x) => {
        const last = acc.at(-1);
        if (last?.dir === x.dir) last.hex += x.data.toString("hex");
        else acc.push({ dir: x.dir, hex: x.data.toString("hex") });
        return acc;
      }, []);
    expect(runs(frames.map((f) => ({ dir: f.dir, data: Buffer.from(f.data, "base64") })))).toEqual(runs(sent.map((p) => ({ dir: p.dir === 0 ? "up" : "down", data: p.data }))));
    expect(Buffer.concat(frames.map((f) => Buffer.from(f.data, "base64"))).equals(bytes("both"))).toBe(true);
    expect(frames.every((f) => Number.isInteger(f.t) && f.t >= 0)).toBe(true);
    expect(lines.at(-1)).toMatchObject({ end: { frames: frames.length, bytes: bytes("both").length, gaps: 0 } });
  });

  it("?direction=up and =down return one side only", async () => {
    for (const [q, d] of [["up", 0], ["down", 1]] as const) {
      const frames = ndjson((await get(`/sessions/${aliceTcp}/recording?direction=${q}`, "alice")).body).filter((l) => "t" in l) as Array<{ dir: string; data: string }>;
      expect(new Set(frames.map((f) => f.dir))).toEqual(new Set([q]));
      expect(Buffer.concat(frames.map((f) => Buffer.from(f.data, "base64"))).equals(bytes(d))).toBe(true);
    }
  });

  it("auditors read anyone's recording; other users get the same 404 as for a missing session", async () => {
    expect((await get(`/sessions/${aliceTcp}/recording`, "auditor")).statusCode).toBe(200);
    const r = await get(`/sessions/${aliceTcp}/recording`, "bob");
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: "NOT_FOUND", detail: `no session ${aliceTcp}` });
  });

  it("says why there is nothing: no byte recording, or deleted by retention", async () => {
    expect((await get(`/sessions/${alicePg}/recording`, "alice")).json()).toMatchObject({ code: "NOT_FOUND", detail: expect.stringContaining("has no byte recording (postgres session") });
    const gone = await tcpSession("alice", []);
    await store.prisma.session.update({ where: { id: gone }, data: { recordingStorage: "deleted" } });
    expect((await get(`/sessions/${gone}/recording`, "alice")).json()).toMatchObject({ code: "NOT_FOUND", detail: expect.stringContaining("deleted by retention") });
  });
});

describe("airlock sessions replay", () => {
  /** Runs the real command over HTTP, capturing stdout as bytes. */
  async function replay(who: string, ...args: string[]): Promise<Buffer> {
    const program = new Command("airlock").option("--gateway <url>").option("--token <token>").option("--json").exitOverride();
    registerUser(program);
    const out: Buffer[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => (out.push(Buffer.from(chunk as Uint8Array)), true));
    try {
      await program.parseAsync(["--gateway", url, "--token", tok[who]!, "sessions", "replay", ...args], { from: "user" });
    } finally {
      spy.mockRestore();
    }
    return Buffer.concat(out);
  }

  it("--speed 0 writes exactly the target→client bytes by default; up and both on request", async () => {
    expect((await replay("alice", aliceTcp, "--speed", "0")).equals(bytes(1))).toBe(true);
    expect((await replay("alice", aliceTcp, "--speed", "0", "--direction", "up")).equals(bytes(0))).toBe(true);
    expect((await replay("auditor", aliceTcp, "--speed", "0", "--direction", "both")).equals(bytes("both"))).toBe(true);
  });

  it("prints a statement session's timeline: offset, seq, decision, status, duration, rows, masked, one-line text", async () => {
    const out = (await replay("alice", alicePg)).toString();
    expect(out).toMatch(new RegExp(`^session ${alicePg}: alice on orders-db \\(postgres\\)`, "m"));
    expect(out).toMatch(/^statements: 2 \(1 denied\)$/m);
    expect(out).toMatch(/^OFFSET\s+SEQ\s+DECISION\s+STATUS\s+MS\s+ROWS\s+MASKED\s+STATEMENT$/m);
    expect(out).toMatch(/^\+\d+\.\d{3}s\s+1\s+allow\s+ok\s+2\.50\s+3\s+3\s+SELECT email FROM customers$/m);
    expect(out).toMatch(/^\+\d+\.\d{3}s\s+2\s+DENY\s+denied\s+-\s+-\s+-\s+DROP TABLE orders \[denied by no-ddl\]$/m);
  });

  it("fails NOT_FOUND for someone else's session and refuses a bad --speed", async () => {
    await expect(replay("bob", aliceTcp, "--speed", "0")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(replay("alice", aliceTcp, "--speed", "-1")).rejects.toThrow(/--speed must be a number/);
  });
});
