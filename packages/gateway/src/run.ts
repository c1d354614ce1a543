import { createLogger } from "@airlock/shared";
import { loadConfig, type GatewayConfigInput } from "./config.js";
import { startGateway } from "./server.js";

/** `airlock gateway`: runs until SIGINT/SIGTERM, then shuts down in order. */
export async function runGatewayCli(overrides: GatewayConfigInput = {}): Promise<void> {
  const logger = createLogger({ name: "airlock-gateway" });
  const gw = await startGateway(loadConfig(overrides), logger);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down");
    await gw.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}
