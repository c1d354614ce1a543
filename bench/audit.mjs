// bench: auditors' search over 1M recorded statements (user + time range + text) and what statement recording adds per statement
//
// `pnpm bench audit [--quick] [--keep] [--statements N] [--runs N] [--recorded N] [--skip-search] [--skip-recording]`
//   (a) search: a fresh PostgreSQL store (the production store, gateway
//       migrations applied by an in-process gateway) gets N recorded statements
//       (default 1,000,000; lib/audit-data.mjs: 50 users, 5,000 sessions, 30
//       days, terms of known frequency) written with generate_series, then
//       VACUUM ANALYZE. Each query runs through the API
//       (GET /api/v1/audit/statements over keep-alive HTTP, the auditor's
//       token) and as the bare SQL the API runs (audit/search.ts), --runs times
//       after a warm-up: p50/p99, rows, and the plan's scans from EXPLAIN ANALYZE.
//       Target: user + time range + text < 200 ms.
//   (b) recording overhead: lib/audit-recording.mjs. Target: < 0.2 ms p50 per statement.
// Figures are printed with their targets; timing never fails the run.
// Results also go to bench/results/audit-<timestamp>.json.
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { cliBuilt } from "./lib/airlock.mjs";
import { historySql, TERMS, USERS } from "./lib/audit-data.mjs";
import { createTargetDb, measureRecording } from "./lib/audit-recording.mjs";
import { dropDb, psql } from "./lib/pgbench.mjs";
import { isStopping, stopAll } from "./lib/procs.mjs";
import { fmt, quantile, table } from "./lib/report.mjs";
import { dropStores, newStore } from "./lib/store.mjs";

const GW = join(import.meta.dirname, "..", "packages", "gateway", "dist");
const pg = createRequire(join(GW, "..", "package.json"))("pg");
const FULL = { statements: 1_000_000, runs: 200, recorded: 5000 };
const QUICK = { statements: 200_000, runs: 40, recorded: 1000 };
const USAGE = `Usage: pnpm bench audit [--quick] [--keep] [--statements N] [--runs N] [--recorded N] [--skip-search] [--skip-recording]
  --statements  recorded statements to search (default ${FULL.statements.toLocaleString("en")}; --quick ${QUICK.statements.toLocaleString("en")})
  --runs        timed runs per query and path (default ${FULL.runs})
  --recorded    statements per path and protocol for the recording overhead (default ${FULL.recorded})
`;
const log = (m) => isStopping() || process.stderr.write(`[bench] ${m}\n`);
const DAY = 86_400_000;

