// Client side of each measurement, speaking bench/target.mjs's protocol. The
// same functions run against every path; only the port differs.
import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

/**
 * Connects and proves the path works end to end (PING → PONG). For airlock that
 * includes the WebSocket, the session record and the agent's dial, so timed
 * transfers afterwards measure data flow only. Resolves { sock, setupMs }.
 */
export function openReady(port) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const sock = net.connect({ port, host: "127.0.0.1", noDelay: true, allowHalfOpen: true });
    let got = "";
    const fail = (err) => (sock.destroy(), reject(err));
    const timer = setTimeout(() => fail(new Error(`no PONG within 30 s on port ${port}`)), 30_000);
    const onData = (d) => {
      got += d.toString("latin1");
      if (got.includes("PONG\n")) {
        clearTimeout(timer);
        sock.off("data", onData).off("error", fail).off("end", onEnd);
        sock.pause();
        resolve({ sock, setupMs: now() - t0 });
      }
    };
    const onEnd = () => fail(new Error(`connection on port ${port} closed before PONG`));
    sock.on("data", onData).on("error", fail).on("end", onEnd);
    sock.write("PING\n");
  });
}

/** Reads until FIN, counting bytes; resolves the count. */
function drainToEnd(sock) {
  return new Promise((resolve, reject) => {
    let n = 0;
    sock.on("data", (d) => (n += d.length));
    sock.once("end", () => resolve(n));
    sock.once("error", reject);
    sock.resume();
  });
}

/**
 * Target → client: `bytes` as fast as the path carries them. `meter.start/stop`
 * bracket exactly the timed part (not the stream setup), for CPU accounting.
 */
export async function download(port, bytes, meter = {}) {
  const { sock } = await openReady(port);
  meter.start?.();
  const t0 = now();
  sock.write(`SOURCE ${bytes}\n`);
  const got = await drainToEnd(sock);
  const ms = now() - t0;
  meter.stop?.();
  sock.destroy();
  if (got !== bytes) throw new Error(`download got ${got} of ${bytes} bytes`);
  return { bytes, ms };
}

/** Client → target: `bytes`, then FIN; done when the target confirms the count. */
export async function upload(port, bytes, chunk, meter = {}) {
  const { sock } = await openReady(port);
  meter.start?.();
  const t0 = now();
  const reply = new Promise((resolve, reject) => {
    let s = "";
    sock.on("data", (d) => (s += d.toString("latin1")));
    sock.once("end", () => resolve(s));
    sock.once("error", reject);
    sock.resume();
  });
  const closed = new Promise((_, reject) => sock.once("close", () => reject(new Error("upload: connection closed"))));
  closed.catch(() => {});
  sock.write("SINK\n");
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    left -= n;
    if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await Promise.race([once(sock, "drain"), closed]);
  }
  sock.end();
  const s = await reply;
  const ms = now() - t0;
  meter.stop?.();
  sock.destroy();
  if (s.trim() !== `OK ${bytes}`) throw new Error(`upload: target answered ${JSON.stringify(s)} for ${bytes} bytes`);
  return { bytes, ms };
}

/** Sequential round trips of `size` bytes over one echo stream; returns sorted RTTs (ms). */
export async function roundTrips(port, { warmup, count, size }) {
  const { sock } = await openReady(port);
  sock.write("ECHO\n");
  const msg = Buffer.alloc(size, 0x61);
  let pending = 0;
  let wake = null;
  sock.on("data", (d) => {
    pending -= d.length;
    if (pending <= 0 && wake) (wake(), (wake = null));
  });
  sock.resume();
  const once = () =>
    new Promise((resolve) => {
      pending = size;
      wake = resolve;
      sock.write(msg);
    });
  for (let i = 0; i < warmup; i++) await once();
  const rtts = new Array(count);
  for (let i = 0; i < count; i++) {
    const t0 = now();
    await once();
    rtts[i] = now() - t0;
  }
  sock.destroy();
  return rtts.sort((a, b) => a - b);
}

/** Opens `streams` ready streams at once (part (c) step 1; setup is timed per stream). */
export async function openMany(port, streams) {
  const ready = await Promise.all(Array.from({ length: streams }, () => openReady(port)));
  return { socks: ready.map((r) => r.sock), setupMs: ready.map((r) => r.setupMs).sort((a, b) => a - b) };
}

/** Part (c) step 2: a download of `each` bytes on every open stream at once; aggregate rate. */
export async function downloadAll(socks, each) {
  const t0 = now();
  const counts = await Promise.all(
    socks.map((sock) => {
      sock.write(`SOURCE ${each}\n`);
      return drainToEnd(sock).finally(() => sock.destroy());
    }),
  );
  const ms = now() - t0;
  const bytes = counts.reduce((a, b) => a + b, 0);
  if (bytes !== socks.length * each) throw new Error(`concurrent: got ${bytes} of ${socks.length * each} bytes`);
  return { bytes, ms };
}

/**
 * Opens `n` live echo streams (one byte sent and read back on each, so every
 * stream exists end to end), `parallel` at a time. Returns the sockets.
 */
export async function openIdle(port, n, parallel = 32) {
  const socks = [];
  let next = 0;
  const one = async () => {
    while (next < n) {
      next++;
      const s = await new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: "127.0.0.1", noDelay: true });
        const timer = setTimeout(() => (sock.destroy(), reject(new Error("idle stream: no echo within 30 s"))), 30_000);
        sock.once("error", (e) => (clearTimeout(timer), reject(e)));
        sock.once("data", (d) => {
          clearTimeout(timer);
          if (d.toString("latin1") !== "x") return reject(new Error(`idle stream: unexpected echo ${JSON.stringify(d.toString())}`));
          resolve(sock);
        });
        sock.write("ECHO\nx");
      });
      s.on("error", () => {});
      socks.push(s);
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, one));
  } catch (err) {
    for (const s of socks) s.destroy();
    throw err;
  }
  return socks;
}

/** Closes sockets and gives the far ends a moment to notice. */
export async function closeAll(socks) {
  for (const s of socks) s.destroy();
  await sleep(1000);
}

/**
 * A reader that takes only `rate` bytes/s from a sender pushing as fast as it
 * can, for `seconds`. Token bucket over pause/resume: once the bytes read run
 * ahead of the allowance, the socket is paused until time catches up, so the
 * backlog sits in the path (kernel buffers, airlock's buffers) — which is what
 * we watch. `onSecond` is called once a second (for RSS sampling).
 */
export async function slowRead(port, { rate, seconds, onSecond }) {
  const { sock } = await openReady(port);
  let got = 0;
  let ended = null;
  const t0 = now();
  sock.on("data", (d) => {
    got += d.length;
    const ahead = got - ((now() - t0) / 1000) * rate; // bytes read beyond the allowance
    if (ahead > 0) {
      sock.pause();
      setTimeout(() => sock.resume(), (ahead / rate) * 1000);
    }
  });
  sock.on("end", () => (ended ??= "the path ended the stream (FIN)"));
  sock.on("error", (e) => (ended ??= `error: ${e.message}`));
  sock.write("SOURCE inf\n");
  sock.resume();
  for (let s = 1; s <= seconds; s++) {
    await sleep(t0 + s * 1000 - now());
    onSecond?.(s);
  }
  const ms = now() - t0;
  sock.destroy();
  return { bytes: got, ms, cutShort: ended };
}
