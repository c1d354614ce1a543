// The auditors' search (audit/search.ts) on both real stores, PGlite and a
// throwaway PostgreSQL database: every filter, how they combine, keyset pages
// (ties on started_at included, both orders), the cursor's validation, the
// visibility rule, and on PostgreSQL that the queries can use the indexes
// made for them (the text condition must match the GIN index's expression).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Principal } from "../auth/principal.js";
import { loadOrCreateKeyring } from "../crypto/index.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { StatementLog } from "../sessions/statements.js";
import { openStore, type Store } from "../store/index.js";
import { createTempDatabase, withClient } from "../store/testing.js";
import { AuditChains } from "./chains.js";
import { AuditKeys } from "./keys.js";
import { decodeCursor, encodeCursor, parseFilter, searchSessions, searchStatements, statementsSql, visibleFilter, type AuditFilter, type PageRequest } from "./search.js";

const logger = pino({ level: "silent" });
const T0 = Date.parse("2024-05-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const H = 3600_000;
const D = 24 * H;

/** Inserts a session row as the recorder would leave it, at a chosen time. */
async function session(store: Store, s: { subject: string; groups: string[]; connection: string; agentId?: string | null; startedAt: Date; outcome: string }): Promise<string> {
  const id = randomUUID();
  await store.prisma.$executeRawUnsafe(
    `INSERT INTO sessions (id, subject, connection_name, protocol, agent_id, started_at, outcome, groups) VALUES ($1::uuid, $2, $3, 'postgres', $4::uuid, $5::timestamp, $6, $7::text[])`,
    id, s.subject, s.connection, s.agentId ?? null, s.startedAt.toISOString().slice(0, 23), s.outcome, s.groups,
  );
  return id;
}

/** Inserts a statement row with the session's subject copied, as StatementLog does. */
async function statement(store: Store, sessionId: string, seq: number, text: string, startedAt: Date, o: { decision?: string; masked?: number } = {}): Promise<string> {
  const id = randomUUID();
  await store.prisma.$executeRawUnsafe(
    `INSERT INTO statements (id, session_id, seq, text, kind, objects, decision, status, started_at, masked, subject)
     SELECT $1::uuid, $2::uuid, $3, $4, 'select', '{}', $5, 'ok', $6::timestamp, $7, subject FROM sessions WHERE id = $2::uuid`,
    id, sessionId, seq, text, o.decision ?? "allow", startedAt.toISOString().slice(0, 23), o.masked ?? 0,
  );
  return id;
}

/** Every page, following nextCursor. */
async function all<T>(fn: (page: PageRequest) => Promise<{ items: T[]; nextCursor: string | null }>, limit: number, order?: "asc" | "desc"): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const p = await fn({ limit, cursor, ...(order ? { order } : {}) });
    items.push(...p.items);
    cursor = p.nextCursor ?? undefined;
    pages++;
  } while (cursor);
  return { items, pages };
}

const backends = [
  { name: "PGlite", postgres: false },
  { name: "PostgreSQL", postgres: true },
];

