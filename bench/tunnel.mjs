// bench: tunnel throughput, latency, concurrency and memory: direct vs ssh -L vs airlock
//
// `pnpm bench tunnel [--quick] [--keep]` prints, side by side in one run:
//   (a) bulk throughput of one large transfer each way, (b) small-message
//   round-trip latency p50/p99, (c) aggregate throughput of 64 concurrent
//   streams — each for direct TCP, `ssh -L` and gateway+agent — and (d) gateway
//   and agent RSS with 1,000 idle streams and under one slow reader.
// Targets are printed as ratios; timing never fails the run (machines differ).
// Results also go to bench/results/tunnel-<timestamp>.json.
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { cliBuilt, startAirlock } from "./lib/airlock.mjs";
import { dropStores, newStore } from "./lib/store.mjs";
import { closeAll, download, downloadAll, openIdle, openMany, roundTrips, slowRead, upload } from "./lib/client.mjs";
import { childDied, cpuSeconds, descendants, isStopping, machineBusySeconds, mainThreadCpuSeconds, rssBytes, threadCpuSeconds, start, stop, stopAll, waitForLog } from "./lib/procs.mjs";
import { compareRow, fmt, MB, MiB, mibps, quantile, rssRow, sizeLabel, table } from "./lib/report.mjs";
import { sshUnavailable, sshVersion, startSshForward } from "./ssh.mjs";

const FULL = { bulk: 1024 * MiB, rtt: { warmup: 200, count: 2000, size: 64 }, streams: 64, each: 16 * MiB, idle: 1000, slowSeconds: 30 };
const QUICK = { bulk: 128 * MiB, rtt: { warmup: 50, count: 500, size: 64 }, streams: 64, each: 2 * MiB, idle: 200, slowSeconds: 8 };
const SLOW_RATE = 1 * MiB; // bytes/s the slow reader takes
const TARGETS = { idleGatewayMB: 250, slowGrowthMB: 64 };

const USAGE = `Usage: pnpm bench tunnel [--quick] [--keep] [--store postgres|pglite]
  --store   the gateway's store: postgres (production; default) or pglite (embedded, as in airlock dev)
  --quick   smaller sizes (${sizeLabel(QUICK.bulk)} bulk, ${QUICK.idle} idle streams, ${QUICK.slowSeconds} s slow reader) for a smoke run
  --keep    keep the temp directory (logs, gateway data) after the run
`;

// Quiet once Ctrl-C started the cleanup: later steps just fail against dead processes.
const log = (m) => isStopping() || process.stderr.write(`[bench] ${m}\n`);
const forever = () => new Promise(() => {});

