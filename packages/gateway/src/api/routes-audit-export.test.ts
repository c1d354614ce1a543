// GET /audit/export on a real store (PGlite): JSON Lines and CSV of sessions
// and statements, RFC 4180 quoting (read back with an independent parser),
// thousands of rows over many pages, who exports what, the page-at-a-time
// reading behind the stream, and `airlock audit export` writing a file.
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerAuditExport } from "../../../cli/src/commands/audit-export.js";
import { AuditChains } from "../audit/chains.js";
import { COLUMNS, csvField, exportLines } from "../audit/export.js";
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
import { auditExportRoutes } from "./routes-audit-export.js";

type CommandT = Parameters<typeof registerAuditExport>[0];
const { Command } = createRequire(new URL("../../../cli/package.json", import.meta.url))("commander") as { Command: new (name: string) => CommandT };

const logger = pino({ level: "silent" });
const BULK = 3000;
/** Every character CSV has to quote, a formula, a newline inside a value, non-ASCII. */
const NASTY = `=HYPERLINK("http://x") , "quoted" ;\r\nnext line → ünïcode`;
let dir: string;
let store: Store;
let tokens: AccessTokenService;
let chains: AuditChains;
let statements: StatementLog;
let app: FastifyInstance;
let url: string;
const tok: Record<string, string> = {};
let aliceSession: string;
let bobSession: string;

const get = (path: string, who: string) => app.inject({ method: "GET", url: `/api/v1${path}`, headers: { authorization: `Bearer ${tok[who]}` } });

