// bench: Postgres front door: pgbench TPS/p50/p99 and a 1M-row masked result — direct vs pgbouncer vs airlock
//
// `pnpm bench postgres [--quick] [--keep] [--profile] [--seconds N] [--clients 1,8,32] [--rows N] [--systems direct,pgbouncer,airlock]`
// prints, side by side in one run against the machine's PostgreSQL
// (127.0.0.1:5432, trust) on a fresh pgbench database (created and dropped):
//   (a) pgbench -S (select only) and -N (simple update) × -M simple/extended ×
//       1/8/32 clients: TPS, p50 and p99 from the per-transaction log, for
//       PostgreSQL directly, through pgbouncer (session pooling) and through
//       Airlock's front door (gateway + agent, policies, masking, recording);
//   (b) a 1,000,000-row result of customer data read with node-postgres,
//       directly and through Airlock (masked): rows/s, gateway RSS growth,
//       and a check that sampled rows came back masked.
// Targets are printed as met/missed; timing never fails the run.
// Results also go to bench/results/postgres-<timestamp>.json.
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cliBuilt, startAirlockPostgres } from "./lib/airlock.mjs";
import { createPgbenchDb, directConn, dropDb, PG, pgbenchVersion, psql, resetPgbenchTables, runPgbench, waitForConnectionSlots } from "./lib/pgbench.mjs";
import { pgbouncerConn, pgbouncerUnavailable, pgbouncerVersion, startPgbouncer } from "./lib/pgbouncer.mjs";
import { printReport } from "./lib/postgres-report.mjs";
import { childDied, cpuSeconds, isStopping, rssBytes, stopAll } from "./lib/procs.mjs";
import { checkMasking, customersSql, readAll, READ_SQL } from "./lib/rows.mjs";
import { startRssSampler } from "./lib/sampler.mjs";
import { dropStores, newStore } from "./lib/store.mjs";

const FULL = { seconds: 10, clients: [1, 8, 32], scale: 10, rows: 1_000_000 };
const QUICK = { seconds: 3, clients: [1, 8], scale: 10, rows: 200_000 };
const SYSTEMS = ["direct", "pgbouncer", "airlock"];
const POLICY_DIR = join(import.meta.dirname, "policies", "postgres");

const USAGE = `Usage: pnpm bench postgres [--quick] [--keep] [--seconds N] [--clients 1,8,32] [--rows N] [--systems ${SYSTEMS.join(",")}]
  --quick     ${QUICK.seconds} s per cell, clients ${QUICK.clients.join("/")}, ${QUICK.rows.toLocaleString("en")} rows: a smoke run
  --seconds   duration of each pgbench cell (default ${FULL.seconds})
  --clients   client counts (default ${FULL.clients.join(",")}); pgbench -j is min(clients, 2)
  --rows      size of the large masked result (default ${FULL.rows.toLocaleString("en")})
  --systems   which paths to measure (default all)
  --profile   write a V8 CPU profile of the gateway to <temp dir>/profile (implies --keep; open it in Chrome DevTools)
  --keep      keep the temp directory (logs, gateway data) after the run
`;

const log = (m) => isStopping() || process.stderr.write(`[bench] ${m}\n`);
const forever = () => new Promise(() => {});

export async function run(argv) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      keep: { type: "boolean" },
      seconds: { type: "string" },
      clients: { type: "string" },
      rows: { type: "string" },
      systems: { type: "string" },
      profile: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return void process.stdout.write(USAGE);
  const base = v.quick ? QUICK : FULL;
  const cfg = {
    ...base,
    quick: Boolean(v.quick),
    seconds: v.seconds ? Number(v.seconds) : base.seconds,
    clients: v.clients ? v.clients.split(",").map(Number) : base.clients,
    rows: v.rows ? Number(v.rows) : base.rows,
    systems: v.systems ? v.systems.split(",") : SYSTEMS,
    profile: Boolean(v.profile),
  };
  if (!(cfg.seconds > 0) || !cfg.clients.every((c) => Number.isInteger(c) && c > 0) || !(cfg.rows > 0)) throw new Error(`bad arguments\n${USAGE}`);
  if (cfg.systems.some((s) => !SYSTEMS.includes(s))) throw new Error(`--systems takes ${SYSTEMS.join(",")}\n${USAGE}`);
  if (cfg.systems.includes("airlock") && !cliBuilt()) throw new Error("packages/cli/dist/main.js is missing: run `pnpm build` at the repository root first");

  const dir = fs.mkdtempSync(join(os.tmpdir(), "airlock-bench-pg-"));
  const db = `airlock_bench_pg_${process.pid}`;
  log(`temp dir ${dir}${cfg.quick ? " (quick run: shorter cells, targets not comparable)" : ""}`);
  let ok = false;
  try {
    const results = await Promise.race([measure(dir, db, cfg), childDied]);
    printReport(results);
    const file = writeJson(results);
    process.stdout.write(`\nresults: ${file}\n`);
    ok = true;
  } catch (err) {
    if (isStopping()) await forever(); // the interrupt handler cleans up and exits
    throw err;
  } finally {
    log("stopping processes");
    await stopAll();
    dropDb(db);
    dropStores();
    if (ok && !v.keep && !cfg.profile) fs.rmSync(dir, { recursive: true, force: true });
    else log(`logs and data kept in ${dir}`);
  }
}

