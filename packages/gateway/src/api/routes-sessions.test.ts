// The session routes on a real store (PGlite) behind the real auth and problem
// handlers: statements embedded in GET /sessions/:id, cursor paging, who may
// see what, and `airlock sessions show` (the CLI's command code) over HTTP.
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
// The command under test lives in the CLI package (which depends on this one, not the reverse).
import { registerUser } from "../../../cli/src/commands/user.js";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { StatementLog, type StatementStart } from "../sessions/statements.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { installProblemHandler } from "./problem.js";
import { sessionRoutes, type SessionRoutesOptions } from "./routes-sessions.js";

// commander is the CLI's dependency, not the gateway's: load it from there.
type CommandT = Parameters<typeof registerUser>[0];
const { Command } = createRequire(new URL("../../../cli/package.json", import.meta.url))("commander") as { Command: new (name: string) => CommandT };

const logger = pino({ level: "silent" });
let dir: string;
let store: Store;
let tokens: AccessTokenService;
let sessions: SessionRecorder;
let statements: StatementLog;
let app: FastifyInstance;
const tok: Record<string, string> = {};
let aliceSession: string;
let bigSession: string;

/** The gateway's API stack (as server.ts composes it) with only the session routes. */
async function makeApp(opts: SessionRoutesOptions): Promise<FastifyInstance> {
  const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, tokens, logger) });
  await a.register(async (v1) => v1.register(sessionRoutes, opts), { prefix: "/api/v1" });
  await a.ready();
  return a as unknown as FastifyInstance;
}

const get = (path: string, who: string, on = app) => on.inject({ method: "GET", url: `/api/v1${path}`, headers: { authorization: `Bearer ${tok[who]}` } });

const start = (subject: string) =>
  sessions.start({ subject, tokenId: null, connectionId: null, agentId: null, connectionName: "orders-db", protocol: "postgres", clientAddr: "127.0.0.1:5000" });

const stmt = (sessionId: string, seq: number, over: Partial<StatementStart> = {}): StatementStart => ({ sessionId, seq, text: `SELECT ${seq}`, kind: "select", command: "SELECT", objects: ["public.orders"], decision: "allow", ...over });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-routes-sessions-"));
  store = await openStore({ dataDir: dir, logger });
  tokens = new AccessTokenService(store, { defaultTtlSeconds: 3600, maxTtlSeconds: 7200 });
  sessions = new SessionRecorder(store, logger);
  statements = new StatementLog(store, logger);
  const people: [string, Role][] = [["admin", "admin"], ["auditor", "auditor"], ["alice", "user"], ["bob", "user"]];
  for (const [who, role] of people) tok[who] = (await tokens.mint({ subject: who, roles: [role] })).token;
  app = await makeApp({ sessions, statements, store });

  aliceSession = await start("alice");
  const ids = await statements.record([
    stmt(aliceSession, 1, { text: "SELECT email\nFROM customers" }),
    stmt(aliceSession, 2, { text: "DROP TABLE orders", kind: "ddl", command: "DROP", decision: "deny", rule: "no-ddl", reason: "DDL is not allowed here", status: "denied", errorCode: "STATEMENT_DENIED" }),
  ]);
  statements.complete(ids[0]!, { status: "ok", durationMs: 1.5, rows: 2n ** 60n, commandTag: "SELECT 1152921504606846976", masked: 4 });
  bigSession = await start("admin");
  await statements.record(Array.from({ length: 1001 }, (_, i) => stmt(bigSession, i + 1)));
  await statements.flush();
});

