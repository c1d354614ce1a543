// Child processes for benchmarks: every process we start is registered here so
// that a normal end, an error or Ctrl-C all end in the same cleanup. Children
// run detached (own process group) so that we can kill a whole group, and so a
// terminal Ctrl-C reaches only us: we then stop them all, with a short grace.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

let stopping = false;
/** True once an interrupt started the cleanup; the bench then stops reporting. */
export const isStopping = () => stopping;

let rejectDied;
/**
 * Rejects as soon as any child exits without being asked to, so a run fails
 * at once with that process's log instead of waiting for a client timeout.
 */
export const childDied = new Promise((_, reject) => (rejectDied = reject));
childDied.catch(() => {});

/** @type {{ name: string, pid: number, child: import("node:child_process").ChildProcess, log: string, exited: boolean }[]} */
const children = [];
let cleanupInstalled = false;

/** Spawns a detached child with stdout+stderr appended to `log`; returns its record. */
export function start(name, cmd, args, { env = {}, log, cwd } = {}) {
  installCleanup();
  const fd = fs.openSync(log, "a");
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  const rec = { name, pid: child.pid, child, log, exited: false };
  child.on("error", (err) => rejectDied(new Error(`cannot run ${name} (${cmd}): ${err.message}`)));
  if (!child.pid) throw new Error(`cannot start ${name} (${cmd})`);
  child.on("exit", (code, signal) => {
    rec.exited = true;
    rec.exitCode = code;
    rec.exitSignal = signal;
    if (!rec.stopping && !stopping) rejectDied(new Error(`${name} exited unexpectedly (code ${code}, signal ${signal}); log ${log}:\n${tail(log)}`));
  });
  // Don't let the child keep our event loop alive once we are done.
  child.unref();
  children.push(rec);
  return rec;
}

/** Pids of all processes whose parent chain leads to `pid` (sshd forks children into new sessions). */
export function descendants(pid) {
  const parentOf = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(Number(d));
    if (st) parentOf.set(Number(d), st.ppid);
  }
  const out = [];
  const frontier = [pid];
  while (frontier.length) {
    const p = frontier.pop();
    for (const [c, pp] of parentOf) if (pp === p) (out.push(c), frontier.push(c));
  }
  return out;
}

function safeKill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** A process's identity (pid + start time), so a recycled pid is never signalled. */
function identity(pid) {
  const st = readStat(pid);
  return st ? { pid, starttime: st.starttime } : null;
}
const sameProcess = (id) => readStat(id.pid)?.starttime === id.starttime;

/**
 * Stops children: SIGTERM to each one's process group and descendants, all at
 * once; SIGKILL whatever is left after `graceMs`. Descendants are collected
 * first, because once a parent dies its children (e.g. sshd's per-connection
 * processes, which setsid) are re-parented and can no longer be found.
 */
export async function stop(recs, graceMs = 3000) {
  const live = recs.filter((r) => !r.exited);
  if (!live.length) return;
  for (const r of live) r.stopping = true;
  const strays = live.flatMap((r) => descendants(r.pid).map(identity)).filter(Boolean);
  const signal = (sig) => {
    for (const r of live) if (!r.exited) (safeKill(-r.pid, sig), safeKill(r.pid, sig));
    for (const id of strays) if (sameProcess(id)) safeKill(id.pid, sig);
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (live.some((r) => !r.exited) && Date.now() < deadline) await sleep(50);
  signal("SIGKILL");
  while (live.some((r) => !r.exited) && Date.now() < deadline + 2000) await sleep(50);
}

/** Stops every child we started. */
export async function stopAll(graceMs) {
  await stop(children, graceMs);
}

function killAllSync() {
  for (const r of children) if (!r.exited) (safeKill(-r.pid, "SIGKILL"), safeKill(r.pid, "SIGKILL"));
}

function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const onSignal = (sig) => {
    if (stopping) return killAllSync(); // second Ctrl-C: no more grace
    stopping = true;
    process.stderr.write(`\n${sig}: stopping benchmark processes…\n`);
    stopAll(1000).finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  // Last resort (uncaught error, process.exit elsewhere): nothing may outlive us.
  process.on("exit", killAllSync);
}

/** Throws if the child died; used while waiting for it to become ready. */
export function assertAlive(rec) {
  if (rec.exited) {
    throw new Error(`${rec.name} exited (code ${rec.exitCode}, signal ${rec.exitSignal}); log ${rec.log}:\n${tail(rec.log)}`);
  }
}

export function tail(file, lines = 25) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Waits until `rec`'s log matches `re`; returns the match. */
export async function waitForLog(rec, re, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = fs.existsSync(rec.log) ? fs.readFileSync(rec.log, "utf8").match(re) : null;
    if (m) return m;
    assertAlive(rec);
    if (Date.now() > deadline) throw new Error(`${rec.name}: timed out waiting for ${re}; log ${rec.log}:\n${tail(rec.log)}`);
    await sleep(100);
  }
}

/** Polls `fn` until it returns a truthy value. */
export async function waitFor(what, fn, { timeoutMs = 30_000, rec } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (rec) assertAlive(rec);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ""}`);
    await sleep(100);
  }
}

/** A loopback port that was free a moment ago (tiny race, fine for a benchmark). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- /proc readings ---------------------------------------------------------

/** ppid, utime+stime and start time (clock ticks) from /proc/PID/stat; null if gone. */
export function readStat(pid, file = `/proc/${pid}/stat`) {
  let s;
  try {
    s = fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces; fields after the closing paren are fixed.
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), starttime: Number(f[19]) };
}

export const CLK_TCK = 100; // getconf CLK_TCK on Linux x86_64/arm64

/** CPU seconds (user+system) used so far by pid, or null. */
export function cpuSeconds(pid) {
  const st = readStat(pid);
  return st ? (st.utime + st.stime) / CLK_TCK : null;
}

/**
 * CPU seconds of the process's main thread only. For a Node process this is
 * the event loop (JS, TLS, HTTP/2 framing); the rest is GC helpers and the
 * libuv pool. A main thread near 100% of wall time is the bottleneck.
 */
export function mainThreadCpuSeconds(pid) {
  const st = readStat(pid, `/proc/${pid}/task/${pid}/stat`);
  return st ? (st.utime + st.stime) / CLK_TCK : null;
}

/**
 * CPU seconds per thread name of a process ("main" for the main thread), e.g.
 * V8's GC helpers are "V8 DefaultWorke", libuv's pool "libuv-worker".
 */
export function threadCpuSeconds(pid) {
  const out = {};
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let s;
    try {
      s = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // thread ended meanwhile
    }
    const name = Number(tid) === pid ? "main" : s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / CLK_TCK;
  }
  return out;
}

/** Busy CPU seconds of the whole machine (all cores), to spot other load. */
export function machineBusySeconds() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK;
}

/** Resident set size in bytes (VmRSS), or null when the process is gone. */
export function rssBytes(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
