// Brings up the airlock path as real processes, the way users run it:
//   airlock connect (client) → gateway (WebSocket) → agent (gRPC/TLS link) → target
// or, for the Postgres front door (startAirlockPostgres):
//   psql/pgbench (TLS, token as password) → gateway :front door → agent → PostgreSQL
import fs from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { freePort, start, waitFor, waitForLog } from "./procs.mjs";

const CLI = join(import.meta.dirname, "..", "..", "packages", "cli", "dist", "main.js");

export function cliBuilt() {
  return fs.existsSync(CLI);
}

async function api(base, token, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Starts gateway and agent (enrolled, online). `env` adds gateway settings,
 * `nodeArgs` flags for the gateway's node (e.g. --cpu-prof);
 * the Postgres front door is off unless `env` turns it on, so gateways started
 * for other measurements never compete for its default port (15432).
 */
export async function startGatewayAndAgent(dir, databaseUrl, env = {}, { nodeArgs = [] } = {}) {
  const gwDir = join(dir, "gateway");
  const agDir = join(dir, "agent");
  fs.mkdirSync(gwDir, { recursive: true });
  fs.mkdirSync(agDir, { recursive: true });
  const [apiPort, agentPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${apiPort}`;

  const gateway = start("gateway", process.execPath, [...nodeArgs, CLI, "gateway", "--data-dir", gwDir], {
    log: join(dir, "gateway.log"),
    env: {
      AIRLOCK_API_LISTEN: `127.0.0.1:${apiPort}`,
      AIRLOCK_AGENT_LISTEN: `127.0.0.1:${agentPort}`,
      AIRLOCK_POSTGRES_LISTEN: "off",
      AIRLOCK_LOG_LEVEL: "warn",
      ...(databaseUrl ? { AIRLOCK_DATABASE_URL: databaseUrl } : {}),
      ...env,
    },
  });
  // First start creates the store, CA and admin token; PGlite takes a few seconds.
  const tokenFile = join(gwDir, "admin-token");
  await waitFor("gateway API and admin token", async () => fs.existsSync(tokenFile) && (await fetch(`${base}/healthz`)).ok, {
    rec: gateway,
    timeoutMs: 60_000,
  });
  const admin = fs.readFileSync(tokenFile, "utf8").trim();

  const enr = await api(base, admin, "POST", "/api/v1/agents", { name: "bench-agent" });
  const agent = start(
    "agent",
    process.execPath,
    [CLI, "agent", "--gateway", `127.0.0.1:${agentPort}`, "--token", enr.enrollmentToken, "--data-dir", agDir, "--ca-file", join(gwDir, "tls", "ca.pem")],
    { log: join(dir, "agent.log"), env: { AIRLOCK_LOG_LEVEL: "warn" } },
  );
  await waitFor("agent online", async () => (await api(base, admin, "GET", "/api/v1/agents/bench-agent")).status === "online", {
    rec: agent,
  });
  return { gateway, agent, base, admin, api: (method, path, body) => api(base, admin, method, path, body) };
}

/**
 * Starts gateway and agent, registers `targetPort` as connection "bench" and
 * opens `airlock connect` on a local port. Returns the pieces and that port.
 */
export async function startAirlock(dir, targetPort, databaseUrl) {
  const { gateway, agent, base, admin } = await startGatewayAndAgent(dir, databaseUrl);
  await api(base, admin, "POST", "/api/v1/connections", { name: "bench", type: "tcp", host: "127.0.0.1", port: targetPort, agent: "bench-agent" });
  // The client uses an ordinary user token, as a person running `airlock connect` would.
  const user = await api(base, admin, "POST", "/api/v1/tokens", { subject: "bench", roles: ["user"], ttlSeconds: 4 * 3600 });

  const connect = start("airlock connect", process.execPath, [CLI, "--gateway", base, "--token", user.token, "connect", "bench", "--port", "0"], {
    log: join(dir, "connect.log"),
    env: { AIRLOCK_LOG_LEVEL: "warn" },
  });
  const m = await waitForLog(connect, /Listening on 127\.0\.0\.1:(\d+)/);
  return { gateway, agent, connect, port: Number(m[1]), base, admin };
}

/**
 * Starts gateway (Postgres front door on a free loopback port, policies from
 * `policyDir`) and agent, registers `target` ({host, port, database, user,
 * password}) as postgres connection `name`, and mints an access token for
 * user "bench" in `groups`. Clients then connect to 127.0.0.1:`port`, database
 * `name`, any user name, the token as password, TLS required. `gatewayNodeArgs`
 * are flags for the gateway's node (e.g. --cpu-prof).
 */
export async function startAirlockPostgres(dir, { databaseUrl, policyDir, target, name = "bench", groups = ["developers"], labels = { env: "bench" }, gatewayNodeArgs = [] }) {
  const port = await freePort();
  const inst = await startGatewayAndAgent(dir, databaseUrl, { AIRLOCK_POSTGRES_LISTEN: `127.0.0.1:${port}`, AIRLOCK_POLICY_DIR: policyDir }, { nodeArgs: gatewayNodeArgs });
  await waitFor("postgres front door accepting connections", () => canConnect(port), { rec: inst.gateway, timeoutMs: 15_000 }).catch((err) => {
    throw new Error(`${err.message}: is the Postgres front door wired into this gateway build (AIRLOCK_POSTGRES_LISTEN)? (--systems direct,pgbouncer measures without it) log ${inst.gateway.log}`);
  });
  await inst.api("POST", "/api/v1/connections", {
    name,
    type: "postgres",
    host: target.host,
    port: target.port,
    database: target.database,
    agent: "bench-agent",
    labels,
    secrets: { username: target.user, ...(target.password ? { password: target.password } : {}) },
  });
  const user = await inst.api("POST", "/api/v1/tokens", { subject: "bench", roles: ["user"], groups, ttlSeconds: 4 * 3600 });
  return { ...inst, port, token: user.token, connection: name };
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}
