// Helpers for the agent-lifecycle and bad-input whole-system tests: TCP targets
// written in the test (echo, endless source), raw TCP clients through
// `airlock connect`, a gateway on fixed ports (so it can be restarted in place),
// CLI runs to completion, and process RSS.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { eventually, startCli, type GatewayProc } from "./processes.js";

// ---- targets ---------------------------------------------------------------

export interface TestServer {
  port: number;
  /** Sockets currently accepted. */
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

async function listen(server: net.Server, sockets: Set<net.Socket>): Promise<TestServer> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Echoes every byte back; half-close is honoured (FIN after the echo). */
export function echoServer(): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.pipe(s);
  });
  return listen(server, sockets);
}

/** The byte at offset i of what sourceServer sends: a pattern the client can verify. */
export const SOURCE_BYTE = (i: number) => i % 251;
const SOURCE_BLOCK = Buffer.from(Array.from({ length: 251 * 256 }, (_, i) => SOURCE_BYTE(i)));

/** Streams a verifiable pattern forever, as fast as the reader takes it (respecting backpressure). */
export function sourceServer(): Promise<TestServer & { bytesSent: () => number }> {
  const sockets = new Set<net.Socket>();
  let sent = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    const pump = () => {
      while (!s.destroyed && s.writable) {
        sent += SOURCE_BLOCK.length;
        if (!s.write(SOURCE_BLOCK)) return void s.once("drain", pump);
      }
    };
    pump();
  });
  return listen(server, sockets).then((t) => Object.assign(t, { bytesSent: () => sent }));
}

// ---- clients ---------------------------------------------------------------

export interface SourceClient {
  socket: net.Socket;
  received: () => number;
  /** True while every byte received matched the source pattern. */
  intact: () => boolean;
  /** Resolves when the socket closes, with the time and whether it errored. */
  closed: Promise<{ at: number; error: Error | null }>;
}

/** Reads an endless source through a local port (e.g. `airlock connect`), counting and checking bytes. */
export function readSource(port: number): SourceClient {
  const socket = net.connect(port, "127.0.0.1");
  let n = 0;
  let ok = true;
  let error: Error | null = null;
  socket.on("data", (c: Buffer) => {
    if (ok) for (let i = 0; i < c.length; i += 997) if (c[i] !== SOURCE_BYTE(n + i)) ok = false;
    n += c.length;
  });
  socket.on("error", (e) => (error = e));
  const closed = new Promise<{ at: number; error: Error | null }>((r) => socket.on("close", () => r({ at: Date.now(), error })));
  return { socket, received: () => n, intact: () => ok, closed };
}

export interface EchoClient {
  socket: net.Socket;
  /** Sends n random bytes and resolves true when exactly they came back. */
  roundTrip(n: number, timeoutMs?: number): Promise<boolean>;
  closed: Promise<{ at: number; error: Error | null }>;
  end(): void;
}

/** A long-lived echo session through a local port: many round trips on one connection. */
export async function openEcho(port: number): Promise<EchoClient> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((res, rej) => {
    socket.once("connect", res);
    socket.once("error", rej);
  });
  let error: Error | null = null;
  socket.on("error", (e) => (error = e));
  const closed = new Promise<{ at: number; error: Error | null }>((r) => socket.on("close", () => r({ at: Date.now(), error })));
  let want: { buf: Buffer; got: Buffer[]; len: number; done: (ok: boolean) => void } | null = null;
  socket.on("data", (c: Buffer) => {
    if (!want) return;
    want.got.push(c);
    want.len += c.length;
    if (want.len >= want.buf.length) {
      const w = want;
      want = null;
      w.done(Buffer.concat(w.got).equals(w.buf));
    }
  });
  void closed.then(() => want?.done(false));
  return {
    socket,
    closed,
    end: () => socket.end(),
    roundTrip(n, timeoutMs = 20_000) {
      if (socket.destroyed) return Promise.resolve(false);
      const buf = randomBytes(n);
      return new Promise<boolean>((resolve) => {
        const t = setTimeout(() => {
          want = null;
          resolve(false);
        }, timeoutMs);
        want = { buf, got: [], len: 0, done: (ok) => (clearTimeout(t), resolve(ok)) };
        socket.write(buf);
      });
    },
  };
}

/** One connection, one payload, half-close, and the echo compared: the simplest "does it work". */
export async function echoOnce(port: number, n = 256 * 1024): Promise<boolean> {
  const c = await openEcho(port);
  const ok = await c.roundTrip(n);
  c.end();
  await c.closed;
  return ok;
}

/** A psql that streams a big result (FETCH_COUNT keeps psql's memory flat), counting stdout bytes. */
export function streamingPsql(port: number, sql: string) {
  const child = spawn("psql", [`postgresql://postgres@127.0.0.1:${port}/postgres`, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=2000", "-c", sql], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PGCONNECT_TIMEOUT: "10", PGSSLMODE: "disable" },
  });
  let bytes = 0;
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (bytes += c.length));
  child.stderr.on("data", (c: Buffer) => (stderr += c));
  const exited = new Promise<{ code: number | null; at: number }>((r) => child.on("exit", (code) => r({ code, at: Date.now() })));
  return { child, bytes: () => bytes, stderr: () => stderr, exited };
}

