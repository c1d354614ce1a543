// Part (b) of `pnpm bench audit`: what statement recording adds per statement
// on the Postgres front door. Two gateways (real processes, each with its own
// agent and PostgreSQL store, policies and masking on) serve the same target;
// one runs with the benchmark-only AIRLOCK_BENCH_RECORD_STATEMENTS=off (its
// front door gets a sink that records nothing, see
// packages/gateway/src/sessions/bench-recording-off.ts). One node-postgres
// client per gateway sends statements one at a time, the two gateways taking
// turns statement by statement (who goes first alternates), so drift in machine
// load hits both alike. The difference of the medians is what recording adds.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import fs from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startGatewayAndAgent } from "./airlock.mjs";
import { psql } from "./pgbench.mjs";
import { freePort, waitFor } from "./procs.mjs";
import { quantile } from "./report.mjs";

const require = createRequire(join(import.meta.dirname, "..", "..", "packages", "gateway", "package.json"));
const pg = require("pg");

const POLICY_DIR = join(import.meta.dirname, "..", "policies", "postgres");
export const TARGET_ROWS = 1000;

/** The target both gateways front: a small table, made directly (DDL). */
export function createTargetDb(name) {
  psql("postgres", `CREATE DATABASE ${name}`);
  psql(name, null, {
    input: `CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL);
INSERT INTO bench_items SELECT g, 'item ' || g, (g % 100) + 0.99 FROM generate_series(1, ${TARGET_ROWS}) g;
ANALYZE bench_items;`,
  });
}

/** Gateway + agent + postgres connection "bench" + a user token, with recording on or off. */
async function startPath(dir, storeUrl, targetDb, recording) {
  const port = await freePort();
  const env = { AIRLOCK_POSTGRES_LISTEN: `127.0.0.1:${port}`, AIRLOCK_POLICY_DIR: POLICY_DIR, ...(recording ? {} : { AIRLOCK_BENCH_RECORD_STATEMENTS: "off" }) };
  const inst = await startGatewayAndAgent(dir, storeUrl, env);
  await inst.api("POST", "/api/v1/connections", {
    name: "bench", type: "postgres", host: "127.0.0.1", port: 5432, database: targetDb, agent: "bench-agent", labels: { env: "bench" },
    secrets: { username: "postgres", password: "unused-trust-auth" },
  });
  const user = await inst.api("POST", "/api/v1/tokens", { subject: "bench", roles: ["user"], groups: ["developers"], ttlSeconds: 4 * 3600 });
  const client = new pg.Client({ host: "127.0.0.1", port, user: "bench", database: "bench", password: user.token, ssl: { rejectUnauthorized: false } });
  await waitFor("front door", async () => {
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    }
  }, { rec: inst.gateway, timeoutMs: 20_000 });
  const warned = fs.readFileSync(inst.gateway.log, "utf8").includes("BENCHMARK MODE: Postgres statements are NOT recorded");
  return { ...inst, client, warned };
}

/**
 * The floor under recording: what one statement record costs on the store by
 * itself, the way the gateway writes it (StatementLog's INSERT, one row,
 * synchronous_commit off), next to a bare round trip; and the same INSERT as a
 * named prepared statement (parsed and planned once per connection), which the
 * gateway does not do today. µs p50 over `n` writes into a scratch session.
 */
async function storeFloor(url, n) {
  const sqlMod = await import(pathToFileURL(join(import.meta.dirname, "..", "..", "packages", "gateway", "dist", "sessions", "statements-sql.js")).href);
  const c = new pg.Client({ connectionString: url, options: "-c synchronous_commit=off" });
  await c.connect();
  try {
    const sid = randomUUID();
    await c.query("INSERT INTO sessions (id, subject, connection_name, protocol) VALUES ($1, 'bench-floor', 'bench', 'postgres')", [sid]);
    let seq = 0;
    const row = () => [randomUUID(), sid, ++seq, "SELECT id, name, price FROM bench_items WHERE id = 7", "select", "SELECT", '{"public.bench_items"}', "allow", null, null, "pending", new Date().toISOString(), null, null, "bench-floor", seq, Buffer.alloc(32), Buffer.alloc(32)];
    const values = () => sqlMod.columns([row()], sqlMod.INSERT_COLUMNS);
    const p50 = async (fn) => {
      for (let i = 0; i < 200; i++) await fn();
      const a = [];
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint();
        await fn();
        a.push(Number(process.hrtime.bigint() - t) / 1000);
      }
      return quantile(a.sort((x, y) => x - y), 0.5);
    };
    return {
      roundTrip: await p50(() => c.query("SELECT 1")),
      insert: await p50(() => c.query(sqlMod.INSERT_SQL, values())),
      insertPrepared: await p50(() => c.query({ name: "bench_insert", text: sqlMod.INSERT_SQL, values: values() })),
    };
  } finally {
    await c.end();
  }
}

/** µs for one statement: simple protocol (literal) or extended (parameter). */
async function timeOne(client, i, mode) {
  const id = 1 + (i % TARGET_ROWS);
  const t0 = process.hrtime.bigint();
  if (mode === "simple") await client.query(`SELECT id, name, price FROM bench_items WHERE id = ${id}`);
  else await client.query({ text: "SELECT id, name, price FROM bench_items WHERE id = $1", values: [id] });
  return Number(process.hrtime.bigint() - t0) / 1000;
}

/**
 * Runs part (b): `statements` per mode and path after a warm-up.
 * storeUrls: two fresh PostgreSQL databases for the gateways' stores.
 */
export async function measureRecording({ dir, storeUrls, targetDb, statements, warmup, log }) {
  const on = await startPath(join(dir, "recording-on"), storeUrls[0], targetDb, true);
  const off = await startPath(join(dir, "recording-off"), storeUrls[1], targetDb, false);
  const out = { statements, modes: {} };
  try {
    for (const mode of ["simple", "extended"]) {
      log(`(b) ${mode} protocol: ${warmup} warm-up + ${statements} statements per path, interleaved`);
      for (let i = 0; i < warmup; i++) (await timeOne(on.client, i, mode), await timeOne(off.client, i, mode));
      const a = [];
      const b = [];
      for (let i = 0; i < statements; i++) {
        if (i % 2) (a.push(await timeOne(on.client, i, mode)), b.push(await timeOne(off.client, i, mode)));
        else (b.push(await timeOne(off.client, i, mode)), a.push(await timeOne(on.client, i, mode)));
      }
      a.sort((x, y) => x - y);
      b.sort((x, y) => x - y);
      out.modes[mode] = { on: { p50: quantile(a, 0.5), p99: quantile(a, 0.99) }, off: { p50: quantile(b, 0.5), p99: quantile(b, 0.99) } };
    }
  } finally {
    await on.client.end().catch(() => undefined);
    await off.client.end().catch(() => undefined);
  }
  // Proof of what each path did: rows in each gateway's statements table, and the off path's warning.
  const count = (url) => Number(psql(new URL(url).pathname.slice(1), "SELECT count(*) FROM statements").trim());
  // Completions are written asynchronously; give the writer a moment before counting.
  await new Promise((r) => setTimeout(r, 500));
  out.recorded = { on: count(storeUrls[0]), off: count(storeUrls[1]) };
  out.offWarned = off.warned;
  out.storeFloor = await storeFloor(storeUrls[0], Math.max(500, statements));
  out.onWarned = on.warned;
  return out;
}
