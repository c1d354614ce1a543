#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { runAgentCli } from "@airlock/agent";
import { runGatewayCli } from "@airlock/gateway";
import { AIRLOCK_VERSION } from "@airlock/shared";
import { ApiError } from "./client.js";
import { registerAdmin } from "./commands/admin.js";
import { registerUser } from "./commands/user.js";
import { runDev } from "./dev/dev.js";

const program = new Command("airlock")
  .description("Airlock: an access gateway between people, CI jobs and AI agents and your infrastructure")
  .version(AIRLOCK_VERSION)
  .option("--gateway <url>", "gateway API URL (env AIRLOCK_URL, else the login profile)")
  .option("--token <token>", "access token (env AIRLOCK_TOKEN, else the login profile)")
  .option("--json", "print JSON")
  .showHelpAfterError();

program
  .command("gateway")
  .description("run the gateway (configured by AIRLOCK_* environment variables)")
  .option("--data-dir <dir>")
  .action(async (o: { dataDir?: string }) => runGatewayCli(o.dataDir ? { dataDir: o.dataDir } : {}));

program
  .command("agent")
  .description("run an agent (see `airlock agent --help`)")
  .helpOption(false)
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async () => runAgentCli(process.argv.slice(process.argv.indexOf("agent") + 1)));

program
  .command("dev")
  .description("quickstart: gateway, agent, embedded store and a demo Postgres in one process")
  .option("--data-dir <dir>", "where to keep state", ".airlock/dev")
  .option("--api-port <port>", "API port", "8080")
  .option("--agent-port <port>", "agent tunnel port", "8443")
  .option("--demo-port <port>", "demo Postgres port (0 picks one)", "0")
  .action(async (o: { dataDir: string; apiPort: string; agentPort: string; demoPort: string }) =>
    runDev({ dataDir: o.dataDir, apiPort: Number(o.apiPort), agentPort: Number(o.agentPort), demoPort: Number(o.demoPort) }),
  );

registerAdmin(program);
registerUser(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error;
  const code = err instanceof ApiError ? ` (${err.code})` : "";
  process.stderr.write(`airlock: ${e.message}${code}\n`);
  process.exit(err instanceof ApiError && err.status === 401 ? 4 : 1);
});