async function measure(dir, db, cfg) {
  const res = {
    startedAt: new Date().toISOString(),
    quick: cfg.quick,
    config: { seconds: cfg.seconds, clients: cfg.clients, scale: cfg.scale, rows: cfg.rows, systems: cfg.systems },
    env: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, kernel: os.release(), loadavgAtStart: os.loadavg(), pgbench: pgbenchVersion() },
    systems: {},
    cells: [],
  };
  log(`creating database ${db} (pgbench -i -s ${cfg.scale}) and ${cfg.rows.toLocaleString("en")} customers, directly`);
  createPgbenchDb(db, cfg.scale);
  psql(db, null, { input: customersSql(cfg.rows) });
  res.env.postgres = psql(db, "SHOW server_version").trim();

  // ---- the three paths ---------------------------------------------------
  const conns = {};
  if (cfg.systems.includes("direct")) {
    conns.direct = directConn(db);
    res.systems.direct = { tls: false, note: "PostgreSQL 127.0.0.1:5432, ssl = off on this machine" };
  }
  if (cfg.systems.includes("pgbouncer")) {
    const why = pgbouncerUnavailable();
    if (why) {
      res.systems.pgbouncer = { skipped: why };
      log(`pgbouncer skipped: ${why}`);
    } else {
      const b = await startPgbouncer(join(dir, "pgbouncer"), PG, { poolSize: Math.max(...cfg.clients) + 2 });
      conns.pgbouncer = pgbouncerConn(b.port, PG.user, db);
      res.systems.pgbouncer = { tls: true, poolMode: b.poolMode, version: pgbouncerVersion(), pid: b.rec.pid };
      log(`pgbouncer on :${b.port} (session pooling, client TLS)`);
    }
  }
  let al = null;
  if (cfg.systems.includes("airlock")) {
    log("starting gateway (PostgreSQL store, front door, policies, masking) and agent");
    const store = newStore("postgres");
    al = await startAirlockPostgres(join(dir, "airlock"), {
      databaseUrl: store,
      policyDir: POLICY_DIR,
      target: { ...PG, database: db, password: "unused-trust-auth" },
      // Node writes the profile when the gateway exits (stopAll's SIGTERM); the run's timings include the profiler's cost.
      gatewayNodeArgs: cfg.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(dir, "profile")}`] : [],
    });
    // PGPASSWORD carries the token to pgbench/libpq: never in argv, never printed.
    conns.airlock = { PGHOST: "127.0.0.1", PGPORT: String(al.port), PGUSER: "bench", PGDATABASE: al.connection, PGSSLMODE: "require", PGPASSWORD: al.token };
    res.systems.airlock = { tls: true, store: "postgres", policyDir: POLICY_DIR, gatewayPid: al.gateway.pid, agentPid: al.agent.pid, rssAtStart: { gateway: rssBytes(al.gateway.pid), agent: rssBytes(al.agent.pid) } };
    res.storeDb = new URL(store).pathname.slice(1);
    log(`front door on :${al.port}`);
  }
  const systems = Object.keys(conns);

  // ---- (a) pgbench ---------------------------------------------------------
  // JIT, pools and caches warm on every path before anything is timed.
  for (const s of systems) {
    log(`warm-up ${s}`);
    resetPgbenchTables(db);
    const w = await runPgbench({ conn: conns[s], workload: "update", mode: "extended", clients: 4, seconds: 2, logDir: join(dir, "pgbench"), label: `warmup-${s}` });
    if (w.error) log(`    warm-up failed: ${w.error}`);
  }
  // Systems take turns within each cell so drift (caches, other load) hits all alike.
  for (const workload of ["select", "update"]) {
    for (const mode of ["simple", "extended"]) {
      for (const clients of cfg.clients) {
        const cell = { workload, mode, clients, results: {} };
        for (const s of systems) {
          const free = await waitForConnectionSlots(clients + 2);
          if (free < clients + 2) log(`    only ${free} free connection slots on PostgreSQL (need ${clients + 2}); running anyway`);
          resetPgbenchTables(db);
          const cpu0 = al && s === "airlock" ? cpuOf(al) : null;
          const r = await runPgbench({ conn: conns[s], workload, mode, clients, seconds: cfg.seconds, logDir: join(dir, "pgbench"), label: `${s}-${workload}-${mode}-${clients}` });
          if (cpu0) r.cpuSeconds = diffCpu(cpuOf(al), cpu0);
          cell.results[s] = r;
          log(`(a) ${workload} ${mode} c=${clients} ${s}: ${r.error ? `FAILED ${r.error.split("\n")[0]}` : `${r.tps.toFixed(0)} tps, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`}`);
        }
        res.cells.push(cell);
      }
    }
  }

  // ---- (b) large masked result -------------------------------------------
  res.rows = {};
  if (conns.direct) {
    log(`(b) direct: ${cfg.rows.toLocaleString("en")} rows`);
    await readAll(pgConfig(conns.direct), `${READ_SQL} WHERE id <= 50000`); // warm-up
    const r = await readAll(pgConfig(conns.direct), READ_SQL);
    res.rows.direct = { rows: r.rows, ms: r.ms };
    res.rows.directSample = r.sample;
  }
  if (al) {
    log(`(b) airlock: ${cfg.rows.toLocaleString("en")} rows, masked`);
    await readAll(pgConfig(conns.airlock), `${READ_SQL} WHERE id <= 50000`); // warm-up (JIT in gateway and agent)
    const gw = startRssSampler(al.gateway.pid, 100);
    const ag = startRssSampler(al.agent.pid, 100);
    const cpu0 = cpuOf(al);
    const r = await readAll(pgConfig(conns.airlock), READ_SQL);
    const cpu = diffCpu(cpuOf(al), cpu0);
    const [g, a] = [await gw.stop(), await ag.stop()];
    res.rows.airlock = { rows: r.rows, ms: r.ms, cpuSeconds: cpu, rss: { gateway: g, agent: a } };
    if (res.rows.directSample) res.rows.masking = checkMasking(res.rows.directSample, r.sample);
  }
  delete res.rows.directSample;

  if (res.storeDb) res.recorded = recordedStatements(res.storeDb);
  res.env.loadavgAtEnd = os.loadavg();
  return res;
}

const pgConfig = (c) => ({
  host: c.PGHOST,
  port: Number(c.PGPORT),
  user: c.PGUSER,
  database: c.PGDATABASE,
  password: c.PGPASSWORD || undefined,
  // The gateway's certificate is from its own generated CA; the bench checks speed, not trust.
  ssl: c.PGSSLMODE === "require" ? { rejectUnauthorized: false } : false,
});

const cpuOf = (al) => ({ gateway: cpuSeconds(al.gateway.pid) ?? 0, agent: cpuSeconds(al.agent.pid) ?? 0 });
const diffCpu = (b, a) => ({ gateway: +(b.gateway - a.gateway).toFixed(2), agent: +(b.agent - a.agent).toFixed(2) });

/** Statements the gateway recorded, by decision and status: proof recording was on. */
function recordedStatements(storeDb) {
  try {
    const out = psql(storeDb, "SELECT decision, status, count(*) FROM statements GROUP BY 1, 2 ORDER BY 3 DESC");
    return out
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [decision, status, n] = l.split("|");
        return { decision, status, count: Number(n) };
      });
  } catch (err) {
    return { error: String(err.stderr ?? err.message).trim() };
  }
}

function writeJson(res) {
  const d = join(import.meta.dirname, "results");
  fs.mkdirSync(d, { recursive: true });
  const file = join(d, `postgres-${res.startedAt.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, `${JSON.stringify(res, null, 2)}\n`);
  return file;
}
