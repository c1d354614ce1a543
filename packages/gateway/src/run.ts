import { createLogger, onShutdown } from "@airlock/shared";
import { loadConfig, type GatewayConfigInput } from "./config.js";
import { startGateway } from "./server.js";

/** `airlock gateway`: runs until SIGINT/SIGTERM, then shuts down in order. */
export async function runGatewayCli(overrides: GatewayConfigInput = {}): Promise<void> {
  const logger = createLogger({ name: "airlock-gateway" });
  const gw = await startGateway(loadConfig(overrides), logger);
  onShutdown(async (signal) => {
    logger.info({ signal }, "shutting down");
    await gw.stop();
    process.exit(0);
  });
}