describe.each(backends)("audit search on $name", ({ postgres }) => {
  let dir: string;
  let store: Store;
  let dbUrl = "";
  let dropDb: (() => Promise<void>) | undefined;
  const S: Record<string, string> = {};
  const St: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-search-"));
    if (postgres) {
      const db = await createTempDatabase();
      dbUrl = db.url;
      dropDb = db.drop;
    }
    store = await openStore({ dataDir: dir, logger, ...(postgres ? { databaseUrl: dbUrl } : {}) });
    const agentId = randomUUID();
    await store.prisma.$executeRawUnsafe(`INSERT INTO agents (id, name) VALUES ($1::uuid, 'agent-a')`, agentId);

    S.s1 = await session(store, { subject: "alice", groups: ["dev"], connection: "orders-db", agentId, startedAt: at(H), outcome: "ok" });
    St.s1a = await statement(store, S.s1, 1, "SELECT email FROM customers WHERE id = 1", at(H + 1000), { masked: 2 });
    St.s1b = await statement(store, S.s1, 2, "DELETE FROM payroll_adjustments", at(H + 2000), { decision: "deny" });
    S.s2 = await session(store, { subject: "alice", groups: ["dev", "dba"], connection: "billing-db", startedAt: at(D), outcome: "failed" });
    St.s2a = await statement(store, S.s2, 1, "UPDATE invoices SET paid = true WHERE id = 7", at(D + 1000), { decision: "review" });
    St.s2b = await statement(store, S.s2, 2, "SELECT * FROM customers", at(D + 2000));
    S.s3 = await session(store, { subject: "bob", groups: ["analytics"], connection: "orders-db", agentId, startedAt: at(2 * D), outcome: "denied" });
    S.s4 = await session(store, { subject: "bob", groups: ["analytics"], connection: "orders-db", startedAt: at(3 * D), outcome: "ok" });
    St.s4a = await statement(store, S.s4, 1, "SELECT * FROM payroll_adjustments WHERE amount > 100", at(3 * D + 1000));
    St.s4b = await statement(store, S.s4, 2, `SELECT 'drop table' AS "a,b"`, at(3 * D + 2000));
    // 25 statements in the same millisecond: pages must split ties by id without losing or repeating any.
    S.s5 = await session(store, { subject: "carol", groups: [], connection: "crm-db", startedAt: at(4 * D), outcome: "ok" });
    for (let i = 1; i <= 25; i++) await statement(store, S.s5, i, `SELECT ${i} FROM tickets`, at(4 * D + 5000));
  });

  afterAll(async () => {
    await store?.close();
    await dropDb?.();
    await rm(dir, { recursive: true, force: true });
  });

  const sessions = async (f: AuditFilter) => (await searchSessions(store, f, { limit: 100 })).items.map((s) => s.id);
  const statements = async (f: AuditFilter) => (await searchStatements(store, f, { limit: 100 })).items.map((s) => s.id);

  it("filters sessions by user, group, connection, agent, time range and outcome, newest first", async () => {
    expect(await sessions({ user: "alice" })).toEqual([S.s2, S.s1]);
    expect(await sessions({ group: "dba" })).toEqual([S.s2]);
    expect(await sessions({ group: "dev" })).toEqual([S.s2, S.s1]);
    expect(await sessions({ connection: "orders-db" })).toEqual([S.s4, S.s3, S.s1]);
    expect(await sessions({ agent: "agent-a" })).toEqual([S.s3, S.s1]);
    // from inclusive, to exclusive
    expect(await sessions({ from: at(D), to: at(3 * D) })).toEqual([S.s3, S.s2]);
    expect(await sessions({ outcome: "failed" })).toEqual([S.s2]);
    expect(await sessions({ user: "bob", connection: "orders-db", outcome: "ok" })).toEqual([S.s4]);
    expect(await sessions({ user: "nobody" })).toEqual([]);
  });

  it("selects sessions by their statements' decisions and text, one statement meeting both", async () => {
    expect(await sessions({ decision: "denied" })).toEqual([S.s1]);
    expect(await sessions({ decision: "masked" })).toEqual([S.s1]);
    expect(await sessions({ decision: "reviewed" })).toEqual([S.s2]);
    expect(await sessions({ q: "customers" })).toEqual([S.s2, S.s1]);
    expect(await sessions({ q: "payroll_adjustments", decision: "denied" })).toEqual([S.s1]);
    // S1 has a denied statement and one about customers, but not one that is both.
    expect(await sessions({ q: "customers", decision: "denied" })).toEqual([]);
  });

  it("finds statements by user + time range + text, with their session's subject and connection", async () => {
    const page = await searchStatements(store, { user: "alice", from: at(0), to: at(2 * D), q: "customers" }, { limit: 10 });
    expect(page.items.map((s) => s.id)).toEqual([St.s2b, St.s1a]);
    expect(page.nextCursor).toBeNull();
    expect(page.items[1]).toMatchObject({ sessionId: S.s1, seq: 1, subject: "alice", connectionName: "orders-db", agent: "agent-a", masked: 2, decision: "allow", textTruncated: false });
    expect(page.items[1]!.startedAt.toISOString()).toBe(at(H + 1000).toISOString());
    expect(await statements({ user: "alice", from: at(D) })).toEqual([St.s2b, St.s2a]);
  });

  it("takes web search syntax: phrases, OR, exclusion; no stemming", async () => {
    expect(await statements({ q: "payroll_adjustments" })).toEqual([St.s4a, St.s1b]);
    expect(await statements({ q: "payroll -amount" })).toEqual([St.s1b]);
    expect(await statements({ q: '"drop table"' })).toEqual([St.s4b]);
    expect(await statements({ q: "invoices OR email" })).toEqual([St.s2a, St.s1a]);
    expect(await statements({ q: "customer" })).toEqual([]);
  });

  it("filters statements by decision and by their session's group, connection, agent and outcome", async () => {
    expect(await statements({ decision: "denied" })).toEqual([St.s1b]);
    expect(await statements({ decision: "masked" })).toEqual([St.s1a]);
    expect(await statements({ decision: "reviewed" })).toEqual([St.s2a]);
    expect(await statements({ group: "dba" })).toEqual([St.s2b, St.s2a]);
    expect(await statements({ connection: "orders-db", user: "bob" })).toEqual([St.s4b, St.s4a]);
    expect(await statements({ agent: "agent-a" })).toEqual([St.s1b, St.s1a]);
    expect(await statements({ outcome: "failed" })).toEqual([St.s2b, St.s2a]);
  });

  it("cuts long texts only when asked to", async () => {
    const cut = await searchStatements(store, { user: "bob", q: "payroll_adjustments" }, { limit: 1 }, { textLimit: 10 });
    expect(cut.items[0]).toMatchObject({ text: "SELECT * F", textTruncated: true });
    const whole = await searchStatements(store, { user: "bob", q: "payroll_adjustments" }, { limit: 1 });
    expect(whole.items[0]).toMatchObject({ text: "SELECT * FROM payroll_adjustments WHERE amount > 100", textTruncated: false });
  });

  it("pages with a cursor through ties on started_at, newest or oldest first, none lost or repeated", async () => {
    const desc = await all((p) => searchStatements(store, { user: "carol" }, p), 4);
    expect(desc.pages).toBe(7);
    // Statements of one instant read in session order.
    expect(desc.items.map((s) => s.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
    const asc = await all((p) => searchStatements(store, { user: "carol" }, p), 4, "asc");
    expect(asc.items.map((s) => s.id)).toEqual(desc.items.map((s) => s.id).reverse());
    const everything = await all((p) => searchStatements(store, {}, p), 3);
    expect(everything.items).toHaveLength(31);
    const bySession = await all((p) => searchSessions(store, {}, p), 2);
    expect(bySession.items.map((s) => s.id)).toEqual([S.s5, S.s4, S.s3, S.s2, S.s1]);
    // An exactly full last page has no next cursor.
    expect((await searchSessions(store, {}, { limit: 5 })).nextCursor).toBeNull();
  });

  it("rejects a cursor it did not hand out", async () => {
    const sessionCursor = encodeCursor(at(0), randomUUID());
    for (const bad of ["nope", sessionCursor, Buffer.from("[1,2]").toString("base64url"), Buffer.from(`[1.5,"${randomUUID()}",1]`).toString("base64url")]) {
      await expect(searchStatements(store, {}, { limit: 1, cursor: bad })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
  });

  it("statements recorded by the StatementLog carry the session's subject and are found by user", async () => {
    const keys = new AuditKeys(store, await loadOrCreateKeyring({ dataDir: dir }), logger);
    const chains = new AuditChains(store, keys, logger, { checkpointIntervalMs: 0 });
    const recorder = new SessionRecorder(store, logger, chains);
    const log = new StatementLog(store, logger, { chains });
    try {
      const sid = await recorder.start({ subject: "dave", tokenId: null, connectionId: null, agentId: null, connectionName: "orders-db", protocol: "postgres", clientAddr: null, groups: ["ops"] });
      const [id] = await log.record([{ sessionId: sid, seq: 1, text: "TRUNCATE audit_trail", kind: "ddl", objects: [], decision: "deny", status: "denied" }]);
      await log.flush();
      expect(await statements({ user: "dave", q: "audit_trail", group: "ops" })).toEqual([id]);
      expect(await sessions({ user: "dave", decision: "denied" })).toEqual([sid]);
    } finally {
      await log.close();
      await chains.close();
    }
  });

  it("finds a user's statements recorded before statements carried the subject (empty copy)", async () => {
    const sid = await session(store, { subject: "erin", groups: [], connection: "old-db", startedAt: at(5 * D), outcome: "ok" });
    const id = await statement(store, sid, 1, "SELECT legacy_column FROM t", at(5 * D + 1000));
    await store.prisma.$executeRawUnsafe(`UPDATE statements SET subject = '' WHERE id = $1::uuid`, id);
    expect(await statements({ user: "erin", q: "legacy_column" })).toEqual([id]);
    expect(await sessions({ user: "erin", q: "legacy_column" })).toEqual([sid]);
    // …and never as someone else's.
    expect(await statements({ user: "alice", q: "legacy_column" })).toEqual([]);
  });

  it.runIf(postgres)("can use the text index (the query's expression is the index's)", async () => {
    const plan = async (f: AuditFilter) => {
      const q = statementsSql(f, { limit: 50 }, 4096);
      return withClient(dbUrl, async (c) => {
        // A few rows make a sequential scan cheapest; forbid it to see which indexes the query can use.
        await c.query("SET enable_seqscan = off");
        return (await c.query<{ "QUERY PLAN": string }>(`EXPLAIN ${q.text}`, q.values)).rows.map((r) => r["QUERY PLAN"]).join("\n");
      });
    };
    expect(await plan({ q: "customers" })).toContain("statements_text_fts_idx");
    // Which of the subject or time indexes wins depends on the statistics; `pnpm bench audit` shows the plans at scale.
  });
});

describe("filters and cursors", () => {
  it("parses the query-string form and refuses contradictions", () => {
    expect(parseFilter({ subject: "a", to: "2024-05-02T00:00:00Z", q: "  " })).toEqual({ user: "a", to: new Date("2024-05-02T00:00:00Z") });
    expect(parseFilter({ user: "b", subject: "a", before: "2024-05-02T00:00:00Z" })).toMatchObject({ user: "b", to: new Date("2024-05-02T00:00:00Z") });
    for (const bad of [{ from: "2024-05-02T00:00:00Z", to: "2024-05-01T00:00:00Z" }, { outcome: "maybe" }, { decision: "allowed" }, { q: "x".repeat(1001) }, { from: "yesterday" }]) {
      expect(() => parseFilter(bad), JSON.stringify(bad).slice(0, 60)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    }
  });

  it("round-trips cursors", () => {
    const id = randomUUID();
    expect(decodeCursor(encodeCursor(at(123), id))).toEqual({ startedAt: at(123), ties: [id] });
  });

  it("lets auditors and admins search everyone, anyone else only themselves", () => {
    const p = (roles: Principal["roles"]): Principal => ({ subject: "me", kind: "user", roles, groups: [], tokenId: null, expiresAt: new Date(), method: "admin" });
    expect(visibleFilter(p(["auditor"]), { user: "alice" })).toEqual({ user: "alice" });
    expect(visibleFilter(p(["admin"]), {})).toEqual({});
    expect(visibleFilter(p(["user"]), { user: "alice", q: "x" })).toEqual({ user: "me", q: "x" });
    expect(visibleFilter(p(["reviewer"]), {})).toEqual({ user: "me" });
  });
});
