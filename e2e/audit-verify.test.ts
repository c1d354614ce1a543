// Tamper evidence end to end: sessions recorded through the real Postgres
// front door (gateway + agent processes, PostgreSQL store and target), then
// changed directly in the store's database the way someone with database
// access would. `airlock audit verify` (the built CLI, verifying on its own
// side with the published keys) must name each altered, removed or reordered
// record and each swapped checkpoint; untouched sessions must pass. Also:
// recording fails closed by default and runs on for best_effort connections,
// and key rotation keeps old checkpoints verifiable.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./harness/cli-helpers.js";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";
import { eventually, tempDir } from "./harness/processes.js";

let env: PgEnv;
let store: pg.Pool;
let token = "";

const POLICY = `@id("everyone") permit (principal, action, resource);`;

beforeAll(async () => {
  env = await startPgEnv({ name: "auditverify", policy: { "policy.cedar": POLICY }, setupSql: "CREATE TABLE t (id int PRIMARY KEY, v text)", env: { AIRLOCK_AUDIT_CHECKPOINT_SECONDS: "0.5" } });
  store = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:5432/${env.database}_store`, max: 2 });
  token = await env.token("alice", ["developers"]);
}, 120_000);
afterAll(async () => {
  await store?.end().catch(() => {});
  await env?.close();
});

const cli = (...args: string[]) => runCli(["audit", ...args], { AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: env.gw.adminToken }, 60_000);

/** One session of `n` statements through the front door; resolves with its id once it is closed and sealed. */
async function recordSession(n = 4, first = 1): Promise<string> {
  const c = await env.connect(token);
  for (let i = first; i < first + n; i++) await c.query(`INSERT INTO t VALUES (${i}, 'row ${i}')`);
  await c.end();
  return eventually(async () => {
    const { rows } = await store.query(
      `SELECT s.id FROM sessions s JOIN audit_checkpoints c ON c.session_id = s.id AND c.kind = 'final'
        WHERE s.id IN (SELECT session_id FROM statements WHERE text = $1)`,
      [`INSERT INTO t VALUES (${first}, 'row ${first}')`],
    );
    return rows[0]?.id as string | undefined;
  }, 15_000, "the session's final checkpoint");
}

async function verify(session: string) {
  const r = await cli("verify", "--session", session, "--json");
  return { code: r.code, out: JSON.parse(r.stdout) as { ok: boolean; findings: Array<{ severity: string; code: string; record?: string; message: string }> } };
}

describe("audit verify", () => {
  it("passes untouched sessions and reports every link checked", async () => {
    const id = await recordSession(3, 100);
    const r = await verify(id);
    expect(r.code).toBe(0);
    expect(r.out).toMatchObject({ ok: true, links: 1 + 3 * 2 + 1, findings: [] });
    const human = await cli("verify", "--session", id);
    expect(human.stdout).toMatch(/^OK: 1 session\(s\), 8 links/m);
    expect(human.stdout).toContain("pin them with --key FILE");
  });

  it("names a statement whose text was edited in the store", async () => {
    const id = await recordSession(4, 200);
    const { rows } = await store.query("UPDATE statements SET text = 'SELECT 1' WHERE session_id = $1 AND seq = 2 RETURNING id", [id]);
    const r = await verify(id);
    expect(r.code).toBe(1);
    expect(r.out.findings).toEqual([expect.objectContaining({ severity: "error", code: "ALTERED", record: `statement #2 (${rows[0].id})` })]);
    const human = await cli("verify", "--session", id);
    expect(human.stdout).toContain("FAILED: 1 problem(s)");
    expect(human.stdout).toContain(`statement #2 (${rows[0].id}) was altered`);
  });

  it("names the place of a deleted statement", async () => {
    const id = await recordSession(4, 300);
    const { rows } = await store.query("DELETE FROM statements WHERE session_id = $1 AND seq = 3 RETURNING id, link, end_link", [id]);
    const r = await verify(id);
    expect(r.code).toBe(1);
    const removed = r.out.findings.filter((f) => f.code === "REMOVED");
    expect(removed.map((f) => f.record)).toEqual([`links ${rows[0].link}–${rows[0].end_link}`]);
    expect(removed[0]!.message).toMatch(/between the outcome of statement #2 .* and statement #4 /);
  });

  it("names two statements swapped in order", async () => {
    const id = await recordSession(4, 400);
    await store.query("UPDATE statements SET seq = -seq WHERE session_id = $1 AND seq IN (2, 3)", [id]);
    await store.query("UPDATE statements SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE session_id = $1 AND seq IN (-2, -3)", [id]);
    const r = await verify(id);
    expect(r.code).toBe(1);
    expect(r.out.findings.length).toBeGreaterThan(0);
    expect(r.out.findings.every((f) => f.code === "REORDERED")).toBe(true);
    expect(r.out.findings.map((f) => f.message).join("\n")).toMatch(/statement #3 \(.*\) was recorded as statement #2/);
  });

  it("finds final checkpoints swapped between two sessions", async () => {
    const a = await recordSession(2, 500);
    const b = await recordSession(2, 600);
    await store.query(
      `UPDATE audit_checkpoints SET session_id = CASE session_id WHEN $1::uuid THEN $2::uuid ELSE $1::uuid END
        WHERE kind = 'final' AND session_id IN ($1::uuid, $2::uuid)`,
      [a, b],
    );
    for (const id of [a, b]) {
      const r = await verify(id);
      expect(r.code).toBe(1);
      expect(r.out.findings).toContainEqual(expect.objectContaining({ code: "CHECKPOINT_INVALID" }));
    }
  });

  it("checks a time range, including the signer's checkpoint stream, with keys pinned from a file", async () => {
    const since = new Date().toISOString();
    const ids = [await recordSession(2, 700), await recordSession(2, 710)];
    const keyFile = join(await tempDir("airlock-keys-"), "keys.pem");
    const exported = await cli("keys", "export");
    expect(exported.stdout).toContain("-----BEGIN PUBLIC KEY-----");
    await writeFile(keyFile, exported.stdout);
    const ok = await cli("verify", "--since", since, "--key", keyFile, "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, sessions: 2 });
    // Removing a whole session (with its checkpoints) leaves a gap in the signer's stream.
    await store.query("DELETE FROM sessions WHERE id = $1", [ids[0]]);
    const gap = await cli("verify", "--since", since, "--key", keyFile, "--json");
    expect(gap.code).toBe(1);
    expect(JSON.parse(gap.stdout).findings).toContainEqual(expect.objectContaining({ code: "REMOVED", message: expect.stringContaining("of signer stream") }));
  });

  it("keeps old checkpoints verifiable after a key rotation, and a pinned old key alone refuses new ones", async () => {
    const before = await recordSession(2, 800);
    const oldKeys = join(await tempDir("airlock-keys-"), "old.pem");
    await writeFile(oldKeys, (await cli("keys", "export")).stdout);
    const rotated = await cli("keys", "rotate", "--json");
    expect(rotated.code).toBe(0);
    const after = await recordSession(2, 810);
    for (const id of [before, after]) expect((await verify(id)).code).toBe(0);
    const listed = JSON.parse((await cli("keys", "list", "--json")).stdout) as { keys: Array<{ id: string; retiredAt: string | null }> };
    expect(listed.keys.filter((k) => !k.retiredAt)).toHaveLength(1);
    expect(listed.keys.length).toBeGreaterThanOrEqual(2);
    const pinned = await cli("verify", "--session", after, "--key", oldKeys, "--json");
    expect(pinned.code).toBe(1);
    expect(JSON.parse(pinned.stdout).findings).toContainEqual(expect.objectContaining({ code: "UNKNOWN_KEY" }));
  });
});

describe("recording when the store cannot record", () => {
  // The store refuses statement records (as a full disk would) until the trigger is dropped.
  const FAIL = `CREATE FUNCTION airlock_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: disk full' USING ERRCODE = '53100'; END $$;
                CREATE TRIGGER airlock_test_fail BEFORE INSERT ON statements FOR EACH STATEMENT EXECUTE FUNCTION airlock_test_fail();`;
  const HEAL = "DROP TRIGGER airlock_test_fail ON statements; DROP FUNCTION airlock_test_fail();";

  it("refuses the statement by default (closed) and runs it on a best_effort connection, counted and explained", async () => {
    const conn = await env.gw.api<{ recordMode: string }>("POST", "/api/v1/connections", { name: "pg-best-effort", type: "postgres", host: "127.0.0.1", port: 5432, agent: (await env.gw.api<{ agents: Array<{ name: string }> }>("GET", "/api/v1/agents")).body.agents[0]!.name, database: env.database, secrets: { username: "postgres" }, recordMode: "best_effort" });
    expect(conn.body.recordMode).toBe("best_effort");
    const closed = await env.connect(token);
    // Fail closed ends that session (its pipeline may hold more statements that could not be recorded either).
    closed.on("error", () => {});
    const lax = await env.connect(token, { connection: "pg-best-effort" });
    await store.query(FAIL);
    try {
      const err = await errorOf(closed.query("INSERT INTO t VALUES (900, 'closed')"));
      expect(err.code).toBe("58000");
      expect(err.message).toContain("not run");
      await lax.query("INSERT INTO t VALUES (901, 'best effort')");
    } finally {
      await store.query(HEAL);
    }
    // Other sessions went on; once the store records again, new sessions do too.
    await lax.query("INSERT INTO t VALUES (902, 'after')");
    const again = await env.connect(token);
    await again.query("INSERT INTO t VALUES (903, 'after')");
    await again.end();
    expect((await env.direct("SELECT id FROM t WHERE id >= 900 ORDER BY id")).rows.map((r) => r.id)).toEqual([901, 902, 903]);
    await closed.end().catch(() => {});
    await lax.end();

    const sessions = await eventually(async () => {
      const { rows } = await store.query("SELECT id, connection_name, unrecorded, record_mode FROM sessions WHERE connection_name IN ('pg', 'pg-best-effort') AND ended_at IS NOT NULL AND id IN (SELECT session_id FROM audit_checkpoints WHERE kind = 'final') AND id IN (SELECT session_id FROM audit_tombstones)");
      return rows.length === 2 ? rows : undefined;
    });
    const byConn = Object.fromEntries(sessions.map((s) => [s.connection_name, s]));
    expect(byConn["pg-best-effort"]).toMatchObject({ unrecorded: 1, record_mode: "best_effort" });
    expect(byConn.pg).toMatchObject({ unrecorded: 0, record_mode: "closed" });
    // Both chains verify; each gap is explained by a signed tombstone saying what happened.
    const lost = await verify(byConn["pg-best-effort"].id);
    expect(lost.code).toBe(0);
    expect(lost.out.findings).toEqual([expect.objectContaining({ severity: "info", code: "TOMBSTONE", message: expect.stringContaining("forwarded without a record") })]);
    const refused = await verify(byConn.pg.id);
    expect(refused.code).toBe(0);
    expect(refused.out.findings).toEqual([expect.objectContaining({ severity: "info", code: "TOMBSTONE", message: expect.stringContaining("so it was not run") })]);
  });
});
