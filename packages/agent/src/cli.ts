import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger, onShutdown } from "@airlock/shared";
import { Agent, type AgentOptions } from "./agent.js";

export const AGENT_USAGE = `Usage: airlock agent --gateway HOST:PORT [--token ENROLLMENT_TOKEN] [options]

  --gateway HOST:PORT   gateway agent endpoint (env AIRLOCK_GATEWAY)
  --token TOKEN         one-time enrollment token (env AIRLOCK_AGENT_TOKEN)
  --data-dir DIR        where the agent keeps its key (env AIRLOCK_AGENT_DATA_DIR, default ~/.airlock-agent)
  --ca-file PEM         trust this CA for the gateway (env AIRLOCK_CA_FILE)
  --ca-pin sha256:HEX   trust the gateway CA with this fingerprint (env AIRLOCK_CA_PIN)
  --tls-server-name N   name to verify in the gateway certificate
  --insecure            plaintext link (tests only)
`;

/** Parses `airlock agent` flags with environment fallbacks. */
export function agentOptionsFromArgs(argv: string[], env = process.env): Omit<AgentOptions, "logger"> {
  const { values } = parseArgs({
    args: argv,
    options: {
      gateway: { type: "string" },
      token: { type: "string" },
      "data-dir": { type: "string" },
      "ca-file": { type: "string" },
      "ca-pin": { type: "string" },
      "tls-server-name": { type: "string" },
      insecure: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(AGENT_USAGE);
    process.exit(0);
  }
  const gateway = values.gateway ?? env.AIRLOCK_GATEWAY;
  if (!gateway) throw new Error(`--gateway is required\n\n${AGENT_USAGE}`);
  return {
    gateway,
    token: values.token ?? env.AIRLOCK_AGENT_TOKEN,
    dataDir: values["data-dir"] ?? env.AIRLOCK_AGENT_DATA_DIR ?? join(os.homedir(), ".airlock-agent"),
    caFile: values["ca-file"] ?? env.AIRLOCK_CA_FILE,
    caPin: values["ca-pin"] ?? env.AIRLOCK_CA_PIN,
    tlsServerName: values["tls-server-name"],
    insecure: values.insecure ?? false,
  };
}

/** Runs the agent until SIGINT/SIGTERM; exits 2 when the gateway refuses it for good. */
export async function runAgentCli(argv: string[]): Promise<void> {
  const logger = createLogger({ name: "airlock-agent" });
  const agent = new Agent({ ...agentOptionsFromArgs(argv), logger });
  onShutdown(() => agent.stop().then(() => process.exit(0)));
  await agent.start();
  try {
    await agent.finished;
  } catch (err) {
    logger.error({ err: (err as Error).message }, "agent stopped");
    process.exit(2);
  }
}
