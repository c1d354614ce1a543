// Auditors' search over HTTP on a real store (PGlite) behind the real auth and
// problem handlers: GET /sessions with filters and cursor pages, GET
// /audit/statements, who sees what (auditors and admins everything, users their
// own whatever they ask for), and `airlock sessions list` / `airlock audit
// search` (the CLI's command code) against them.
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerAuditExport } from "../../../cli/src/commands/audit-export.js";
import { registerUser } from "../../../cli/src/commands/user.js";
import { AuditChains } from "../audit/chains.js";
import { AuditKeys } from "../audit/keys.js";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import { loadOrCreateKeyring } from "../crypto/index.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { StatementLog, type StatementStart } from "../sessions/statements.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { installProblemHandler } from "./problem.js";
import { auditSearchRoutes } from "./routes-audit-search.js";
import { sessionRoutes } from "./routes-sessions.js";

type CommandT = Parameters<typeof registerUser>[0];
const { Command } = createRequire(new URL("../../../cli/package.json", import.meta.url))("commander") as { Command: new (name: string) => CommandT };

const logger = pino({ level: "silent" });
let dir: string;
let store: Store;
let tokens: AccessTokenService;
let chains: AuditChains;
let statements: StatementLog;
let app: FastifyInstance;
let url: string;
const tok: Record<string, string> = {};
const S: Record<string, string> = {};

const get = (path: string, who: string) => app.inject({ method: "GET", url: `/api/v1${path}`, headers: { authorization: `Bearer ${tok[who]}` } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-search-"));
  store = await openStore({ dataDir: dir, logger });
  tokens = new AccessTokenService(store, { defaultTtlSeconds: 3600, maxTtlSeconds: 7200 });
  chains = new AuditChains(store, new AuditKeys(store, await loadOrCreateKeyring({ dataDir: dir }), logger), logger, { checkpointIntervalMs: 0 });
  const sessions = new SessionRecorder(store, logger, chains);
  statements = new StatementLog(store, logger, { chains });
  const people: [string, Role][] = [["admin", "admin"], ["auditor", "auditor"], ["alice", "user"], ["bob", "user"]];
  for (const [who, role] of people) tok[who] = (await tokens.mint({ subject: who, roles: [role] })).token;

  const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, tokens, logger) });
  await a.register(
    async (v1) => {
      await v1.register(sessionRoutes, { sessions, statements, store });
      await v1.register(auditSearchRoutes, { store });
    },
    { prefix: "/api/v1" },
  );
  url = await a.listen({ host: "127.0.0.1", port: 0 });
  app = a as unknown as FastifyInstance;

  const start = (subject: string, connectionName: string, groups: string[]) =>
    sessions.start({ subject, tokenId: null, connectionId: null, agentId: null, connectionName, protocol: "postgres", clientAddr: "127.0.0.1:5000", groups });
  const stmt = (sessionId: string, seq: number, text: string, over: Partial<StatementStart> = {}): StatementStart => ({ sessionId, seq, text, kind: "select", objects: [], decision: "allow", ...over });
  // Sequential starts: each session starts later than the one before.
  S.alice1 = await start("alice", "orders-db", ["dev"]);
  await statements.record([stmt(S.alice1, 1, "SELECT email FROM customers"), stmt(S.alice1, 2, "DROP TABLE payroll_adjustments", { decision: "deny", status: "denied" })]);
  await new Promise((r) => setTimeout(r, 5));
  S.bob1 = await start("bob", "orders-db", ["analytics"]);
  await statements.record([stmt(S.bob1, 1, "SELECT * FROM payroll_adjustments")]);
  await new Promise((r) => setTimeout(r, 5));
  S.alice2 = await start("alice", "billing-db", ["dev", "dba"]);
  const [held] = await statements.record([stmt(S.alice2, 1, "UPDATE invoices SET paid = true", { decision: "review" })]);
  statements.complete(held!, { status: "ok", durationMs: 1, masked: 3 });
  await statements.flush();
});

