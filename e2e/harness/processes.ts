// Whole-system test harness: real gateway and agent processes started from the
// built CLI (packages/cli/dist), talking over real sockets.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const CLI = resolve(import.meta.dirname, "../../packages/cli/dist/main.js");

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the process prints a line matching re. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<Proc>();

/** Starts `node CLI ...args`; stdout and stderr are captured together. */
export function startCli(args: string[], env: Record<string, string | undefined> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, AIRLOCK_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  const onChunk = (c: Buffer) => {
    out += c.toString();
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.on("data", onChunk);
  child.stderr!.on("data", onChunk);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
  const proc: Proc = {
    child,
    output: () => out,
    exited,
    waitFor(re, timeoutMs = 20_000) {
      const m = out.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in output:\n${out.slice(-3000)}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
        void exited.then(({ code, signal }) => {
          if (waiters.some((w) => w.re === re)) {
            clearTimeout(t);
            reject(new Error(`process exited (${code ?? signal}) before ${re}; output:\n${out.slice(-3000)}`));
          }
        });
      });
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      running.delete(proc);
    },
  };
  running.add(proc);
  return proc;
}

/** Kills every process a test file started (call from afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill("SIGKILL")));
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function tempDir(prefix = "airlock-e2e-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface GatewayProc extends Proc {
  apiUrl: string;
  agentAddress: string;
  adminToken: string;
  dataDir: string;
  caFile: string;
  /** The Postgres front door's port (null when disabled). */
  pgPort: number | null;
  api<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
}

/** Starts `airlock gateway` on free ports; resolves when /healthz answers. */
export async function startGateway(opts: { dataDir?: string; env?: Record<string, string | undefined>; apiPort?: number } = {}): Promise<GatewayProc> {
  const dataDir = opts.dataDir ?? (await tempDir("airlock-gw-"));
  // A fixed port when an identity provider must know the gateway's redirect URI before it starts.
  const apiPort = opts.apiPort ?? (await freePort());
  const agentPort = await freePort();
  const p = startCli(["gateway", "--data-dir", dataDir], {
    AIRLOCK_API_LISTEN: `127.0.0.1:${apiPort}`,
    AIRLOCK_AGENT_LISTEN: `127.0.0.1:${agentPort}`,
    // Ephemeral: test files run in parallel; the port is read back from the ready line.
    AIRLOCK_POSTGRES_LISTEN: "127.0.0.1:0",
    ...opts.env,
  });
  const ready = await p.waitFor(/.*gateway ready.*/, 60_000);
  const pgPort = Number(/"postgres":(\d+)/.exec(ready)?.[1] ?? 0) || null;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const adminToken = (await readFile(join(dataDir, "admin-token"), "utf8")).trim();
  const api = async <T>(method: string, path: string, body?: unknown, token = adminToken) => {
    const res = await fetch(apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  return Object.assign(p, { apiUrl, pgPort, agentAddress: `127.0.0.1:${agentPort}`, adminToken, dataDir, caFile: join(dataDir, "tls", "ca.pem"), api });
}

/** Creates an agent through the API and starts `airlock agent` with its enrollment token. */
export async function startAgent(gw: GatewayProc, name: string, opts: { group?: string; dataDir?: string; token?: string } = {}): Promise<Proc & { dataDir: string; token: string }> {
  let token = opts.token;
  if (!token) {
    const r = await gw.api<{ enrollmentToken: string }>("POST", "/api/v1/agents", { name, group: opts.group });
    if (r.status !== 201) throw new Error(`agent create failed: ${JSON.stringify(r.body)}`);
    token = r.body.enrollmentToken;
  }
  const dataDir = opts.dataDir ?? (await tempDir("airlock-agent-"));
  const p = startCli(["agent", "--gateway", gw.agentAddress, "--token", token, "--data-dir", dataDir, "--ca-file", gw.caFile]);
  return Object.assign(p, { dataDir, token });
}

/** Restarts an agent from its saved key (no token). */
export function restartAgent(gw: GatewayProc, dataDir: string): Proc {
  return startCli(["agent", "--gateway", gw.agentAddress, "--data-dir", dataDir, "--ca-file", gw.caFile]);
}

/** Polls until fn returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export async function cleanup(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Starts `airlock connect NAME` and resolves with its local port once listening. */
export async function startConnect(gw: GatewayProc, connection: string, token = gw.adminToken): Promise<Proc & { port: number }> {
  const p = startCli(["--gateway", gw.apiUrl, "--token", token, "connect", connection, "--port", "0"]);
  const line = await p.waitFor(/Listening on 127\.0\.0\.1:\d+/);
  return Object.assign(p, { port: Number(line.split(":").pop()) });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (killed after timeoutMs); resolves with its exit code and output. */
export function runToEnd(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs psql to completion; resolves with its exit code and output. */
export function psql(url: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return runToEnd("psql", [url, "-X", "-v", "ON_ERROR_STOP=1", ...args], { ...process.env, PGCONNECT_TIMEOUT: "10" }, timeoutMs);
}
