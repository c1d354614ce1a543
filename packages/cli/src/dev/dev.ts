import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, loadState, saveState } from "@airlock/agent";
import { loadConfig, readBundleDir, startGateway, type Gateway } from "@airlock/gateway";
import { createLogger, onShutdown } from "@airlock/shared";
import { startDemoTarget } from "./demo-target.js";

export interface DevOptions {
  dataDir: string;
  apiPort: number;
  agentPort: number;
  demoPort: number;
  /** Postgres front door port (default 15432). */
  pgPort?: number;
  /** Sign in through a real OpenID provider instead of (as well as) the built-in dev identities. */
  oidc?: { issuer: string; clientId: string; clientSecret?: string; groupsClaim?: string; audience?: string; adminGroups?: string[] };
}

/** The demo policy bundle shipped with the CLI (packages/cli/policies/demo). */
const DEMO_POLICIES = fileURLToPath(new URL("../../policies/demo/", import.meta.url));

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
      loadConfig(
        {
          dataDir: join(dataDir, "gateway"),
          api: { host: "127.0.0.1", port: o.apiPort },
          agents: { host: "127.0.0.1", port: o.agentPort },
          postgres: { host: "127.0.0.1", port: o.pgPort ?? 15432 },
          ...(o.oidc
            ? {
                identity: {
                  oidc: [
                    {
                      name: "oidc",
                      issuer: o.oidc.issuer,
                      clientId: o.oidc.clientId,
                      ...(o.oidc.clientSecret ? { clientSecret: o.oidc.clientSecret } : {}),
                      ...(o.oidc.groupsClaim ? { groupsClaim: o.oidc.groupsClaim } : {}),
                      ...(o.oidc.audience ? { audience: o.oidc.audience } : {}),
                    },
                  ],
                  roleMappings: (o.oidc.adminGroups ?? []).map((group) => ({ group, roles: ["admin" as const] })),
                },
              }
            : {}),
        } as Parameters<typeof loadConfig>[0],
        {},
      ),
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

    // A postgres connection: the gateway logs in with these (demo) credentials, the client never sees them.
    const demoConn = {
      name: "demo-pg", type: "postgres" as const, host: demo.host, port: demo.port, agent: AGENT, labels: { env: "dev" },
      database: "postgres", secrets: { username: "postgres", password: "postgres" },
    };
    const existing = await gw.connections.get("demo-pg").catch(() => null);
    if (existing) await gw.connections.update("demo-pg", demoConn);
    else await gw.connections.create(demoConn);

    // First start: the demo policies (DDL and unfiltered writes denied, PII masked). Later starts keep
    // whatever was applied since, so `airlock policy apply` survives a restart.
    if (gw.policies.current().version === null) await gw.policies.apply(await readBundleDir(DEMO_POLICIES), "airlock dev");

    const admin = await gw.tokens.mint({ subject: "dev-admin", roles: ["admin"], groups: ["dba"], ttlSeconds: gw.config.tokens.maxTtlSeconds, method: "dev", description: "airlock dev" });
    const dev = await gw.tokens.mint({ subject: "dev", roles: ["user"], groups: ["developers"], ttlSeconds: gw.config.tokens.maxTtlSeconds, method: "dev", description: "airlock dev: demo user" });
    // A second person for the review loop: DELETEs with a WHERE on demo-pg wait for group "reviewers".
    const reviewer = await gw.tokens.mint({ subject: "reviewer", roles: ["user", "reviewer"], groups: ["reviewers"], ttlSeconds: gw.config.tokens.maxTtlSeconds, method: "dev", description: "airlock dev: demo reviewer" });
    const postgresUrl = gw.postgresPort ? `postgresql://dev:${dev.token}@127.0.0.1:${gw.postgresPort}/demo-pg?sslmode=require` : null;
    const info = {
      apiUrl: gw.apiUrl,
      adminToken: admin.token,
      devToken: dev.token,
      reviewerToken: reviewer.token,
      postgresUrl,
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
        `Postgres front door (guardrails + masking + recording):`,
        `      psql "$(node -p "require('${join(dataDir, "dev.json")}').postgresUrl")" -c "select * from customers limit 5"`,
        `      … then try: delete from customers;   drop table customers;   (both denied)`,
        `      delete from customers where id = 7;   (held until a reviewer approves: in another shell`,
        `      AIRLOCK_TOKEN=$(node -p "require('${join(dataDir, "dev.json")}').reviewerToken") airlock reviews list / approve ID)`,
        ...(o.oidc ? [`Sign in through ${o.oidc.issuer}:  airlock login ${gw.apiUrl}   (or --device)`] : [`Built-in dev identities: dev-admin (admin, group dba) and dev (user, group developers); --issuer URL --client-id ID signs people in through an OpenID provider.`]),
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
