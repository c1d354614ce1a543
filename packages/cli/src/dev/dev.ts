import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Agent, loadState, saveState } from "@airlock/agent";
import { loadConfig, startGateway, type Gateway } from "@airlock/gateway";
import { createLogger, onShutdown } from "@airlock/shared";
import { startDemoTarget } from "./demo-target.js";

export interface DevOptions {
  dataDir: string;
  apiPort: number;
  agentPort: number;
  demoPort: number;
}

const AGENT = "dev-agent";

/**
 * `airlock dev`: gateway + embedded store + one agent + a demo Postgres with
 * fake customers, in one process, registered as connection `demo-pg`.
 * Prints a line containing "ready" and writes dev.json when usable.
 */
export async function runDev(o: DevOptions): Promise<void> {
  const dataDir = resolve(o.dataDir);
  // Listen for Ctrl-C from the start: a signal during startup stops us as soon
  // as the parts started so far can be shut down, instead of killing mid-write.
  const shutdown = new Promise<void>((res) => onShutdown(() => res()));
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger({ name: "airlock-dev", level: process.env.AIRLOCK_LOG_LEVEL ?? "warn" });
  const demo = await startDemoTarget(join(dataDir, "demo-pg"), o.demoPort);
  let gw: Gateway | null = null;
  let agent: Agent | null = null;
  const stop = async () => {
    await agent?.stop();
    await gw?.stop();
    await demo.stop();
  };
  try {
    gw = await startGateway(
      loadConfig({ dataDir: join(dataDir, "gateway"), api: { host: "127.0.0.1", port: o.apiPort }, agents: { host: "127.0.0.1", port: o.agentPort } }, {}),
      logger,
    );
    const agentDir = join(dataDir, "agent");
    const known = await gw.agents.get(AGENT).catch(() => null);
    const state = await loadState(agentDir);
    let token: string | undefined;
    if (!known || known.status === "revoked" || !state || state.agentId !== known.id) {
      if (known) await gw.agents.delete(AGENT);
      token = (await gw.agents.create(AGENT)).enrollmentToken;
    } else if (state.gateway !== gw.agentAddress) {
      // Same gateway on another port (e.g. --agent-port 0): the key is still ours.
      await saveState(agentDir, { ...state, gateway: gw.agentAddress });
    }
    agent = new Agent({ gateway: gw.agentAddress, token, dataDir: agentDir, caPem: gw.caPem ?? undefined, logger });
    await agent.start();
    await agent.waitReady();

    const demoConn = { name: "demo-pg", type: "tcp" as const, host: demo.host, port: demo.port, agent: AGENT, labels: { env: "dev" } };
    const existing = await gw.connections.get("demo-pg").catch(() => null);
    if (existing) await gw.connections.update("demo-pg", demoConn);
    else await gw.connections.create(demoConn);

    const admin = await gw.tokens.mint({ subject: "dev-admin", roles: ["admin"], ttlSeconds: gw.config.tokens.maxTtlSeconds, description: "airlock dev" });
    const info = {
      apiUrl: gw.apiUrl,
      adminToken: admin.token,
      agentAddress: gw.agentAddress,
      connections: ["demo-pg"],
      demoTarget: `${demo.host}:${demo.port}`,
      dataDir,
    };
    await writeFile(join(dataDir, "dev.json"), JSON.stringify(info, null, 2) + "\n", { mode: 0o600 });
    process.stdout.write(
      [
        `Airlock dev is up: API ${gw.apiUrl}, agent ${AGENT} online, demo target demo-pg (fake customers).`,
        `Admin token and URLs: ${join(dataDir, "dev.json")}`,
        `Try:  export AIRLOCK_URL=${gw.apiUrl} AIRLOCK_TOKEN=$(node -p "require('${join(dataDir, "dev.json")}').adminToken")`,
        `      pnpm airlock connect demo-pg --port 5433 &   psql "postgresql://postgres:postgres@127.0.0.1:5433/postgres" -c "select * from customers limit 5"`,
        `ready`,
        "",
      ].join("\n"),
    );
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  await shutdown;
  await stop().catch(() => {});
  process.stdout.write("stopped\n");
}
