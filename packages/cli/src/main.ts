#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { AIRLOCK_VERSION } from "@airlock/shared";
import { ApiError } from "./client.js";
import { parseDuration } from "./output.js";
import { registerAdmin } from "./commands/admin.js";
import { registerUser } from "./commands/user.js";
import { registerLogin } from "./commands/login.js";
import { registerIdentity } from "./commands/identity.js";
import { registerReviews } from "./commands/reviews.js";
import { registerExec } from "./commands/exec.js";
import { registerAudit } from "./commands/audit.js";

const program = new Command("airlock")
  .description("Airlock: an access gateway between people, CI jobs and AI agents and your infrastructure")
  .version(AIRLOCK_VERSION)
  .option("--gateway <url>", "gateway API URL (env AIRLOCK_URL, else the login profile)")
  .option("--token <token>", "access token (env AIRLOCK_TOKEN, else the login profile)")
  .option("--json", "print JSON")
  .showHelpAfterError();

const gateway = program
  .command("gateway")
  .description("run the gateway (configured by AIRLOCK_* environment variables)")
  .option("--data-dir <dir>")
  // Loaded on demand: client commands must not pay for the gateway's store and WASM.
  .action(async (o: { dataDir?: string }) => (await import("@airlock/gateway")).runGatewayCli(o.dataDir ? { dataDir: o.dataDir } : {}));
gateway
  .command("admin-token")
  .description("mint an admin token directly in the gateway's store (recovery; same config as the gateway)")
  .option("--data-dir <dir>")
  .option("--user <subject>", "who the token is for", "admin")
  .option("--ttl <duration>", "lifetime", "1h")
  .action(async (o: { dataDir?: string; user: string; ttl: string }, cmd: Command) => {
    const dataDir = o.dataDir ?? cmd.parent?.opts<{ dataDir?: string }>().dataDir;
    const { mintAdminTokenCli } = await import("@airlock/gateway");
    process.stdout.write(`${await mintAdminTokenCli({ ...(dataDir ? { dataDir } : {}), subject: o.user, ttlSeconds: parseDuration(o.ttl) })}\n`);
  });

program
  .command("agent")
  .description("run an agent (see `airlock agent --help`)")
  .helpOption(false)
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async () => (await import("@airlock/agent")).runAgentCli(process.argv.slice(process.argv.indexOf("agent") + 1)));

program
  .command("dev")
  .description("quickstart: gateway, agent, embedded store and a demo Postgres in one process")
  .option("--data-dir <dir>", "where to keep state", ".airlock/dev")
  .option("--api-port <port>", "API port", "8080")
  .option("--agent-port <port>", "agent tunnel port", "8443")
  .option("--demo-port <port>", "demo Postgres port (0 picks one)", "0")
  .option("--pg-port <port>", "Postgres front door port (0 picks one)", "15432")
  .option("--issuer <url>", "sign people in through this OpenID provider (register redirect URI API_URL/api/v1/auth/oidc/callback)")
  .option("--client-id <id>", "the gateway's client id at --issuer")
  .option("--client-secret <secret>", "its client secret (env AIRLOCK_OIDC_CLIENT_SECRET)")
  .option("--groups-claim <claim>", "claim carrying the user's groups", "groups")
  .option("--audience <aud>", "also accept the issuer's client-credentials JWTs with this audience")
  .option("--admin-group <group>", "IdP group whose members are Airlock admins (repeat)", (v: string, p: string[]) => [...p, v], [] as string[])
  .action(
    async (o: { dataDir: string; apiPort: string; agentPort: string; demoPort: string; pgPort: string; issuer?: string; clientId?: string; clientSecret?: string; groupsClaim: string; audience?: string; adminGroup: string[] }) => {
      if (o.issuer && !o.clientId) throw new Error("--issuer needs --client-id");
      const secret = o.clientSecret ?? process.env.AIRLOCK_OIDC_CLIENT_SECRET;
      const oidc = o.issuer ? { issuer: o.issuer, clientId: o.clientId!, ...(secret ? { clientSecret: secret } : {}), groupsClaim: o.groupsClaim, ...(o.audience ? { audience: o.audience } : {}), adminGroups: o.adminGroup } : undefined;
      await (await import("./dev/dev.js")).runDev({ dataDir: o.dataDir, apiPort: Number(o.apiPort), agentPort: Number(o.agentPort), demoPort: Number(o.demoPort), pgPort: Number(o.pgPort), ...(oidc ? { oidc } : {}) });
    },
  );

registerAdmin(program);
registerUser(program);
registerLogin(program);
registerIdentity(program);
registerExec(program, registerReviews(program));
registerAudit(program);
(await import("./commands/policy.js")).registerPolicy(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error;
  const code = err instanceof ApiError ? ` (${err.code})` : "";
  process.stderr.write(`airlock: ${e.message}${code}\n`);
  process.exit(err instanceof ApiError && err.status === 401 ? 4 : 1);
});