afterAll(async () => {
  await app?.close();
  await statements?.close();
  await chains?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const ids = (r: { json(): { sessions?: { id: string }[]; statements?: { id: string; sessionId: string }[] } }) => {
  const b = r.json();
  return b.sessions ? b.sessions.map((s) => s.id) : b.statements!.map((s) => s.sessionId);
};

describe("GET /sessions", () => {
  it("filters by user, group, connection, decision and text, newest first, with groups in the view", async () => {
    const all = await get("/sessions", "auditor");
    expect(all.statusCode, all.body).toBe(200);
    expect(ids(all)).toEqual([S.alice2, S.bob1, S.alice1]);
    expect(all.json().sessions[0]).toMatchObject({ subject: "alice", connectionName: "billing-db", groups: ["dev", "dba"], outcome: "active", recordMode: "closed" });
    expect(ids(await get("/sessions?user=alice", "auditor"))).toEqual([S.alice2, S.alice1]);
    expect(ids(await get("/sessions?subject=bob", "auditor"))).toEqual([S.bob1]);
    expect(ids(await get("/sessions?group=dba", "auditor"))).toEqual([S.alice2]);
    expect(ids(await get("/sessions?connection=orders-db", "auditor"))).toEqual([S.bob1, S.alice1]);
    expect(ids(await get("/sessions?decision=denied", "auditor"))).toEqual([S.alice1]);
    expect(ids(await get("/sessions?decision=masked", "admin"))).toEqual([S.alice2]);
    expect(ids(await get("/sessions?decision=reviewed", "admin"))).toEqual([S.alice2]);
    expect(ids(await get(`/sessions?q=${encodeURIComponent("payroll_adjustments")}`, "auditor"))).toEqual([S.bob1, S.alice1]);
    expect(ids(await get("/sessions?outcome=failed", "auditor"))).toEqual([]);
    const mid = (await get("/sessions", "auditor")).json().sessions[1].startedAt as string;
    expect(ids(await get(`/sessions?from=${mid}`, "auditor"))).toEqual([S.alice2, S.bob1]);
    expect(ids(await get(`/sessions?to=${mid}`, "auditor"))).toEqual([S.alice1]);
  });

  it("pages with nextCursor until it is null", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await get(`/sessions?limit=1${cursor ? `&cursor=${cursor}` : ""}`, "auditor");
      expect(r.statusCode, r.body).toBe(200);
      seen.push(...ids(r));
      cursor = r.json().nextCursor;
    } while (cursor);
    expect(seen).toEqual([S.alice2, S.bob1, S.alice1]);
  });

  it("shows users only their own sessions, whatever user they ask for", async () => {
    expect(ids(await get("/sessions", "alice"))).toEqual([S.alice2, S.alice1]);
    expect(ids(await get("/sessions?user=bob", "alice"))).toEqual([S.alice2, S.alice1]);
    expect(ids(await get("/sessions?q=payroll_adjustments", "bob"))).toEqual([S.bob1]);
  });

  it("refuses bad filters and cursors with INVALID_ARGUMENT", async () => {
    for (const q of ["outcome=maybe", "decision=allow", "from=yesterday", "cursor=xyz", "limit=0", "limit=501", "from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z"]) {
      const r = await get(`/sessions?${q}`, "auditor");
      expect(r.statusCode, q).toBe(400);
      expect(r.json().code, q).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("GET /audit/statements", () => {
  it("finds statements by text with their session's subject and connection; users see their own", async () => {
    const r = await get("/audit/statements?q=payroll_adjustments", "auditor");
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.statements.map((s: { sessionId: string }) => s.sessionId)).toEqual([S.bob1, S.alice1]);
    expect(body.statements[1]).toMatchObject({ subject: "alice", connectionName: "orders-db", seq: 2, decision: "deny", status: "denied", text: "DROP TABLE payroll_adjustments", textTruncated: false });
    expect(body.nextCursor).toBeNull();
    expect(ids(await get("/audit/statements?q=payroll_adjustments", "alice"))).toEqual([S.alice1]);
    expect(ids(await get("/audit/statements?q=payroll_adjustments&user=bob", "alice"))).toEqual([S.alice1]);
    expect(ids(await get("/audit/statements?decision=masked", "auditor"))).toEqual([S.alice2]);
    expect(ids(await get("/audit/statements?user=alice&group=dev&connection=orders-db", "auditor"))).toEqual([S.alice1, S.alice1]);
  });

  it("needs a credential", async () => {
    const r = await app.inject({ method: "GET", url: "/api/v1/audit/statements?q=x" });
    expect(r.statusCode).toBe(401);
  });
});

describe("the CLI", () => {
  async function run(who: string, ...args: string[]): Promise<string> {
    const program = new Command("airlock").option("--gateway <url>").option("--token <token>").option("--json").exitOverride();
    registerUser(program);
    registerAuditExport(program.command("audit"));
    let out = "";
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((out += String(chunk)), true));
    try {
      await program.parseAsync(["--gateway", url, "--token", tok[who]!, ...args], { from: "user" });
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  it("`sessions list` filters and prints a --cursor hint that fetches the next page", async () => {
    const first = await run("auditor", "sessions", "list", "--user", "alice", "--limit", "1");
    expect(first).toContain(S.alice2);
    const cursor = /--cursor (\S+)/.exec(first)?.[1];
    expect(cursor).toBeDefined();
    const second = await run("auditor", "sessions", "list", "--user", "alice", "--limit", "1", "--cursor", cursor!);
    expect(second).toContain(S.alice1);
    expect(second).not.toContain("--cursor");
    const found = JSON.parse(await run("auditor", "--json", "sessions", "list", "-q", "invoices", "--group", "dba", "--from", "1d"));
    expect(found.sessions.map((s: { id: string }) => s.id)).toEqual([S.alice2]);
  });

  it("`audit search` prints matching statements with user, connection, decision and session", async () => {
    const out = await run("auditor", "audit", "search", "payroll_adjustments", "--to", new Date(Date.now() + 60_000).toISOString());
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+USER\s+CONNECTION\s+DECISION\s+MASKED\s+SESSION\s+SEQ\s+STATEMENT$/);
    expect(lines[1]).toMatch(new RegExp(`\\sbob\\s+orders-db\\s+allow\\s+-?\\s*${S.bob1}\\s+1\\s+SELECT \\* FROM payroll_adjustments$`));
    expect(lines[2]).toMatch(new RegExp(`\\salice\\s+orders-db\\s+DENY\\s+-?\\s*${S.alice1}\\s+2\\s+DROP TABLE payroll_adjustments$`));
    expect(await run("bob", "audit", "search", "DROP", "TABLE")).toBe("no statements match\n");
  });
});