export async function run(argv) {
  const { values } = parseArgs({ args: argv, options: { quick: { type: "boolean" }, keep: { type: "boolean" }, store: { type: "string", default: "postgres" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void process.stdout.write(USAGE);
  if (!cliBuilt()) throw new Error("packages/cli/dist/main.js is missing: run `pnpm build` at the repository root first");
  const size = values.quick ? QUICK : FULL;
  if (!["postgres", "pglite"].includes(values.store)) throw new Error(`--store must be postgres or pglite\n${USAGE}`);
  size.store = values.store;
  const dir = fs.mkdtempSync(join(os.tmpdir(), "airlock-bench-"));
  log(`temp dir ${dir}${values.quick ? " (quick run: sizes reduced, targets not comparable)" : ""}`);
  let ok = false;
  try {
    const results = await Promise.race([measure(dir, size), childDied]);
    results.quick = Boolean(values.quick);
    printReport(results, size);
    const file = writeJson(results);
    process.stdout.write(`\nresults: ${file}\n`);
    ok = true;
  } catch (err) {
    if (isStopping()) await forever(); // the interrupt handler cleans up and exits
    throw err;
  } finally {
    log("stopping processes");
    await stopAll();
    dropStores();
    if (ok && !values.keep) fs.rmSync(dir, { recursive: true, force: true });
    else log(`logs and data kept in ${dir}`);
  }
}

async function measure(dir, size) {
  const startedAt = new Date();
  // ---- processes -----------------------------------------------------------
  const target = start("target", process.execPath, [join(import.meta.dirname, "target.mjs")], { log: join(dir, "target.log") });
  const targetPort = Number((await waitForLog(target, /listening (\d+)/))[1]);

  let ssh = null; // replaced by a fresh one for the idle measurement
  const sshSkip = sshUnavailable();
  if (sshSkip) log(`ssh -L skipped: ${sshSkip}`);
  else {
    log("starting sshd and ssh -L");
    ssh = await startSshForward(join(dir, "ssh"), targetPort);
    log(`ssh -L on :${ssh.port}, cipher ${ssh.cipher}, kex ${ssh.kex}`);
  }

  log("starting gateway, agent and airlock connect");
  let al = await startAirlock(join(dir, "airlock"), targetPort, newStore(size.store));
  log(`airlock connect on :${al.port}`);

  // Processes whose CPU and memory we read, per path. The driver (this
  // process) is the client endpoint everywhere.
  const self = { name: "driver (client)", pids: () => [process.pid] };
  const tgt = { name: "target", pids: () => [target.pid] };
  const procsOf = {
    direct: [self, tgt],
    ssh: ssh ? [self, tgt, ...sshProcs(ssh)] : [],
    airlock: [self, tgt, ...airlockProcs(al)],
  };
  const paths = [
    { key: "direct", label: "direct", port: targetPort },
    ...(ssh ? [{ key: "ssh", label: "ssh -L", port: ssh.port }] : []),
    { key: "airlock", label: "airlock", port: al.port },
  ];

  const chunk = Buffer.alloc(MiB, 0x5a);
  const res = {
    startedAt: startedAt.toISOString(),
    env: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      kernel: os.release(),
      loadavgAtStart: os.loadavg(),
      store: size.store,
      ssh: ssh ? { version: sshVersion(), cipher: ssh.cipher, kex: ssh.kex } : { skipped: sshSkip },
    },
    sizes: { ...size, slowRateBytesPerSec: SLOW_RATE },
    paths: {},
  };

  // Memory right after start, before any traffic (the store alone is a large part).
  res.rssAtStart = Object.fromEntries(airlockProcs(al).map((pr) => [pr.name, sumRss(pr.pids())]));

  // JIT and connection pools warm on every path before anything is timed.
  log("warm-up");
  for (const p of paths) {
    await download(p.port, 32 * MiB);
    await upload(p.port, 32 * MiB, chunk);
    await roundTrips(p.port, { warmup: 0, count: 100, size: 64 });
  }

  // ---- (a) bulk ------------------------------------------------------------
  for (const p of paths) {
    const r = (res.paths[p.key] = {});
    log(`(a) ${p.label}: ${sizeLabel(size.bulk)} download`);
    let m = cpuMeter(procsOf[p.key]);
    r.download = { ...(await download(p.port, size.bulk, m)), cpu: m.result() };
    log(`    ${fmt(mibps(r.download))} MiB/s; upload`);
    m = cpuMeter(procsOf[p.key]);
    r.upload = { ...(await upload(p.port, size.bulk, chunk, m)), cpu: m.result() };
    log(`    ${fmt(mibps(r.upload))} MiB/s`);
  }

  // ---- (b) latency ---------------------------------------------------------
  for (const p of paths) {
    log(`(b) ${p.label}: ${size.rtt.count} round trips of ${size.rtt.size} B`);
    const rtts = await roundTrips(p.port, size.rtt);
    res.paths[p.key].rtt = { p50: quantile(rtts, 0.5), p90: quantile(rtts, 0.9), p99: quantile(rtts, 0.99), max: rtts.at(-1), count: rtts.length };
  }

  // ---- (c) concurrency -----------------------------------------------------
  for (const p of paths) {
    log(`(c) ${p.label}: ${size.streams} streams × ${sizeLabel(size.each)}`);
    const { socks, setupMs } = await openMany(p.port, size.streams);
    const m = cpuMeter(procsOf[p.key]);
    m.start();
    const c = await downloadAll(socks, size.each);
    m.stop();
    res.paths[p.key].concurrent = { ...c, cpu: m.result(), setupMsP50: quantile(setupMs, 0.5), setupMsMax: setupMs.at(-1) };
  }

  // ---- (d) memory ----------------------------------------------------------
  // Each memory measurement gets freshly started processes: the heap slack left
  // by the GiB transfers above would otherwise inflate the idle figure and hide
  // growth under the slow reader.
  const rssOf = (procs) => Object.fromEntries(procs.map((pr) => [pr.name, sumRss(pr.pids())]));
  const logs = [al];
  const freshAirlock = async (name) => {
    await stop([al.connect, al.agent, al.gateway]);
    al = await startAirlock(join(dir, name), targetPort, newStore(size.store));
    logs.push(al);
    await download(al.port, MiB); // one stream first, so one-time set-up is not counted as per-stream cost
    await sleep(2000);
    return { port: al.port, procs: airlockProcs(al) };
  };
  const freshSsh = async () => {
    await stop([ssh.ssh, ssh.sshd]);
    ssh = await startSshForward(join(dir, "ssh-idle"), targetPort);
    await download(ssh.port, MiB);
    await sleep(2000);
    return { port: ssh.port, procs: sshProcs(ssh) };
  };

  res.idle = {};
  for (const key of ["airlock", ...(ssh ? ["ssh"] : [])]) {
    log(`(d) ${key}: ${size.idle} idle streams (fresh processes)`);
    const p = key === "airlock" ? await freshAirlock("airlock-idle") : await freshSsh();
    const before = rssOf(p.procs);
    const t0 = Date.now();
    const socks = await openIdle(p.port, size.idle);
    const openMs = Date.now() - t0;
    await sleep(2000); // let buffers settle; then take the highest of a few readings
    const withOpen = maxOf(await sampleEvery(3, 1000, () => rssOf(p.procs)));
    await closeAll(socks);
    await sleep(2000);
    res.idle[key] = { streams: socks.length, openMs, before, withOpen, afterClose: rssOf(p.procs) };
    log(`    opened in ${(openMs / 1000).toFixed(1)} s; ${Object.entries(withOpen).map(([k, v]) => `${k} ${fmt(v / MB)} MB`).join(", ")}`);
  }

  log(`(d) airlock: slow reader at ${SLOW_RATE / MiB} MiB/s for ${size.slowSeconds} s (fresh processes)`);
  const { port: slowPort, procs: memProcs } = await freshAirlock("airlock-slow");
  const baseline = rssOf(memProcs);
  const samples = [];
  const slow = await slowRead(slowPort, {
    rate: SLOW_RATE,
    seconds: size.slowSeconds,
    onSecond: () => samples.push(rssOf(memProcs)),
  });
  const max = maxOf(samples);
  res.slowReader = {
    rateBytesPerSec: SLOW_RATE,
    seconds: slow.ms / 1000,
    bytesReceived: slow.bytes,
    cutShort: slow.cutShort,
    baseline,
    max,
    growth: Object.fromEntries(Object.keys(baseline).map((k) => [k, max[k] - baseline[k]])),
    samples,
  };
  res.gatewayLog = sumCounts(logs.map((i) => logProblems(i.gateway.log)));
  res.agentLog = sumCounts(logs.map((i) => logProblems(i.agent.log)));
  return res;
}

const airlockProcs = (inst) => [
  { name: "airlock connect", pids: () => [inst.connect.pid] },
  { name: "gateway", pids: () => [inst.gateway.pid] },
  { name: "agent", pids: () => [inst.agent.pid] },
];

// sshd forks a process per connection (which setsid); count them with it.
const sshProcs = (inst) => [
  { name: "ssh", pids: () => [inst.ssh.pid] },
  { name: "sshd", pids: () => [inst.sshd.pid, ...descendants(inst.sshd.pid)] },
];

/**
 * Per-process CPU seconds (user+system, from /proc) between start() and stop():
 * { name: { total, main } } where main is the process's main thread, plus
 * "other processes" = the machine's busy time not spent in ours (other load
 * on the box distorts every number, so we show it).
 */
function cpuMeter(procs) {
  const snap = () => ({
    machine: machineBusySeconds(),
    per: Object.fromEntries(
      procs.map((p) => {
        const pids = p.pids();
        const sum = (f) => pids.reduce((a, pid) => a + (f(pid) ?? 0), 0);
        const threads = {};
        for (const pid of pids) for (const [n, v] of Object.entries(threadCpuSeconds(pid))) threads[n] = (threads[n] ?? 0) + v;
        return [p.name, { total: sum(cpuSeconds), main: sum(mainThreadCpuSeconds), threads }];
      }),
    ),
  });
  let a;
  let b;
  return {
    start: () => (a = snap()),
    stop: () => (b = snap()),
    result() {
      const out = {};
      let ours = 0;
      for (const [k, v] of Object.entries(b.per)) {
        const before = a.per[k] ?? { total: 0, main: 0, threads: {} };
        // Threads that ended meanwhile are missing here but still counted in total.
        const threads = Object.fromEntries(
          Object.entries(v.threads)
            .map(([n, t]) => [n, +(t - (before.threads[n] ?? 0)).toFixed(2)])
            .filter(([, t]) => t > 0),
        );
        out[k] = { total: +(v.total - before.total).toFixed(2), main: +(v.main - before.main).toFixed(2), threads };
        ours += out[k].total;
      }
      out["other processes"] = { total: +Math.max(0, b.machine - a.machine - ours).toFixed(2), main: null };
      return out;
    },
  };
}

const sumRss = (pids) => pids.reduce((a, pid) => a + (rssBytes(pid) ?? 0), 0);

async function sampleEvery(n, ms, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (i) await sleep(ms);
    out.push(fn());
  }
  return out;
}

function maxOf(samples) {
  const out = {};
  for (const s of samples) for (const [k, v] of Object.entries(s)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}

function sumCounts(list) {
  const out = {};
  for (const c of list) for (const [k, n] of Object.entries(c)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** Warnings and errors the process logged (pino JSON, level ≥ 40), grouped by message. */
function logProblems(file) {
  const counts = {};
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return counts;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const j = JSON.parse(line);
      if (j.level >= 40) counts[j.msg] = (counts[j.msg] ?? 0) + 1;
    } catch {
      // not a log record
    }
  }
  return counts;
}

// ---- output -----------------------------------------------------------------

function printReport(res, size) {
  const P = res.paths;
  const v = (k, f) => (P[k] ? f(P[k]) : null);
  const get = (f) => ["direct", "ssh", "airlock"].map((k) => v(k, f));
  const out = [];
  const sshNote = res.env.ssh.skipped ? `ssh -L skipped: ${res.env.ssh.skipped}` : `ssh -L cipher ${res.env.ssh.cipher}, kex ${res.env.ssh.kex}`;
  out.push("");
  out.push(`Tunnel benchmark${res.quick ? " (QUICK: reduced sizes, not comparable to targets)" : ""} — node ${res.env.node}, ${res.env.cpus} CPUs, gateway store ${res.env.store}, ${sshNote}`);
  out.push("");
  out.push(
    table(
      ["metric", "direct", "ssh -L", "airlock", "airlock/ssh", "target"],
      [
        compareRow(`(a) bulk download ${sizeLabel(size.bulk)}, MiB/s`, ...get((r) => mibps(r.download)), { target: 1 }),
        compareRow(`(a) bulk upload ${sizeLabel(size.bulk)}, MiB/s`, ...get((r) => mibps(r.upload)), { target: 1 }),
        compareRow(`(b) RTT ${size.rtt.size} B p50, µs`, ...get((r) => r.rtt.p50 * 1000), { digits: 0, better: "lower", target: 1 }),
        compareRow(`(b) RTT ${size.rtt.size} B p99, µs`, ...get((r) => r.rtt.p99 * 1000), { digits: 0, better: "lower" }),
        compareRow(`(c) ${size.streams} streams × ${sizeLabel(size.each)}, MiB/s`, ...get((r) => mibps(r.concurrent)), { target: 1 }),
        compareRow(`(c) new stream setup p50, ms`, ...get((r) => r.concurrent.setupMsP50), { digits: 2, better: "lower" }),
      ],
    ),
  );

  out.push("");
  out.push("CPU per process during the airlock transfers: CPU seconds (user+system), % of wall time, and % for the main thread (event loop):");
  const a = P.airlock;
  const transfers = [
    [`download ${sizeLabel(size.bulk)}`, a.download],
    [`upload ${sizeLabel(size.bulk)}`, a.upload],
    [`${size.streams} streams`, a.concurrent],
  ];
  const cell = (c, ms) => {
    if (!c) return "n/a";
    const pct = (x) => `${fmt((100 * x) / (ms / 1000), 0)}%`;
    return `${fmt(c.total, 2)} s ${pct(c.total)}${c.main === null ? "" : ` (main ${pct(c.main)})`}`;
  };
  out.push(
    table(
      ["process", ...transfers.map(([l, r]) => `${l}, ${fmt(r.ms / 1000, 2)} s wall`)],
      Object.keys(a.download.cpu).map((n) => [n, ...transfers.map(([, r]) => cell(r.cpu[n], r.ms))]),
    ),
  );
  const offMain = {};
  for (const [, r] of transfers) for (const c of Object.values(r.cpu)) for (const [n, t] of Object.entries(c.threads ?? {})) if (n !== "main") offMain[n] = (offMain[n] ?? 0) + t;
  out.push(
    `(the rest of a process's CPU runs on other threads; across these transfers: ${Object.entries(offMain)
      .sort((x, y) => y[1] - x[1])
      .map(([n, t]) => `"${n}" ${fmt(t, 2)} s`)
      .join(", ")} — in Node, threads named "node" are V8 platform workers, i.e. mostly GC)`,
  );
  if (P.ssh) {
    const s = P.ssh.download;
    out.push(
      `for comparison, ssh -L download ${sizeLabel(size.bulk)} (${fmt(s.ms / 1000, 2)} s wall): ${Object.entries(s.cpu)
        .map(([k, c]) => `${k} ${cell(c, s.ms)}`)
        .join(", ")}`,
    );
  }

  const idle = res.idle.airlock;
  const slow = res.slowReader;
  out.push("");
  out.push(`Memory, RSS in MB (10^6 bytes):`);
  out.push(
    table(
      ["measurement", "MB", "target", "note"],
      [
        ...["gateway", "agent", "airlock connect"].map((k) => rssRow(`${k}, fresh start, no traffic yet`, res.rssAtStart[k], null, "")),
        rssRow(`gateway, ${idle.streams} idle streams`, idle.withOpen.gateway, TARGETS.idleGatewayMB, `before ${fmt(idle.before.gateway / MB)}, after close ${fmt(idle.afterClose.gateway / MB)}`),
        rssRow(`agent, ${idle.streams} idle streams`, idle.withOpen.agent, null, `before ${fmt(idle.before.agent / MB)}, after close ${fmt(idle.afterClose.agent / MB)}`),
        rssRow(`airlock connect, ${idle.streams} idle streams`, idle.withOpen["airlock connect"], null, `before ${fmt(idle.before["airlock connect"] / MB)}; opened in ${fmt(idle.openMs / 1000)} s`),
        ...(res.idle.ssh
          ? [
              rssRow(`ssh (reference), ${res.idle.ssh.streams} idle streams`, res.idle.ssh.withOpen.ssh, null, `before ${fmt(res.idle.ssh.before.ssh / MB)}`),
              rssRow(`sshd (reference), ${res.idle.ssh.streams} idle streams`, res.idle.ssh.withOpen.sshd, null, `before ${fmt(res.idle.ssh.before.sshd / MB)}; opened in ${fmt(res.idle.ssh.openMs / 1000)} s`),
            ]
          : []),
        ...["gateway", "agent", "airlock connect"].map((k) =>
          rssRow(`${k}, slow reader growth`, slow.growth[k], k === "airlock connect" ? null : TARGETS.slowGrowthMB, `baseline ${fmt(slow.baseline[k] / MB)}, max ${fmt(slow.max[k] / MB)}`),
        ),
      ],
    ),
  );
  out.push("(growth = highest reading during the slow read − reading just before it; negative means the process returned memory meanwhile)");
  out.push("slow reader RSS each second, MB (does it level off or keep climbing?):");
  for (const k of Object.keys(slow.baseline)) {
    out.push(`  ${k.padEnd(15)} ${[slow.baseline[k], ...slow.samples.map((x) => x[k])].map((b) => Math.round(b / MB)).join(" ")}`);
  }
  out.push(
    `slow reader: received ${fmt(slow.bytesReceived / MiB)} MiB in ${fmt(slow.seconds)} s (≈ ${fmt(slow.bytesReceived / MiB / slow.seconds, 2)} MiB/s)${slow.cutShort ? `; stream cut short: ${slow.cutShort}` : ""}`,
  );
  const problems = Object.entries(res.gatewayLog).concat(Object.entries(res.agentLog));
  if (problems.length) out.push(`warnings/errors logged by gateway/agent: ${problems.map(([m, n]) => `${n}× ${m}`).join("; ")}`);
  process.stdout.write(`${out.join("\n")}\n`);
}

function writeJson(res) {
  const dir = join(import.meta.dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = join(dir, `tunnel-${res.startedAt.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, `${JSON.stringify(res, null, 2)}\n`);
  return file;
}