// ---- gateway ----------------------------------------------------------------

/** Starts `airlock gateway` on the given ports and data dir (so it can be restarted in place). */
export async function startGatewayAt(opts: { dataDir: string; apiPort: number; agentPort: number; env?: Record<string, string | undefined> }): Promise<GatewayProc> {
  const p = startCli(["gateway", "--data-dir", opts.dataDir], {
    AIRLOCK_API_LISTEN: `127.0.0.1:${opts.apiPort}`,
    AIRLOCK_AGENT_LISTEN: `127.0.0.1:${opts.agentPort}`,
    AIRLOCK_POSTGRES_LISTEN: "127.0.0.1:0",
    ...opts.env,
  });
  const ready = await p.waitFor(/.*gateway ready.*/, 60_000);
  const pgPort = Number(/"postgres":(\d+)/.exec(ready)?.[1] ?? 0) || null;
  const apiUrl = `http://127.0.0.1:${opts.apiPort}`;
  const adminToken = (await readFile(join(opts.dataDir, "admin-token"), "utf8")).trim();
  const api = async <T>(method: string, path: string, body?: unknown, token = adminToken) => {
    const r = await http<T>(apiUrl, method, path, token, body);
    return { status: r.status, body: r.body };
  };
  return Object.assign(p, { apiUrl, pgPort, agentAddress: `127.0.0.1:${opts.agentPort}`, adminToken, dataDir: opts.dataDir, caFile: join(opts.dataDir, "tls", "ca.pem"), api });
}

/** A REST call that also returns the content type (problem JSON checks). token undefined → no Authorization header. */
export async function http<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; contentType: string; body: T; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: parsed as T, text };
}

export type Session = {
  id: string;
  subject: string;
  connectionName: string;
  agent: string | null;
  startedAt: string;
  endedAt: string | null;
  bytesUp: number;
  bytesDown: number;
  outcome: string;
  errorCode: string | null;
  error: string | null;
};

export type AgentView = { name: string; group: string | null; status: string; lastSeenAt: string | null; streams: number; version: string | null };

export async function listSessions(gw: GatewayProc, query = "", token = gw.adminToken): Promise<Session[]> {
  const r = await gw.api<{ sessions: Session[] }>("GET", `/api/v1/sessions?limit=500${query ? `&${query}` : ""}`, undefined, token);
  if (r.status !== 200) throw new Error(`sessions: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.sessions;
}

export async function getAgent(gw: GatewayProc, name: string): Promise<AgentView> {
  const r = await gw.api<{ agents: AgentView[] }>("GET", "/api/v1/agents");
  const a = r.body.agents.find((x) => x.name === name);
  if (!a) throw new Error(`no agent ${name} in ${JSON.stringify(r.body)}`);
  return a;
}

export function waitAgentStatus(gw: GatewayProc, name: string, status: string, timeoutMs = 15_000): Promise<AgentView> {
  return eventually(async () => {
    const a = await getAgent(gw, name);
    return a.status === status ? a : undefined;
  }, timeoutMs, `agent ${name} ${status}`);
}

/** Waits until the session whose id matches (or the newest matching filter) has ended. */
export function waitSessionEnded(gw: GatewayProc, pick: (s: Session) => boolean, timeoutMs = 15_000): Promise<Session> {
  return eventually(async () => (await listSessions(gw)).find((s) => pick(s) && s.endedAt), timeoutMs, "an ended session");
}

// ---- processes ---------------------------------------------------------------

/** Runs the CLI to completion; resolves with its exit code and merged output. */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  const p = startCli(args, env);
  const t = setTimeout(() => void p.kill("SIGKILL"), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(t);
  await p.kill(); // forget it in the harness' registry
  return { code, output: p.output() };
}

/** Resident set size of a process, in KiB (Linux /proc). */
export async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Every file under dir whose bytes contain needle (binary-safe). */
export async function filesContaining(dir: string, needle: string): Promise<{ hits: string[]; scanned: number; bytes: number }> {
  const want = Buffer.from(needle);
  const hits: string[] = [];
  let scanned = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const buf = await readFile(p);
        scanned++;
        bytes += buf.length;
        if (buf.includes(want)) hits.push(p);
      }
    }
  };
  await walk(dir);
  return { hits, scanned, bytes };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fails (with the tail of its output, e.g. a crash trace) unless the process is still running. */
export async function assertAlive(p: { child: import("node:child_process").ChildProcess; output: () => string }, what: string): Promise<void> {
  await sleep(200); // a crash triggered just now needs a tick to land
  if (p.child.exitCode !== null || p.child.signalCode !== null) {
    throw new Error(`${what} died (exit ${p.child.exitCode ?? p.child.signalCode}); last output:\n${p.output().slice(-2500)}`);
  }
}
