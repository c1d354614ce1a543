// pgbench runs and the throwaway database they use. The same pgbench binary
// drives every system (direct, pgbouncer, airlock); only the connection
// environment (PGHOST, PGPORT, PGSSLMODE, PGPASSWORD, …) differs, so the
// password (an access token for airlock) never appears in argv or logs.
//
// Output formats read here (PostgreSQL 15, https://www.postgresql.org/docs/15/pgbench.html):
//   summary on stdout:   "tps = 1234.567890 (without initial connection time)"
//                        "latency average = 0.810 ms"
//                        "number of transactions actually processed: 37035"
//                        "number of failed transactions: 0 (0.000%)"
//   per-transaction log (-l), one line per transaction, "Per-Transaction Logging":
//     client_id transaction_no time script_no time_epoch time_us [schedule_lag]
//   where `time` is the transaction's latency in µs. With -j N, thread 0
//   writes PREFIX.PID and thread k writes PREFIX.PID.k.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import { basename, join } from "node:path";
import { quantile } from "./report.mjs";

export const PG = { host: "127.0.0.1", port: 5432, user: "postgres" };

/** Runs SQL with psql against `db` on the machine's PostgreSQL; `input` goes to stdin (for long scripts). */
export function psql(db, sql, { input } = {}) {
  const args = ["-h", PG.host, "-p", String(PG.port), "-U", PG.user, "-d", db, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"];
  return execFileSync("psql", sql ? [...args, "-c", sql] : [...args, "-f", "-"], {
    input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** Creates a fresh database and fills it with `pgbench -i` (directly: it runs DDL). */
export function createPgbenchDb(name, scale) {
  try {
    psql("postgres", `CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(`the postgres bench needs PostgreSQL on ${PG.host}:${PG.port} (user ${PG.user}, trust auth): ${err.stderr ?? err.message}`);
  }
  // -q: progress every 5 s instead of every 100k rows.
  execFileSync("pgbench", ["-i", "-q", "-s", String(scale), "-h", PG.host, "-p", String(PG.port), "-U", PG.user, name], { stdio: ["ignore", "ignore", "pipe"] });
}

export function dropDb(name) {
  try {
    psql("postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch {
    // best effort: a leftover bench database is harmless
  }
}

/**
 * What pgbench itself does before a run unless -n: vacuum the small tables
 * and empty the history. We run pgbench with -n everywhere (through airlock
 * VACUUM/TRUNCATE are admin statements the policy refuses) and do this
 * directly before every cell instead, so each system starts from the same state.
 */
export function resetPgbenchTables(db) {
  psql(db, null, { input: "VACUUM pgbench_branches;\nVACUUM pgbench_tellers;\nTRUNCATE pgbench_history;\n" }); // -c would wrap them in one transaction
}

/**
 * Waits (up to `timeoutMs`) until the server has `n` free connection slots.
 * The machine's PostgreSQL is shared (max_connections 100 here): a proxy
 * closes its server connections a moment after its clients leave, and other
 * work on the box holds some too, so a 32-client run can otherwise hit
 * "too many clients" through no fault of the path being measured. Returns the
 * free slots seen last.
 */
export async function waitForConnectionSlots(n, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let free = 0;
    try {
      // superuser_reserved_connections are kept for superusers like us, but not counted as ours to take.
      free = Number(psql("postgres", "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").trim());
    } catch {
      // no slot even for this query: wait like any other shortage
    }
    if (free >= n || Date.now() > deadline) return free;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function pgbenchVersion() {
  return execFileSync("pgbench", ["--version"], { encoding: "utf8" }).trim();
}

/**
 * One pgbench run. `conn` is libpq environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, PGSSLMODE, PGPASSWORD); `workload` "select" (-S) or "update" (-N);
 * `mode` simple | extended | prepared. Resolves with the parsed summary and
 * p50/p99 from the per-transaction log, or { error } when pgbench failed
 * (e.g. a statement was refused): a bench records that and goes on.
 */
export async function runPgbench({ conn, workload, mode, clients, seconds, logDir, label }) {
  const threads = Math.min(clients, 2);
  fs.mkdirSync(logDir, { recursive: true });
  const prefix = join(logDir, label.replace(/[^\w.-]+/g, "_"));
  const args = ["-n", workload === "select" ? "-S" : "-N", "-M", mode, "-c", String(clients), "-j", String(threads), "-T", String(seconds), "-l", `--log-prefix=${prefix}`];
  const out = await runCollect("pgbench", args, { ...conn, PGAPPNAME: "airlock-bench" });
  const files = fs.readdirSync(logDir).filter((f) => f.startsWith(`${basename(prefix)}.`)).map((f) => join(logDir, f));
  const latUs = readLatencyLogs(files);
  for (const f of files) fs.rmSync(f, { force: true }); // up to millions of lines per run
  const summary = parsePgbenchSummary(out.stdout);
  if (out.code !== 0 || summary.tps === null) {
    return { error: firstLines(out.stderr || out.stdout), exitCode: out.code, ...summary, transactionsLogged: latUs.length };
  }
  return {
    ...summary,
    clients,
    threads,
    p50Ms: quantile(latUs, 0.5) / 1000,
    p99Ms: quantile(latUs, 0.99) / 1000,
    transactionsLogged: latUs.length,
  };
}

/** Parses pgbench's summary; fields it did not print are null. */
export function parsePgbenchSummary(text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m),
    latencyAvgMs: num(/^latency average = ([\d.]+) ms/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m) ?? 0,
    connectMs: num(/^initial connection time = ([\d.]+) ms/m),
  };
}

/** Latencies (µs, ascending) from pgbench -l files; lines whose `time` is not a number (skipped/failed) are left out. */
export function readLatencyLogs(files) {
  const parts = [];
  let n = 0;
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    const a = new Float64Array(text.length / 12 + 1); // a line is ≥ 12 chars; trimmed below
    let k = 0;
    for (const line of text.split("\n")) {
      const t = line.split(" ", 3)[2];
      if (t !== undefined && /^\d+$/.test(t)) a[k++] = Number(t);
    }
    parts.push(a.subarray(0, k));
    n += k;
  }
  const all = new Float64Array(n);
  let at = 0;
  for (const p of parts) (all.set(p, at), (at += p.length));
  return Array.from(all.sort());
}

function firstLines(text, n = 6) {
  return text.trim().split("\n").slice(0, n).join("\n");
}

/** Spawns a short-lived tool, collects stdout/stderr; never rejects on a non-zero exit. */
export function runCollect(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => stderr.length < 64 * 1024 && (stderr += d)); // an error per transaction can be long
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** libpq environment for a direct connection (no TLS: the machine's PostgreSQL has ssl = off). */
export function directConn(db) {
  return { PGHOST: PG.host, PGPORT: String(PG.port), PGUSER: PG.user, PGDATABASE: db, PGSSLMODE: "disable", PGPASSWORD: "" };
}

