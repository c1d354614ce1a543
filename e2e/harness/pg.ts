// Shared setup for the Postgres front door e2e files: one gateway (store on the
// machine's PostgreSQL, policy bundle written by the test), one agent, and a
// fresh target database per file, registered as a `postgres` connection. The
// machine's PostgreSQL (127.0.0.1:5432, trust auth, user postgres) is both the
// gateway's store and the target, in separate databases dropped in close().
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { cleanup, killAll, startAgent, startGateway, tempDir, type GatewayProc, type Proc } from "./processes.js";

export const PG_HOST = "127.0.0.1";
export const PG_PORT = 5432;
const adminUrl = (db: string) => `postgresql://postgres@${PG_HOST}:${PG_PORT}/${db}`;

/** A policy bundle: file name -> content (`*.cedar`, `masking.json`). */
export type PolicyBundle = Record<string, string>;

/** Allow everything, then forbid DDL and DELETE/UPDATE without a WHERE (the guardrails most tests assume). */
export const GUARDRAILS_CEDAR = `
@id("everyone")
@reason("e2e: everything not forbidden below")
permit (principal, action, resource);

@id("no-ddl")
@reason("DDL is not allowed")
forbid (principal, action == Airlock::Action::"ddl", resource);

@id("no-unbounded-write")
@reason("DELETE/UPDATE without WHERE touches every row")
forbid (principal, action in [Airlock::Action::"delete", Airlock::Action::"update"], resource)
unless { context.statement.hasWhere };
`;

export interface SessionStatement {
  seq: number;
  text: string;
  kind: string;
  decision: string;
  rule: string | null;
  reason: string | null;
  status: string;
  rows: string | null;
  masked: number;
  errorCode: string | null;
}

export interface PgEnv {
  gw: GatewayProc;
  agent: Proc;
  /** The target database created for this file (also the connection's default database). */
  database: string;
  /** The connection name registered for `database`. */
  connection: string;
  pgPort: number;
  /** Mints an access token. */
  token(subject: string, groups?: string[]): Promise<string>;
  /** postgresql:// URL through the front door (sslmode=require unless given). */
  url(token: string, opts?: { connection?: string; user?: string; sslmode?: string }): string;
  /** node-postgres config through the front door, over TLS (the gateway's CA is not pinned). */
  config(token: string, opts?: { connection?: string; user?: string }): pg.ClientConfig;
  /** A connected node-postgres client through the front door. */
  connect(token: string, opts?: { connection?: string }): Promise<pg.Client>;
  /** SQL straight on the target database (setup and verification, not through the gateway). */
  direct(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** A second gateway process on the same store, policies and master key (no agent of its own). */
  startPeerGateway(): Promise<GatewayProc>;
  /** Registers another postgres connection (e.g. a fake target). */
  addConnection(name: string, host: string, port: number, database?: string): Promise<void>;
  /** Sessions of a subject, newest first. */
  sessions(subject: string): Promise<Array<{ id: string; outcome: string; errorCode: string | null; error: string | null; endedAt: string | null }>>;
  /** The statements recorded for a session. */
  statements(sessionId: string): Promise<SessionStatement[]>;
  close(): Promise<void>;
}

async function adminQuery(db: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl(db) });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/** Starts gateway + agent and a fresh target database; `setupSql` runs on it before the gateway starts. */
export async function startPgEnv(opts: { name: string; policy: PolicyBundle; setupSql?: string; env?: Record<string, string>; apiPort?: number }): Promise<PgEnv> {
  const suffix = randomBytes(4).toString("hex");
  const database = `airlock_${opts.name}_${suffix}`;
  const storeDb = `${database}_store`;
  const dir = await tempDir(`airlock-${opts.name}-`);
  const policyDir = join(dir, "policy");
  await mkdir(policyDir);
  for (const [file, text] of Object.entries(opts.policy)) await writeFile(join(policyDir, file), text);
  await adminQuery("postgres", `CREATE DATABASE ${database}`);
  await adminQuery("postgres", `CREATE DATABASE ${storeDb}`);
  const direct = new pg.Pool({ connectionString: adminUrl(database), max: 2 });
  if (opts.setupSql) await direct.query(opts.setupSql);

  const gatewayEnv = {
    AIRLOCK_POLICY_DIR: policyDir,
    AIRLOCK_DATABASE_URL: adminUrl(storeDb),
    AIRLOCK_MASTER_KEY: randomBytes(32).toString("base64"),
    ...opts.env,
  };
  const gw = await startGateway({
    env: gatewayEnv,
    ...(opts.apiPort ? { apiPort: opts.apiPort } : {}),
  });
  if (!gw.pgPort) throw new Error("the gateway did not report a Postgres front door port");
  const agent = await startAgent(gw, `agent-${suffix}`);
  await agent.waitFor(/connected to gateway/);
  const pgPort = gw.pgPort;

  const addConnection = async (name: string, host: string, port: number, db = database) => {
    const r = await gw.api("POST", "/api/v1/connections", { name, type: "postgres", host, port, agent: `agent-${suffix}`, database: db, secrets: { username: "postgres" } });
    if (r.status !== 201) throw new Error(`connection create failed: ${JSON.stringify(r.body)}`);
  };
  const connection = "pg";
  await addConnection(connection, PG_HOST, PG_PORT);

  const url: PgEnv["url"] = (token, o = {}) =>
    `postgresql://${o.user ?? "alice"}:${encodeURIComponent(token)}@127.0.0.1:${pgPort}/${o.connection ?? connection}?sslmode=${o.sslmode ?? "require"}`;
  const config: PgEnv["config"] = (token, o = {}) => ({
    host: "127.0.0.1",
    port: pgPort,
    user: o.user ?? "alice",
    password: token,
    database: o.connection ?? connection,
    ssl: { rejectUnauthorized: false },
  });

  return {
    gw,
    agent,
    database,
    connection,
    pgPort,
    async token(subject, groups = []) {
      const r = await gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject, groups });
      if (r.status !== 201) throw new Error(`token mint failed: ${JSON.stringify(r.body)}`);
      return r.body.token;
    },
    url,
    config,
    async connect(token, o) {
      const c = new pg.Client(config(token, o));
      await c.connect();
      return c;
    },
    direct: (text, values) => direct.query(text, values),
    addConnection,
    // Same data dir: the peer finds the bootstrap admin token file (the store mints it only once).
    startPeerGateway: () => startGateway({ env: gatewayEnv, dataDir: gw.dataDir }),
    async sessions(subject) {
      const r = await gw.api<{ sessions: Awaited<ReturnType<PgEnv["sessions"]>> }>("GET", `/api/v1/sessions?subject=${encodeURIComponent(subject)}`);
      return r.body.sessions;
    },
    async statements(sessionId) {
      const r = await gw.api<{ statements?: SessionStatement[] }>("GET", `/api/v1/sessions/${sessionId}`);
      return r.body.statements ?? [];
    },
    async close() {
      await killAll();
      await direct.end().catch(() => {});
      for (const db of [database, storeDb]) {
        await adminQuery("postgres", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch((e: Error) => console.error(e.message));
      }
      await cleanup(dir);
    },
  };
}

/** Resolves with the error a promise rejects with (fails if it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string; severity?: string; detail?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected an error, but the call succeeded");
}