export async function run(argv) {
  const { values: v } = parseArgs({
    args: argv,
    options: { quick: { type: "boolean" }, keep: { type: "boolean" }, statements: { type: "string" }, runs: { type: "string" }, recorded: { type: "string" }, "skip-search": { type: "boolean" }, "skip-recording": { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void process.stdout.write(USAGE);
  const base = v.quick ? QUICK : FULL;
  const cfg = { statements: Number(v.statements ?? base.statements), runs: Number(v.runs ?? base.runs), recorded: Number(v.recorded ?? base.recorded) };
  if (!fs.existsSync(join(GW, "audit", "search.js")) || !cliBuilt()) throw new Error("build first: pnpm build");
  const dir = fs.mkdtempSync(join(os.tmpdir(), "airlock-bench-audit-"));
  const target = `airlock_bench_audit_target_${process.pid}`;
  const res = { startedAt: new Date().toISOString(), quick: Boolean(v.quick), config: cfg, env: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, postgres: psql("postgres", "SHOW server_version").trim(), sharedBuffers: psql("postgres", "SHOW shared_buffers").trim() } };
  res.env.loadavgAtStart = os.loadavg();
  try {
    if (!v["skip-search"]) res.search = await measureSearch(dir, cfg);
    if (!v["skip-recording"]) {
      log("(b) starting two gateways + agents (recording on / off) in front of one target");
      createTargetDb(target);
      res.recording = await measureRecording({ dir, storeUrls: [newStore("postgres"), newStore("postgres")], targetDb: target, statements: cfg.recorded, warmup: Math.min(500, cfg.recorded), log });
    }
    res.env.loadavgAtEnd = os.loadavg();
    report(res);
    const out = join(import.meta.dirname, "results");
    fs.mkdirSync(out, { recursive: true });
    const file = join(out, `audit-${res.startedAt.replace(/[:.]/g, "-")}.json`);
    fs.writeFileSync(file, `${JSON.stringify(res, null, 2)}\n`);
    process.stdout.write(`\nresults: ${file}\n`);
  } finally {
    await stopAll();
    dropDb(target);
    dropStores();
    if (!v.keep) fs.rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

/** The queries of part (a): [label, filter, target?]. Times are relative to the end of the generated history (now). */
function cases(now) {
  const user = `user-07@example.com`;
  const since = (days) => new Date(now - days * DAY).toISOString();
  const to = new Date(now + 60_000).toISOString();
  const t = (label, f, judged = true, route = "statements") => ({ label, filter: { ...f, to }, judged, route });
  return [
    t(`user + 7 days + rare term (${TERMS.rare}, 0.01%)`, { user, from: since(7), q: TERMS.rare }),
    t(`user + 7 days + uncommon term (${TERMS.uncommon}, 1%)`, { user, from: since(7), q: TERMS.uncommon }),
    t(`user + 7 days + common term (${TERMS.common}, 15%)`, { user, from: since(7), q: TERMS.common }),
    t(`user + 1 day + common term`, { user, from: since(1), q: TERMS.common }),
    t(`user + 30 days + common term`, { user, from: since(30), q: TERMS.common }),
    t(`user + 30 days + two words ("select" AND ${TERMS.common})`, { user, from: since(30), q: `select ${TERMS.common}` }),
    t(`user + 30 days + phrase "drop table" (absent)`, { user, from: since(30), q: '"drop table"' }),
    t(`(any user) + 7 days + uncommon term`, { from: since(7), q: TERMS.uncommon }, false),
    t(`(any user) + 30 days + "select" (~60%)`, { from: since(30), q: "select" }, false),
    t(`sessions: user + 30 days + uncommon term`, { user, from: since(30), q: TERMS.uncommon }, false, "sessions"),
  ];
}

async function measureSearch(dir, cfg) {
  const { loadConfig, startGateway } = await import(pathToFileURL(join(GW, "index.js")).href);
  const { statementsSql, sessionsSql } = await import(pathToFileURL(join(GW, "audit", "search.js")).href);
  const { pino } = await import(pathToFileURL(join(GW, "..", "node_modules", "pino", "pino.js")).href);
  const url = newStore("postgres");
  const gw = await startGateway(loadConfig({ dataDir: join(dir, "search-gw"), databaseUrl: url, api: { host: "127.0.0.1", port: 0 }, agents: { host: "127.0.0.1", port: 0, insecure: true }, postgres: { enabled: false } }, {}), pino({ level: "silent" }));
  const db = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: url });
  try {
    const sessions = Math.max(USERS, Math.round(cfg.statements / 200));
    log(`(a) writing ${cfg.statements.toLocaleString("en")} statements in ${sessions.toLocaleString("en")} sessions (${USERS} users, 30 days), then VACUUM ANALYZE`);
    const t0 = Date.now();
    psql(db, null, { input: historySql({ total: cfg.statements, sessions }) });
    psql(db, "VACUUM ANALYZE statements");
    const loadMs = Date.now() - t0;
    const now = Date.parse(psql(db, "SELECT to_char(max(started_at), 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM statements").trim());
    const token = (await gw.tokens.mint({ subject: "bench-auditor", roles: ["auditor"], ttlSeconds: 3600 })).token;
    await client.connect();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const rows = [];
    for (const c of cases(now)) {
      const qs = new URLSearchParams({ ...c.filter, limit: "50" });
      const path = c.route === "sessions" ? "/api/v1/sessions" : "/api/v1/audit/statements";
      const apiOnce = () => get(agent, `${gw.apiUrl}${path}?${qs}`, token);
      const filter = { ...c.filter, from: c.filter.from && new Date(c.filter.from), to: new Date(c.filter.to) };
      const sql = c.route === "sessions" ? sessionsSql(filter, { limit: 50 }) : statementsSql(filter, { limit: 50 }, 4096);
      const sqlOnce = async () => (await client.query(sql.text, sql.values)).rowCount;
      for (let i = 0; i < Math.min(20, cfg.runs); i++) (await apiOnce(), await sqlOnce()); // warm: caches, JIT, plan
      const api = [];
      const bare = [];
      let found = 0;
      for (let i = 0; i < cfg.runs; i++) {
        let t = process.hrtime.bigint();
        const body = await apiOnce();
        found = (body.statements ?? body.sessions).length;
        api.push(Number(process.hrtime.bigint() - t) / 1e6);
        t = process.hrtime.bigint();
        await sqlOnce();
        bare.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      api.sort((a, b) => a - b);
      bare.sort((a, b) => a - b);
      const plan = await explain(client, sql);
      rows.push({ label: c.label, judged: c.judged, found, api: { p50: quantile(api, 0.5), p99: quantile(api, 0.99) }, sql: { p50: quantile(bare, 0.5), p99: quantile(bare, 0.99) }, plan });
      log(`    ${c.label}: api p50 ${fmt(quantile(api, 0.5), 2)} ms, sql p50 ${fmt(quantile(bare, 0.5), 2)} ms, ${found} rows; ${plan.scans}`);
    }
    agent.destroy();
    const size = psql(db, "SELECT pg_size_pretty(pg_total_relation_size('statements')) || ' (text index ' || pg_size_pretty(pg_relation_size('statements_text_fts_idx')) || ')'").trim();
    return { statements: cfg.statements, sessions, loadMs, size, runs: cfg.runs, queries: rows };
  } finally {
    await client.end().catch(() => undefined);
    await gw.stop();
  }
}

function get(agent, url, token) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c) => (body += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`${url}: HTTP ${res.statusCode} ${body}`))));
    }).on("error", reject);
  });
}

