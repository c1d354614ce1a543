// PostgreSQL store: migrations over one dedicated connection, then Prisma over
// a pg pool (through @prisma/adapter-pg; the client engine has no Rust
// binaries, so nothing is downloaded at run time).
import { createHash } from "node:crypto";
import { AirlockError } from "@airlock/shared/errors";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import type { Logger } from "pino";
import { PrismaClient } from "./generated/client.js";
import { applyMigrations, type MigrationConnection } from "./migrate.js";

export interface PostgresOptions {
  databaseUrl: string;
  logger: Logger;
  migrationsDir?: string;
  lockTimeoutMs?: number;
  /** Wait for the WAL flush on every record write (see store/index.ts `sql`). */
  recordSyncCommit?: boolean;
}

// Fail fast on a dead server instead of pg's default of waiting forever.
const CONNECT_TIMEOUT_MS = 10_000;

/** Rejects anything but a postgres URL, without echoing it (it may hold a password). */
function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch (err) {
    throw new AirlockError("CONFIG_INVALID", "the database URL is not a valid URL", { cause: err });
  }
  if (protocol !== "postgres:" && protocol !== "postgresql:") {
    throw new AirlockError("CONFIG_INVALID", `the database URL must be postgres:// or postgresql://, not ${protocol}//`);
  }
}

function migrationConnection(client: pg.Client): MigrationConnection {
  return {
    async query<R>(sql: string, params?: unknown[]) {
      return (await client.query(sql, params)).rows as R[];
    },
    async exec(sql: string) {
      // No parameters: pg uses the simple query protocol, which runs scripts.
      await client.query(sql);
    },
  };
}

async function migrate(opts: PostgresOptions): Promise<void> {
  // A dedicated connection, not a pooled one: the advisory lock and
  // lock_timeout are per session and must not leak into Prisma's pool.
  const client = new pg.Client({ connectionString: opts.databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An 'error' event without a listener would crash the process.
  client.on("error", (err) => opts.logger.warn({ err }, "PostgreSQL migration connection failed"));
  try {
    await client.connect();
  } catch (err) {
    throw new AirlockError("STORE_UNAVAILABLE", `cannot connect to PostgreSQL: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    await applyMigrations(migrationConnection(client), {
      logger: opts.logger,
      ...(opts.migrationsDir === undefined ? {} : { dir: opts.migrationsDir }),
      ...(opts.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: opts.lockTimeoutMs }),
    });
  } catch (err) {
    throw AirlockError.from(err, "STORE_UNAVAILABLE");
  } finally {
    await client.end().catch(() => undefined);
  }
}

const preparedNames = new Map<string, string>();

/** A stable prepared-statement name per SQL text (the texts are constants in the code: the map stays small). */
function preparedName(text: string): string {
  let name = preparedNames.get(text);
  if (!name) {
    name = `airlock_${createHash("sha256").update(text).digest("hex").slice(0, 20)}`;
    preparedNames.set(text, name);
  }
  return name;
}

export async function openPostgres(opts: PostgresOptions): Promise<{ prisma: PrismaClient; sql(text: string, params: unknown[]): Promise<unknown>; close(): Promise<void> }> {
  checkUrl(opts.databaseUrl);
  await migrate(opts);

  const pool = new pg.Pool({ connectionString: opts.databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // Idle clients get errors when the server restarts; unhandled, they'd crash
  // the gateway. The pool drops the broken client and opens a new one later.
  pool.on("error", (err) => opts.logger.warn({ err }, "idle PostgreSQL connection failed"));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  // Statement records get their own small pool. By default its commits do not wait for the
  // WAL flush (synchronous_commit=off): a record is written and visible to every gateway before
  // its statement is forwarded, and survives a gateway crash; only a crash of the store's own
  // server can lose the last few hundred milliseconds. Waiting for the flush costs one fsync per
  // statement (~1-2 ms here); AIRLOCK_RECORD_SYNC_COMMIT=true buys that guarantee.
  const recordPool = new pg.Pool({
    connectionString: opts.databaseUrl,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    max: 4,
    ...(opts.recordSyncCommit ? {} : { options: "-c synchronous_commit=off" }),
  });
  recordPool.on("error", (err) => opts.logger.warn({ err }, "idle PostgreSQL connection failed"));

  let closing: Promise<void> | undefined;
  return {
    prisma,
    // Named prepared statements: these are a handful of fixed texts run for every statement and
    // session, so each connection parses and plans them once (saves ~0.1 ms per record, bench audit).
    sql: async (text, params) => (await recordPool.query({ name: preparedName(text), text, values: params })).rows,
    close() {
      closing ??= (async () => {
        await prisma.$disconnect();
        await pool.end(); // we passed the pool in, so the adapter leaves it to us
        await recordPool.end();
      })();
      return closing;
    },
  };
}