afterAll(async () => {
  await app?.close();
  await statements?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("GET /sessions/:id", () => {
  it("embeds the statements in seq order with their decisions and outcomes", async () => {
    const r = await get(`/sessions/${aliceSession}`, "alice");
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ id: aliceSession, subject: "alice", protocol: "postgres", outcome: "active", statementsTruncated: false, statementCounts: { total: 2, denied: 1 } });
    expect(body.statements).toHaveLength(2);
    expect(body.statements[0]).toMatchObject({ seq: 1, text: "SELECT email\nFROM customers", decision: "allow", status: "ok", durationMs: 1.5, rows: "1152921504606846976", masked: 4, objects: ["public.orders"] });
    expect(body.statements[0].startedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(body.statements[1]).toMatchObject({ seq: 2, decision: "deny", rule: "no-ddl", reason: "DDL is not allowed here", status: "denied", errorCode: "STATEMENT_DENIED", rows: null, durationMs: null });
  });

  it("embeds the first 1000 and says there are more", async () => {
    const body = (await get(`/sessions/${bigSession}`, "admin")).json();
    expect(body.statements).toHaveLength(1000);
    expect(body.statements.at(-1).seq).toBe(1000);
    expect(body).toMatchObject({ statementsTruncated: true, statementCounts: { total: 1001, denied: 0 } });
  });

  it("shows auditors every session and users only their own; others get 404 like a missing one", async () => {
    expect((await get(`/sessions/${aliceSession}`, "auditor")).statusCode).toBe(200);
    for (const path of [`/sessions/${aliceSession}`, `/sessions/${aliceSession}/statements`]) {
      const r = await get(path, "bob");
      expect(r.statusCode, path).toBe(404);
      expect(r.json()).toMatchObject({ code: "NOT_FOUND", detail: `no session ${aliceSession}` });
      expect(r.body).not.toContain("DROP TABLE");
    }
    expect((await get("/sessions/00000000-0000-4000-8000-000000000000", "admin")).statusCode).toBe(404);
  });

  it("without a statement log, answers the plain session view as before", async () => {
    const plain = await makeApp({ sessions, store });
    try {
      const body = (await get(`/sessions/${aliceSession}`, "alice", plain)).json();
      expect(body.id).toBe(aliceSession);
      expect(body).not.toHaveProperty("statements");
      expect((await get(`/sessions/${aliceSession}/statements`, "alice", plain)).statusCode).toBe(404);
    } finally {
      await plain.close();
    }
  });
});

describe("GET /sessions/:id/statements", () => {
  it("pages by seq with afterSeq and limit until nextAfterSeq is null", async () => {
    const seen: number[] = [];
    let after: number | null = 0;
    let pages = 0;
    while (after !== null) {
      const r = await get(`/sessions/${bigSession}/statements?limit=400&afterSeq=${after}`, "auditor");
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json() as { statements: { seq: number }[]; nextAfterSeq: number | null };
      seen.push(...body.statements.map((s) => s.seq));
      after = body.nextAfterSeq;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    // Default page size and no cursor: the first 100.
    const first = (await get(`/sessions/${bigSession}/statements`, "admin")).json();
    expect(first.statements).toHaveLength(100);
    expect(first.nextAfterSeq).toBe(100);
  });

  it("has no next page when the last page is exactly full", async () => {
    const body = (await get(`/sessions/${aliceSession}/statements?limit=2`, "alice")).json();
    expect(body.statements.map((s: { seq: number }) => s.seq)).toEqual([1, 2]);
    expect(body.nextAfterSeq).toBeNull();
  });

  it("rejects a bad limit or cursor with INVALID_ARGUMENT", async () => {
    for (const q of ["limit=0", "limit=1001", "afterSeq=-1", "afterSeq=x"]) {
      const r = await get(`/sessions/${aliceSession}/statements?${q}`, "alice");
      expect(r.statusCode, q).toBe(400);
      expect(r.json().code).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("airlock sessions show", () => {
  let url: string;
  let listening: FastifyInstance;

  beforeAll(async () => {
    listening = await makeApp({ sessions, statements, store });
    url = await listening.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => listening?.close());

  /** Runs the real command over HTTP, capturing what it prints. */
  async function show(who: string, ...args: string[]): Promise<string> {
    const program = new Command("airlock").option("--gateway <url>").option("--token <token>").option("--json").exitOverride();
    registerUser(program);
    let out = "";
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((out += String(chunk)), true));
    try {
      await program.parseAsync(["--gateway", url, "--token", tok[who]!, ...args], { from: "user" });
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  it("prints the session, its statement counts and the statements table", async () => {
    const out = await show("alice", "sessions", "show", aliceSession);
    expect(out).toMatch(new RegExp(`^id:\\s+${aliceSession}$`, "m"));
    expect(out).toMatch(/^connection:\s+orders-db \(postgres\)$/m);
    expect(out).toMatch(/^statements:\s+2 \(1 denied\)$/m);
    expect(out).toMatch(/^SEQ\s+TIME\s+DECISION\s+STATUS\s+KIND\s+ROWS\s+MS\s+RULE\s+STATEMENT$/m);
    expect(out).toMatch(/^1\s+\d\d:\d\d:\d\d\.\d{3}\s+allow\s+ok\s+select\s+1152921504606846976\s+1\.50\s+SELECT email FROM customers$/m);
    expect(out).toMatch(/^2\s+\S+\s+DENY\s+denied\s+ddl\s+-\s+-\s+no-ddl\s+DROP TABLE orders$/m);
  });

  it("says when only the first 1000 are shown; --json pages through all of them", async () => {
    const out = await show("admin", "sessions", "show", bigSession);
    expect(out).toMatch(/^statements:\s+1001 \(0 denied\)$/m);
    expect(out).toMatch(/^\(the first 1000; --json prints all\)$/m);
    expect(out).toMatch(/^1000\s/m);
    expect(out).not.toMatch(/^1001\s/m);

    const json = JSON.parse(await show("admin", "--json", "sessions", "show", bigSession)) as { statements: { seq: number }[]; statementsTruncated: boolean };
    expect(json.statements.map((s) => s.seq)).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    expect(json.statementsTruncated).toBe(false);
  });

  it("fails NOT_FOUND for someone else's session", async () => {
    await expect(show("bob", "sessions", "show", aliceSession)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
