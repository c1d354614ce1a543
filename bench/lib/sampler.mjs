// Samples a process's RSS every `intervalMs` on a worker thread, so the
// readings keep their pace while the main thread is busy decoding a million
// rows (a timer on the main thread would be starved exactly then).
import { Worker } from "node:worker_threads";

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const { pid, intervalMs } = workerData;
const samples = [];
const read = () => {
  try {
    const m = fs.readFileSync("/proc/" + pid + "/status", "utf8").match(/^VmRSS:\\s+(\\d+) kB/m);
    if (m) samples.push(Number(m[1]) * 1024);
  } catch {}
};
read();
const t = setInterval(read, intervalMs);
parentPort.on("message", () => { clearInterval(t); read(); parentPort.postMessage(samples); });
`;

/** Starts sampling; `stop()` resolves with { samples (bytes), first, max }. */
export function startRssSampler(pid, intervalMs = 100) {
  const w = new Worker(WORKER, { eval: true, workerData: { pid, intervalMs } });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        w.once("message", (samples) => {
          w.terminate();
          resolve({ samples, first: samples[0] ?? null, max: samples.length ? Math.max(...samples) : null, intervalMs });
        });
        w.once("error", reject);
        w.postMessage("stop");
      }),
  };
}