/** RFC 4180 reader, independent of the writer: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(field), (field = "");
    else if (c === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), i++;
    else field += c;
  }
  if (field || row.length) throw new Error("the last record has no CRLF");
  return rows;
}

const jsonl = (body: string) => body.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-export-"));
  store = await openStore({ dataDir: dir, logger });
  tokens = new AccessTokenService(store, { defaultTtlSeconds: 3600, maxTtlSeconds: 7200 });
  chains = new AuditChains(store, new AuditKeys(store, await loadOrCreateKeyring({ dataDir: dir }), logger), logger, { checkpointIntervalMs: 0 });
  const sessions = new SessionRecorder(store, logger, chains);
  statements = new StatementLog(store, logger, { chains });
  const people: [string, Role][] = [["auditor", "auditor"], ["alice", "user"], ["bob", "user"]];
  for (const [who, role] of people) tok[who] = (await tokens.mint({ subject: who, roles: [role] })).token;
  const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, tokens, logger) });
  await a.register(async (v1) => v1.register(auditExportRoutes, { store }), { prefix: "/api/v1" });
  url = await a.listen({ host: "127.0.0.1", port: 0 });
  app = a as unknown as FastifyInstance;

  const start = (subject: string, groups: string[]) => sessions.start({ subject, tokenId: null, connectionId: null, agentId: null, connectionName: "orders-db", protocol: "postgres", clientAddr: null, groups });
  const stmt = (sessionId: string, seq: number, text: string, over: Partial<StatementStart> = {}): StatementStart => ({ sessionId, seq, text, kind: "select", objects: [], decision: "allow", ...over });
  aliceSession = await start("alice", ["dev", "a,b"]);
  await statements.record([stmt(aliceSession, 1, NASTY, { objects: ['public."odd,name"'], decision: "deny", status: "denied", reason: "-no" })]);
  bobSession = await start("bob", ["analytics"]);
  for (let i = 0; i < BULK; i += 500) await statements.record(Array.from({ length: 500 }, (_, j) => stmt(bobSession, i + j + 1, `SELECT ${i + j + 1} FROM orders`)));
  await statements.flush();
});

afterAll(async () => {
  await app?.close();
  await statements?.close();
  await chains?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("GET /audit/export", () => {
  it("streams statements as RFC 4180 CSV: header, CRLF, quoting that reads back exactly, no formulas", async () => {
    const r = await get("/audit/export?kind=statements&format=csv", "auditor");
    expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
    expect(r.headers["content-type"]).toBe("text/csv; charset=utf-8; header=present");
    expect(r.headers["content-disposition"]).toMatch(/^attachment; filename="airlock-statements-\d{8}T\d{6}Z\.csv"$/);
    const rows = parseCsv(r.body);
    expect(rows[0]).toEqual([...COLUMNS.statements]);
    expect(rows).toHaveLength(1 + 1 + BULK);
    const rec = Object.fromEntries(rows[0]!.map((c, i) => [c, rows[1]![i]]));
    // Oldest first: alice's statement, then bob's in order.
    expect(rec).toMatchObject({ subject: "alice", seq: "1", decision: "deny", reason: "'-no", objects: '["public.\\"odd,name\\""]', rows: "", durationMs: "" });
    expect(rec.text).toBe(`'${NASTY}`);
    expect(rows.slice(2).map((row) => row[rows[0]!.indexOf("seq")])).toEqual(Array.from({ length: BULK }, (_, i) => String(i + 1)));
  });

  it("streams JSON Lines that keep every value exactly, across many pages", async () => {
    const r = await get("/audit/export?kind=statements&format=jsonl", "auditor");
    expect(r.headers["content-type"]).toBe("application/x-ndjson; charset=utf-8");
    const lines = jsonl(r.body);
    expect(lines).toHaveLength(1 + BULK);
    expect(lines[0]).toMatchObject({ subject: "alice", text: NASTY, objects: ['public."odd,name"'], reason: "-no", rows: null, sessionId: aliceSession });
    expect(Object.keys(lines[0]!)).toEqual([...COLUMNS.statements]);
    expect(new Set(lines.map((l) => l.id)).size).toBe(1 + BULK);
    expect(lines.at(-1)).toMatchObject({ seq: BULK, subject: "bob", connectionName: "orders-db" });
  });

  it("exports sessions with the same filters", async () => {
    const csv = parseCsv((await get("/audit/export?kind=sessions&format=csv&group=a%2Cb", "auditor")).body);
    expect(csv).toHaveLength(2);
    expect(csv[1]![csv[0]!.indexOf("groups")]).toBe('["dev","a,b"]');
    const lines = jsonl((await get("/audit/export?kind=sessions", "auditor")).body);
    expect(lines.map((l) => l.id)).toEqual([aliceSession, bobSession]);
    expect(lines[1]).toMatchObject({ subject: "bob", bytesUp: 0, outcome: "active", endedAt: null });
    const denied = jsonl((await get("/audit/export?kind=statements&decision=denied&q=hyperlink", "auditor")).body);
    expect(denied.map((l) => l.sessionId)).toEqual([aliceSession]);
  });

  it("gives users only their own records, whatever user they ask for", async () => {
    const own = jsonl((await get("/audit/export?kind=statements&user=bob", "alice")).body);
    expect(own.map((l) => l.subject)).toEqual(["alice"]);
    const sessions = jsonl((await get("/audit/export?kind=sessions", "bob")).body);
    expect(sessions.map((l) => l.id)).toEqual([bobSession]);
  });

  it("answers an empty CSV export with the header alone, and refuses bad requests with problem JSON", async () => {
    expect((await get("/audit/export?kind=sessions&format=csv&user=nobody", "auditor")).body).toBe(`${COLUMNS.sessions.join(",")}\r\n`);
    for (const q of ["kind=events", "", "kind=sessions&format=xml", "kind=sessions&outcome=maybe"]) {
      const r = await get(`/audit/export?${q}`, "auditor");
      expect(r.statusCode, q).toBe(400);
      expect(r.json().code).toBe("INVALID_ARGUMENT");
    }
    expect((await app.inject({ method: "GET", url: "/api/v1/audit/export?kind=sessions" })).statusCode).toBe(401);
  });
});

describe("page-at-a-time reading", () => {
  it("reads the next page only when the reader wants more", async () => {
    let queries = 0;
    const counting = { ...store, prisma: { $queryRawUnsafe: (...a: Parameters<Store["prisma"]["$queryRawUnsafe"]>) => (queries++, store.prisma.$queryRawUnsafe(...a)) } } as unknown as Store;
    const lines = await exportLines(counting, { kind: "statements", format: "jsonl", filter: {}, pageRows: 100 });
    expect(queries).toBe(1); // the first page, before any byte is sent
    // As the route sends it: a byte stream nobody reads yet holds one page, it doesn't run ahead.
    const stream = Readable.from(lines, { objectMode: false });
    stream.read(0); // start filling the buffer, as a piped stream does; nobody consumes it
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(stream.readableLength).toBeGreaterThan(0);
    expect(queries).toBeLessThanOrEqual(3);
    let bytes = 0;
    for await (const c of stream) bytes += (c as Buffer).length;
    expect(queries).toBe(Math.ceil((1 + BULK) / 100));
    expect(bytes).toBeGreaterThan(BULK * 100);
  });

  it("quotes only what RFC 4180 needs and neutralises formulas", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("a\nb")).toBe('"a\nb"');
    expect(csvField("=1+1")).toBe("'=1+1");
    expect(csvField("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvField(null)).toBe("");
    expect(csvField(12.5)).toBe("12.5");
    expect(csvField(new Date(0))).toBe("1970-01-01T00:00:00.000Z");
  });
});

describe("airlock audit export", () => {
  async function run(...args: string[]): Promise<{ out: string; err: string }> {
    const program = new Command("airlock").option("--gateway <url>").option("--token <token>").option("--json").exitOverride();
    registerAuditExport(program.command("audit"));
    let out = "";
    let err = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((out += String(chunk)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((err += String(chunk)), true));
    try {
      await program.parseAsync(["--gateway", url, "--token", tok.auditor!, ...args], { from: "user" });
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    return { out, err };
  }

  it("writes the export to a file, whole, with no partial file left", async () => {
    const file = join(dir, "statements.csv");
    const { err } = await run("audit", "export", "--kind", "statements", "--format", "csv", "--user", "bob", "--from", "1h", "-o", file);
    const rows = parseCsv(await readFile(file, "utf8"));
    expect(rows).toHaveLength(1 + BULK);
    expect(err).toMatch(/^wrote \d+ bytes to .*statements\.csv\n$/);
    expect((await readdir(dir)).filter((f) => f.endsWith(".partial"))).toEqual([]);
  });

  it("streams to stdout, and fails with the gateway's error", async () => {
    const { out } = await run("audit", "export", "--kind", "sessions", "--search", "hyperlink");
    expect(jsonl(out).map((l) => l.id)).toEqual([aliceSession]);
    await expect(run("audit", "export", "--kind", "nope")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});
