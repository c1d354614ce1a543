// The gateway on its production store: the machine's real PostgreSQL
// (127.0.0.1:5432, trust auth), a fresh database per run. What the gateway
// writes is checked in the database itself, with psql.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, dbUrl, PG_ADMIN_URL, psqlSession, sql } from "./harness/cli-helpers.js";
import { eventually, freePort, killAll, psql, startAgent, startCli, startConnect, startGateway, tempDir, type GatewayProc, type Proc } from "./harness/processes.js";

const MIGRATIONS = resolve(import.meta.dirname, "../packages/gateway/prisma/migrations");
const suffix = randomBytes(4).toString("hex");
const DB = `airlock_e2e_${suffix}`;
const DB_RACE = `airlock_e2e_${suffix}_race`;
const DB_BOOT = `airlock_e2e_${suffix}_boot`;
/** Gateways sharing a database must share the master key to read each other's secrets. */
const MASTER_KEY = randomBytes(32).toString("base64");
const SECRET = `pw-${randomBytes(12).toString("hex")}`;
const pgEnv = (db: string) => ({ AIRLOCK_DATABASE_URL: dbUrl(db), AIRLOCK_MASTER_KEY: MASTER_KEY });

let migrations: Array<{ name: string; checksum: string }>;

beforeAll(async () => {
  const names = (await readdir(MIGRATIONS, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  migrations = await Promise.all(
    names.map(async (name) => ({ name, checksum: createHash("sha256").update((await readFile(join(MIGRATIONS, name, "migration.sql"), "utf8")).replace(/\r\n/g, "\n")).digest("hex") })),
  );
  expect(migrations.length).toBeGreaterThan(0);
  await sql(PG_ADMIN_URL, `CREATE DATABASE ${DB}`);
  await sql(PG_ADMIN_URL, `CREATE DATABASE ${DB_RACE}`);
  await sql(PG_ADMIN_URL, `CREATE DATABASE ${DB_BOOT}`);
});

afterAll(async () => {
  await killAll();
  for (const db of [DB, DB_RACE, DB_BOOT]) await sql(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch((e: Error) => console.error(e.message));
});

type Session = { id: string; outcome: string; bytesUp: number; bytesDown: number; agent: string | null; endedAt: string | null };

describe("one gateway on PostgreSQL", () => {
  let gw: GatewayProc;
  let agent: Proc & { dataDir: string; token: string };
  let session: Session;

  it("starts on a fresh database: migrations applied and recorded, no embedded store", async () => {
    const t0 = Date.now();
    gw = await startGateway({ env: pgEnv(DB) });
    console.log(`gateway on PostgreSQL ready in ${Date.now() - t0} ms (fresh database)`);
    expect(gw.output()).toMatch(/"store":"postgres".*"msg":"gateway ready"/);
    expect(existsSync(join(gw.dataDir, "store"))).toBe(false);
    expect(gw.adminToken).toMatch(/^alk_at_/);

    const applied = await sql(dbUrl(DB), "select name, checksum from _airlock_migrations order by name");
    expect(applied).toEqual(migrations.map((m) => [m.name, m.checksum]));
    const tables = (await sql(dbUrl(DB), "select tablename from pg_tables where schemaname = 'public' order by 1")).flat();
    expect(tables).toEqual(expect.arrayContaining(["_airlock_migrations", "access_tokens", "agents", "connections", "sessions"]));
  });

  it("an agent, a connection and a psql session through it are rows in that database", async () => {
    agent = await startAgent(gw, "pg-site");
    await agent.waitFor(/connected to gateway/);
    const c = await gw.api("POST", "/api/v1/connections", { name: "pg", type: "tcp", host: "127.0.0.1", port: 5432, agent: "pg-site", secrets: { password: SECRET } });
    expect(c.status).toBe(201);

    const tunnel = await startConnect(gw, "pg");
    // Through the tunnel to the same server: it sees the database holding the gateway's own state.
    const q = await psql(`postgresql://postgres@127.0.0.1:${tunnel.port}/${DB}`, ["-At", "-c", "select count(*) from sessions where outcome = 'active'", "-c", "select count(*) from generate_series(1, 50000)"]);
    expect(q.stderr).toBe("");
    // This very session is recorded before any byte flows, so it is visible while active.
    expect(q.stdout.split("\n")).toEqual(["1", "50000", ""]);
    await tunnel.kill();

    session = await eventually(async () => (await gw.api<{ sessions: Session[] }>("GET", "/api/v1/sessions?connection=pg")).body.sessions.find((s) => s.endedAt), 10_000, "finished session");
    const rows = await sql(
      dbUrl(DB),
      `select s.id, s.outcome, s.bytes_up, s.bytes_down, s.subject, s.connection_name, a.name, c.name, s.ended_at is not null, s.ended_at >= s.started_at
         from sessions s left join agents a on a.id = s.agent_id left join connections c on c.id = s.connection_id`,
    );
    expect(rows).toHaveLength(1);
    const [id, outcome, up, down, subject, connName, agentName, linkedConn, ended, ordered] = rows[0]!;
    expect({ id, outcome, subject, connName, agentName, linkedConn, ended, ordered }).toEqual({ id: session.id, outcome: "ok", subject: "admin", connName: "pg", agentName: "pg-site", linkedConn: "pg", ended: "t", ordered: "t" });
    expect(Number(up)).toBeGreaterThan(50);
    expect(Number(down)).toBeGreaterThan(100);
    expect([Number(up), Number(down)]).toEqual([session.bytesUp, session.bytesDown]);
  });

  it("stores hashes, not tokens or keys, and the connection secret encrypted (bytea without the plaintext)", async () => {
    const [typ, hex, len] = (await sql(dbUrl(DB), "select pg_typeof(secret)::text, encode(secret, 'hex'), octet_length(secret) from connections where name = 'pg'"))[0]!;
    expect(typ).toBe("bytea");
    const blob = Buffer.from(hex!, "hex");
    expect(Number(len)).toBe(blob.length);
    expect(blob.length).toBeGreaterThan(SECRET.length + 16);
    for (const needle of [SECRET, Buffer.from(SECRET).toString("base64"), Buffer.from(SECRET).toString("hex"), "password"]) {
      expect(blob.includes(Buffer.from(needle)), `ciphertext contains ${needle}`).toBe(false);
    }
    // The whole row as PostgreSQL renders it does not carry the secret either.
    const asText = (await sql(dbUrl(DB), "select row_to_json(c)::text from connections c")).flat().join("\n");
    expect(asText).not.toContain(SECRET);

    // Same plaintext again: a different ciphertext (fresh data key / nonce).
    const c2 = await gw.api("POST", "/api/v1/connections", { name: "pg-twin", type: "tcp", host: "127.0.0.1", port: 5432, agent: "pg-site", secrets: { password: SECRET } });
    expect(c2.status).toBe(201);
    const twin = (await sql(dbUrl(DB), "select encode(secret, 'hex') from connections where name = 'pg-twin'"))[0]![0];
    expect(twin).not.toBe(hex);

    // Access tokens and agent keys: only SHA-256 hashes are stored.
    const tokens = (await sql(dbUrl(DB), "select row_to_json(t)::text from access_tokens t")).flat().join("\n");
    expect(tokens).not.toContain(gw.adminToken);
    expect((await sql(dbUrl(DB), `select subject from access_tokens where hash = '${createHash("sha256").update(gw.adminToken).digest("hex")}'`)).flat()).toEqual(["admin"]);
    const agentKey = (JSON.parse(await readFile(join(agent.dataDir, "agent.json"), "utf8")) as { agentKey: string }).agentKey;
    const [keyHash, enrollHash, enrolled] = (await sql(dbUrl(DB), "select key_hash, coalesce(enroll_hash, '<null>'), enrolled_at is not null from agents where name = 'pg-site'"))[0]!;
    expect(keyHash).toBe(createHash("sha256").update(agentKey).digest("hex"));
    expect(enrolled).toBe("t");
    // The one-time enrollment token: at most its hash remains (to refuse reuse), never the token.
    expect([createHash("sha256").update(agent.token).digest("hex"), "<null>"]).toContain(enrollHash);
    expect((await sql(dbUrl(DB), "select row_to_json(a)::text from agents a")).flat().join("\n")).not.toContain(agentKey);
  });

  it("after a gateway restart the state is still there and the agent reconnects by itself", async () => {
    const agentAddress = gw.agentAddress;
    gw.child.kill("SIGTERM");
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    await eventually(async () => count(agent, /gateway link down; reconnecting/) >= 1, 10_000, "the agent to notice the gateway went away");

    const t0 = Date.now();
    const gw2 = await startGateway({ dataDir: gw.dataDir, env: { ...pgEnv(DB), AIRLOCK_AGENT_LISTEN: agentAddress } });
    console.log(`gateway on PostgreSQL restarted in ${Date.now() - t0} ms`);
    // Nothing left to migrate and no second bootstrap token.
    expect(gw2.output()).not.toMatch(/applied store migration/);
    expect(gw2.output()).not.toMatch(/bootstrap admin token/);
    expect(await sql(dbUrl(DB), "select count(*) from _airlock_migrations")).toEqual([[String(migrations.length)]]);

    await eventually(async () => count(agent, /connected to gateway/) >= 2, 20_000, "the agent to reconnect");
    console.log(`agent reconnected ${Date.now() - t0} ms after the gateway restart began`);
    const a = await eventually(async () => {
      const r = await gw2.api<{ status: string; name: string }>("GET", "/api/v1/agents/pg-site");
      return r.body.status === "online" ? r.body : null;
    }, 10_000, "pg-site online");
    expect(a.name).toBe("pg-site");

    const conn = await gw2.api<{ name: string; hasSecrets: boolean; agent: string }>("GET", "/api/v1/connections/pg");
    expect(conn.body).toMatchObject({ name: "pg", hasSecrets: true, agent: "pg-site" });
    const old = await gw2.api<Session>("GET", `/api/v1/sessions/${session.id}`);
    expect(old.body).toMatchObject({ id: session.id, outcome: "ok", bytesUp: session.bytesUp, bytesDown: session.bytesDown, agent: "pg-site" });

    // A new session through the restarted gateway (the secret must decrypt for it to start).
    const tunnel = await startConnect(gw2, "pg");
    const q = await psql(`postgresql://postgres@127.0.0.1:${tunnel.port}/postgres`, ["-At", "-c", "select 'after restart'"]);
    expect(q.stderr).toBe("");
    expect(q.stdout).toBe("after restart\n");
    await tunnel.kill();
    await eventually(async () => (await sql(dbUrl(DB), "select count(*) from sessions where outcome = 'ok'"))[0]![0] === "2", 10_000, "two ok sessions in PostgreSQL");
  });
});

/** `airlock gateway` on a database, without reading an admin token (a racing peer may have minted it). */
async function startPgGateway(db: string): Promise<Proc & { dataDir: string; apiUrl: string }> {
  const dataDir = await tempDir("airlock-gw-race-");
  const apiPort = await freePort();
  const agentPort = await freePort();
  const p = startCli(["gateway", "--data-dir", dataDir], { ...pgEnv(db), AIRLOCK_API_LISTEN: `127.0.0.1:${apiPort}`, AIRLOCK_AGENT_LISTEN: `127.0.0.1:${agentPort}`, AIRLOCK_POSTGRES_LISTEN: "127.0.0.1:0" });
  return Object.assign(p, { dataDir, apiUrl: `http://127.0.0.1:${apiPort}` });
}

describe("two gateways started at once on one fresh database", () => {
  it("both come up, migrations are applied exactly once, and they share state", async () => {
    const [g1, g2] = await Promise.all([startPgGateway(DB_RACE), startPgGateway(DB_RACE)]);
    const t0 = Date.now();
    await Promise.all([g1.waitFor(/gateway ready/, 60_000), g2.waitFor(/gateway ready/, 60_000)]);
    console.log(`two gateways racing on one fresh database: both ready in ${Date.now() - t0} ms`);
    for (const g of [g1, g2]) expect((await fetch(`${g.apiUrl}/healthz`)).status).toBe(200);

    // Applied once: one row per migration, and one "applied" log line per migration across both.
    expect(await sql(dbUrl(DB_RACE), "select name, checksum from _airlock_migrations order by name")).toEqual(migrations.map((m) => [m.name, m.checksum]));
    expect(count(g1, /applied store migration/) + count(g2, /applied store migration/)).toBe(migrations.length);
    for (const g of [g1, g2]) expect(g.output()).not.toMatch(/STORE_UNAVAILABLE|migration .* failed/);

    // Every bootstrap admin token in the store was handed to a gateway's data dir.
    // (Exactly one is checked deterministically by the next test.)
    const files = [g1, g2].map((g) => join(g.dataDir, "admin-token")).filter((f) => existsSync(f));
    const bootstrap = await sql(dbUrl(DB_RACE), "select count(*) from access_tokens where description = 'bootstrap admin token'");
    expect(files.length).toBeGreaterThanOrEqual(1);
    expect(bootstrap[0]![0]).toBe(String(files.length));

    // One store behind both: what one writes, the other reads.
    const token = (await readFile(files[0]!, "utf8")).trim();
    const call = (g: { apiUrl: string }, method: string, path: string, body?: unknown) =>
      fetch(g.apiUrl + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    expect((await call(g1, "POST", "/api/v1/agents", { name: "shared" })).status).toBe(201);
    expect((await call(g2, "GET", "/api/v1/agents/shared")).status).toBe(200);
    expect((await call(g2, "POST", "/api/v1/agents", { name: "shared" })).status).toBe(409);
  });

  it("the bootstrap admin token is minted once even when both check the empty store at the same moment", async () => {
    // Schema in place (as the migrator would leave it), then access_tokens locked
    // so both gateways stop at their "is the store empty?" read; released together.
    for (const m of migrations) {
      const r = await psql(dbUrl(DB_BOOT), ["-q", "-1", "-f", join(MIGRATIONS, m.name, "migration.sql")]);
      expect(r.code, r.stderr).toBe(0);
    }
    await sql(dbUrl(DB_BOOT), `CREATE TABLE "_airlock_migrations" (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const m of migrations) await sql(dbUrl(DB_BOOT), `INSERT INTO "_airlock_migrations" (name, checksum) VALUES ('${m.name}', '${m.checksum}')`);
    const holder = psqlSession(dbUrl(DB_BOOT));
    await holder.run("BEGIN; LOCK TABLE access_tokens IN ACCESS EXCLUSIVE MODE;");
    const gws = await Promise.all([startPgGateway(DB_BOOT), startPgGateway(DB_BOOT)]);
    try {
      await eventually(
        async () => (await sql(PG_ADMIN_URL, `select count(*) from pg_stat_activity where datname = '${DB_BOOT}' and wait_event_type = 'Lock'`))[0]![0] === "2",
        30_000,
        "both gateways waiting on access_tokens",
      );
      await holder.run("COMMIT;");
      await Promise.all(gws.map((g) => g.waitFor(/gateway ready/, 30_000)));
    } finally {
      await holder.close();
    }
    const files = gws.filter((g) => existsSync(join(g.dataDir, "admin-token"))).length;
    const rows = (await sql(dbUrl(DB_BOOT), "select count(*) from access_tokens where description = 'bootstrap admin token'"))[0]![0];
    expect({ adminTokenFiles: files, bootstrapTokens: rows }).toEqual({ adminTokenFiles: 1, bootstrapTokens: "1" });
  });
});
