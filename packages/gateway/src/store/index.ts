// The gateway's store: Prisma over PostgreSQL when a database URL is given,
// else embedded PGlite in `<dataDir>/store`. Opening applies pending SQL
// migrations (src/store/migrate.ts) before anyone can query.
import type { Logger } from "pino";
import type { PrismaClient } from "./generated/client.js";

export interface Store {
  prisma: PrismaClient;
  kind: "pglite" | "postgres";
  /**
   * Raw parameterised SQL on the same database, bypassing the ORM. For the hottest writes
   * (a statement record per statement): Prisma's per-call cost roughly doubled their latency.
   */
  sql(text: string, params: unknown[]): Promise<unknown>;
  /** Disconnects Prisma and closes the pool or PGlite (flushing it). Idempotent. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** postgres:// or postgresql:// URL; when unset, PGlite in `${dataDir}/store`. */
  databaseUrl?: string;
  dataDir: string;
  logger: Logger;
  /** Tests only: another prisma/migrations directory. */
  migrationsDir?: string;
  /** How long to wait for another gateway migrating the same PostgreSQL database. Default 60 s. */
  lockTimeoutMs?: number;
  /** PostgreSQL: statement records wait for the WAL flush (default: they do not; see postgres.ts). */
  recordSyncCommit?: boolean;
}

/**
 * Opens the store and brings its schema up to date. Throws AirlockError:
 * CONFIG_INVALID for a bad URL, STORE_UNAVAILABLE when the database can't be
 * reached or migrated (a MigrationError, with `reason`, for migration problems).
 */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const logger = opts.logger.child({ component: "store" });
  const common = {
    logger,
    ...(opts.migrationsDir === undefined ? {} : { migrationsDir: opts.migrationsDir }),
  };
  // An empty string (e.g. AIRLOCK_DATABASE_URL= in a unit file) means "not set".
  if (opts.databaseUrl) {
    // Each store's driver is loaded only when used: a production gateway never loads PGlite.
    const { openPostgres } = await import("./postgres.js");
    const pg = await openPostgres({
      ...common,
      databaseUrl: opts.databaseUrl,
      recordSyncCommit: opts.recordSyncCommit ?? false,
      ...(opts.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: opts.lockTimeoutMs }),
    });
    logger.info({ kind: "postgres" }, "store opened");
    return { prisma: pg.prisma, kind: "postgres", sql: pg.sql, close: pg.close };
  }
  const { openPglite } = await import("./pglite.js");
  const lite = await openPglite({ ...common, dataDir: opts.dataDir });
  logger.info({ kind: "pglite", dataDir: opts.dataDir }, "store opened");
  return { prisma: lite.prisma, kind: "pglite", sql: lite.sql, close: lite.close };
}

export { MIGRATIONS_DIR, MigrationError, type MigrationFailure } from "./migrate.js";
// Prisma's client and types, so other modules never import ./generated directly.
export { Prisma, PrismaClient } from "./generated/client.js";
export type { AccessToken, Agent, Connection, Session } from "./generated/client.js";
