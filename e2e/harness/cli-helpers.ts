// Helpers for the CLI/API/quickstart/store e2e files: run the built CLI to
// completion, talk to the REST API with headers, run SQL on the machine's
// PostgreSQL (127.0.0.1:5432, trust auth) through the real psql.
import { spawn } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { CLI, psql, runToEnd, startCli, type Proc, type RunResult } from "./processes.js";

export const PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";

export type CliResult = RunResult;

/**
 * Runs `node CLI ...args` to completion. The caller's AIRLOCK_URL/TOKEN/CONFIG_DIR
 * never leak in: each test states exactly what the CLI may see.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<CliResult> {
  const childEnv = { ...process.env, AIRLOCK_URL: undefined, AIRLOCK_TOKEN: undefined, AIRLOCK_CONFIG_DIR: undefined, AIRLOCK_LOG_LEVEL: "warn", ...env };
  return runToEnd(process.execPath, [CLI, ...args], childEnv, timeoutMs);
}

/** `airlock connect NAME --port 0` with explicit flags/env; resolves once listening. */
export async function connectVia(args: string[], env: Record<string, string | undefined> = {}): Promise<Proc & { port: number }> {
  const p = startCli([...args, "--port", "0"], { AIRLOCK_CONFIG_DIR: "/nonexistent-airlock-config", ...env });
  const line = await p.waitFor(/Listening on 127\.0\.0\.1:\d+/);
  return Object.assign(p, { port: Number(line.split(":").pop()) });
}

export interface RawResponse<T = unknown> {
  status: number;
  contentType: string;
  text: string;
  body: T;
}

/** A REST call returning status, content type and the parsed body (when JSON). */
export async function http<T = unknown>(baseUrl: string, method: string, path: string, opts: { token?: string; body?: unknown; rawBody?: string } = {}): Promise<RawResponse<T>> {
  const hasBody = opts.body !== undefined || opts.rawBody !== undefined;
  const res = await fetch(baseUrl + path, {
    method,
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(hasBody ? { "content-type": "application/json" } : {}) },
    body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined),
  });
  const text = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  let body: unknown = undefined;
  if (/json/.test(contentType) && text) body = JSON.parse(text);
  return { status: res.status, contentType, text, body: body as T };
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
}

/** SQL on the machine's PostgreSQL; rows as arrays of strings (psql -At, unit separator). */
export async function sql(url: string, query: string): Promise<string[][]> {
  const r = await psql(url, ["-At", "-F", "\x1f", "-c", query]);
  if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\x1f"));
}

export function dbUrl(db: string): string {
  return `postgresql://postgres@127.0.0.1:5432/${db}`;
}

/** Luhn check (ISO/IEC 7812): double every second digit from the right. */
export function luhnValid(number: string): boolean {
  if (!/^\d{12,19}$/.test(number)) return false;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = number.charCodeAt(number.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** `sha256:<hex>` of the DER of the first certificate in a PEM. */
export function pemPin(pem: string): string {
  return `sha256:${createHash("sha256").update(new X509Certificate(pem).raw).digest("hex")}`;
}

/** Splits a printed shell command line (no quoting in it) into argv. */
export function argv(commandLine: string): string[] {
  return commandLine.trim().split(/\s+/);
}

/** How many times re matches the process output so far. */
export function count(p: Proc, re: RegExp): number {
  return (p.output().match(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g")) ?? []).length;
}

export interface PsqlSession {
  /** Runs statements in this session; resolves with their output once done. */
  run(statements: string): Promise<string>;
  close(): Promise<void>;
}

/** One long-lived psql session (e.g. to hold a lock while other processes start). */
export function psqlSession(url: string): PsqlSession {
  const child = spawn("psql", [url, "-X", "-At", "-v", "ON_ERROR_STOP=1"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let n = 0;
  child.stdout.on("data", (c: Buffer) => (out += c));
  child.stderr.on("data", (c: Buffer) => (err += c));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    run(statements) {
      const marker = `__airlock_e2e_done_${++n}__`;
      const from = out.length;
      child.stdin.write(`${statements}\n\\echo ${marker}\n`);
      return new Promise((resolve, reject) => {
        const t = setInterval(() => {
          const i = out.indexOf(marker, from);
          if (i >= 0) {
            clearInterval(t);
            resolve(out.slice(from, i));
          } else if (child.exitCode !== null) {
            clearInterval(t);
            reject(new Error(`psql session ended: ${err}`));
          }
        }, 20);
      });
    },
    async close() {
      child.stdin.end("\\q\n");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
