// pgbench runs and the pgbouncer baseline against the machine's real
// PostgreSQL (127.0.0.1:5432, trust): short runs, behaviour only (no timing
// thresholds; the figures are printed).
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgbenchDb, directConn, dropDb, parsePgbenchSummary, PG, readLatencyLogs, resetPgbenchTables, runPgbench } from "./pgbench.mjs";
import { pgbouncerConn, pgbouncerUnavailable, startPgbouncer } from "./pgbouncer.mjs";
import { stopAll } from "./procs.mjs";

const DB = `airlock_bench_pgbench_test_${process.pid}`;
const dir = fs.mkdtempSync(join(os.tmpdir(), "airlock-pgbench-test-"));

describe("pgbench helpers", () => {
  beforeAll(() => createPgbenchDb(DB, 1));
  afterAll(async () => {
    await stopAll();
    dropDb(DB);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("parses pgbench's summary", () => {
    const s = parsePgbenchSummary(
      "number of transactions actually processed: 37035\nnumber of failed transactions: 0 (0.000%)\nlatency average = 0.810 ms\ninitial connection time = 3.021 ms\ntps = 1234.567890 (without initial connection time)\n",
    );
    expect(s).toEqual({ tps: 1234.56789, latencyAvgMs: 0.81, transactions: 37035, failed: 0, connectMs: 3.021 });
    expect(parsePgbenchSummary("pgbench: error: connection refused\n").tps).toBeNull();
  });

  it("reads per-transaction logs of every thread, skipping non-numeric latencies", () => {
    const a = join(dir, "x.1");
    const b = join(dir, "x.1.1");
    fs.writeFileSync(a, "0 0 812 0 1700000000 1\n0 1 300 0 1700000000 2\n");
    fs.writeFileSync(b, "1 0 500 0 1700000000 3\n1 1 failed 0 1700000000 4\n");
    expect(readLatencyLogs([a, b])).toEqual([300, 500, 812]);
  });

  it("runs pgbench directly and reports TPS, p50 and p99 from the per-transaction log", async () => {
    resetPgbenchTables(DB);
    const r = await runPgbench({ conn: directConn(DB), workload: "update", mode: "extended", clients: 2, seconds: 1, logDir: join(dir, "logs"), label: "direct" });
    console.log("direct -N extended c=2, 1 s:", r);
    expect(r.error).toBeUndefined();
    expect(r.tps).toBeGreaterThan(0);
    expect(r.transactionsLogged).toBe(r.transactions);
    expect(r.p50Ms).toBeLessThanOrEqual(r.p99Ms);
    expect(fs.readdirSync(join(dir, "logs"))).toEqual([]); // logs are removed after reading
  });

  it("reports a failed run instead of throwing", async () => {
    const r = await runPgbench({ conn: { ...directConn(DB), PGDATABASE: `${DB}_missing` }, workload: "select", mode: "simple", clients: 1, seconds: 1, logDir: join(dir, "logs"), label: "missing" });
    expect(r.error).toMatch(/does not exist/);
  });

  it.skipIf(pgbouncerUnavailable())("runs pgbench through pgbouncer with client TLS (session pooling)", async () => {
    const b = await startPgbouncer(join(dir, "pgbouncer"), PG, { poolSize: 4 });
    const r = await runPgbench({ conn: pgbouncerConn(b.port, PG.user, DB), workload: "select", mode: "simple", clients: 2, seconds: 1, logDir: join(dir, "logs"), label: "pgbouncer" });
    console.log("pgbouncer -S simple c=2, 1 s:", r);
    expect(r.error).toBeUndefined();
    expect(r.transactionsLogged).toBe(r.transactions);
    // Plaintext is refused: the TLS requirement is real.
    const plain = await runPgbench({ conn: { ...pgbouncerConn(b.port, PG.user, DB), PGSSLMODE: "disable" }, workload: "select", mode: "simple", clients: 1, seconds: 1, logDir: join(dir, "logs"), label: "plain" });
    expect(plain.error).toBeDefined();
  });
});