/** The scans of the plan (index names) and the executor's own time, from EXPLAIN (ANALYZE, FORMAT JSON). */
async function explain(client, sql) {
  const r = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql.text}`, sql.values);
  const top = r.rows[0]["QUERY PLAN"][0];
  const scans = [];
  const walk = (n) => {
    if (/Scan|BitmapAnd|BitmapOr/.test(n["Node Type"])) scans.push(n["Index Name"] ? `${n["Node Type"]} ${n["Index Name"]}` : n["Relation Name"] ? `${n["Node Type"]} ${n["Relation Name"]}` : n["Node Type"]);
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(top.Plan);
  return { scans: scans.join(" / "), executionMs: top["Execution Time"] };
}

function report(res) {
  const la = (a) => a.map((x) => x.toFixed(1)).join(" ");
  process.stdout.write(`\nMachine: ${res.env.cpus} × ${res.env.cpuModel}, Node ${res.env.node}; load average at start ${la(res.env.loadavgAtStart)}, at end ${la(res.env.loadavgAtEnd)}.\n`);
  const s = res.search;
  if (s) {
    process.stdout.write(`\n(a) Search over ${s.statements.toLocaleString("en")} recorded statements in ${s.sessions.toLocaleString("en")} sessions, PostgreSQL ${res.env.postgres} (shared_buffers ${res.env.sharedBuffers}); table ${s.size}; written in ${fmt(s.loadMs / 1000, 1)} s.\n`);
    process.stdout.write(`    ${s.runs} runs each after a warm-up; API = GET /api/v1/audit/statements?limit=50 over keep-alive HTTP (auditor token), SQL = the same query on a direct connection. ms.\n\n`);
    const goal = (q) => (!q.judged ? "(informational)" : q.api.p50 < 200 && q.api.p99 < 200 ? "< 200 met" : "< 200 MISSED");
    process.stdout.write(table(["query", "rows", "API p50", "API p99", "SQL p50", "SQL p99", "p99/target", "target"], s.queries.map((q) => [q.label, q.found, fmt(q.api.p50, 2), fmt(q.api.p99, 2), fmt(q.sql.p50, 2), fmt(q.sql.p99, 2), fmt(q.api.p99 / 200, 3), goal(q)])) + "\n");
    process.stdout.write(`\n    Plans (EXPLAIN ANALYZE, scans in plan order):\n`);
    for (const q of s.queries) process.stdout.write(`    - ${q.label}: ${q.plan.scans} (${fmt(q.plan.executionMs, 2)} ms)\n`);
  }
  const r = res.recording;
  if (r) {
    process.stdout.write(`\n(b) Recording overhead on the Postgres front door: ${r.statements} statements per path and protocol, one client per path, interleaved (µs per statement).\n`);
    process.stdout.write(`    Recorded rows: on ${r.recorded.on}, off ${r.recorded.off}; off path logged its benchmark warning: ${r.offWarned ? "yes" : "NO"}.\n\n`);
    const rows = Object.entries(r.modes).map(([mode, m]) => {
      const added = (m.on.p50 - m.off.p50) / 1000;
      return [`${mode} protocol`, fmt(m.off.p50, 1), fmt(m.off.p99, 1), fmt(m.on.p50, 1), fmt(m.on.p99, 1), fmt(added, 3), `< 0.2 ms ${added < 0.2 ? "met" : "MISSED"}`];
    });
    process.stdout.write(table(["statement", "off p50", "off p99", "on p50", "on p99", "added p50 (ms)", "target"], rows) + "\n");
    const f = r.storeFloor;
    if (f) process.stdout.write(`\n    Store floor (recording's own write, p50 µs): round trip SELECT 1 ${fmt(f.roundTrip, 1)}; statement record INSERT ${fmt(f.insert, 1)}; the same INSERT prepared ${fmt(f.insertPrepared, 1)}.\n`);
  }
}
