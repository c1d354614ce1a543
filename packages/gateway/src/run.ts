import { destination } from "pino";
import { createLogger, onShutdown } from "@airlock/shared";
import { loadConfig, type GatewayConfigInput } from "./config.js";
import { AccessTokenService } from "./auth/access-tokens.js";
import { startGateway } from "./server.js";
import { openStore } from "./store/index.js";

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

/**
 * `airlock gateway admin-token`: mints an admin token straight in the store,
 * for the operator who holds the gateway's configuration (and so its
 * database) but no valid token — the bootstrap token expired or was revoked.
 * With the embedded store the gateway must be stopped (PGlite is single-process).
 */
export async function mintAdminTokenCli(opts: GatewayConfigInput & { subject: string; ttlSeconds?: number }): Promise<string> {
  const { subject, ttlSeconds, ...overrides } = opts;
  const config = loadConfig(overrides);
  // stdout carries only the token, so it can be captured: logs go to stderr.
  const logger = createLogger({ name: "airlock-gateway", level: "warn" }, destination(2));
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
  try {
    const tokens = new AccessTokenService(store, config.tokens);
    const r = await tokens.mint({ subject, roles: ["admin"], ttlSeconds: ttlSeconds ?? config.tokens.defaultTtlSeconds, description: "minted offline by `airlock gateway admin-token`", createdBy: "gateway-cli" });
    logger.warn({ subject, tokenId: r.id, expiresAt: r.expiresAt }, "admin token minted offline");
    return r.token;
  } finally {
    await store.close();
  }
}
