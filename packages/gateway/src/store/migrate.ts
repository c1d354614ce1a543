// Our own migrator for prisma/migrations/NNNN_name/migration.sql. We don't use
// `prisma migrate deploy`: it can't run offline with the JS engine
// (prisma/orm#27403), needs the CLI at run time and cannot drive PGlite. The
// same SQL is applied to PGlite and PostgreSQL, so both stores stay identical.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AirlockError } from "@airlock/shared/errors";
import type { Logger } from "pino";

/**
 * packages/gateway/prisma/migrations. This file runs from src/store (vitest)
 * and from dist/store (built), both two levels below the package root, so one
 * relative URL serves both. Whatever ships the gateway must ship prisma/ too.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/migrations/", import.meta.url));

/** Table recording what was applied; not managed by Prisma (not in schema.prisma). */
export const MIGRATIONS_TABLE = "_airlock_migrations";

/**
 * Advisory lock key shared by every gateway ("AIRLOCK" in ASCII as a number).
 * Any constant works; it only has to be the same everywhere.
 */
const LOCK_KEY = "18376491302601547";

/** The two operations the migrator needs, over one pg connection or PGlite. */
export interface MigrationConnection {
  /** One statement with $n parameters (extended protocol); returns the rows. */
  query<R>(sql: string, params?: unknown[]): Promise<R[]>;
  /** A script of many statements, no parameters (simple query protocol). */
  exec(sql: string): Promise<void>;
}

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export type MigrationFailure =
  | "checksum_mismatch" // an applied migration.sql was edited afterwards
  | "unknown_migration" // the database is ahead of this gateway (downgrade?)
  | "missing_migrations" // prisma/migrations was not shipped or is empty
  | "apply_failed" // a migration's SQL failed; it was rolled back
  | "lock_timeout"; // another gateway held the migration lock too long

/** Why the store refused to open. Code STORE_UNAVAILABLE; `reason` says which case. */
export class MigrationError extends AirlockError {
  readonly reason: MigrationFailure;
  readonly migration: string | undefined;

  constructor(reason: MigrationFailure, message: string, opts: { migration?: string; cause?: unknown } = {}) {
    super("STORE_UNAVAILABLE", message, { cause: opts.cause, details: { reason, migration: opts.migration } });
    this.reason = reason;
    this.migration = opts.migration;
  }
}

/**
 * SHA-256 of the SQL with line endings normalised, so a checkout with CRLF
 * (git autocrlf on Windows) doesn't look like a tampered migration.
 */
export function checksum(sql: string): string {
  return createHash("sha256").update(sql.replace(/\r\n/g, "\n")).digest("hex");
}

/** Reads every NNNN_name/migration.sql under `dir`, in name order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new MigrationError("missing_migrations", `cannot read migrations in ${dir}`, { cause: err });
  }
  const names = entries
    .filter((e) => e.isDirectory() && /^\d{4}_[A-Za-z0-9_]+$/.test(e.name))
    .map((e) => e.name)
    .sort();
  // An empty list would silently leave an empty database behind.
  if (names.length === 0) throw new MigrationError("missing_migrations", `no migrations found in ${dir}`);
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: checksum(sql) };
    }),
  );
}

function pgErrorCode(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
}

export interface ApplyOptions {
  logger: Logger;
  /** Defaults to MIGRATIONS_DIR. */
  dir?: string;
  /** How long to wait for another gateway's migration run. Default 60 s. */
  lockTimeoutMs?: number;
}

/**
 * Applies pending migrations, each in its own transaction, under a session
 * advisory lock so gateways starting together take turns (the second finds
 * nothing left to do). Refuses to go on if an applied migration changed or
 * the database knows migrations this gateway doesn't. Returns the names applied.
 * (A migration that can't run in a transaction, e.g. CREATE INDEX CONCURRENTLY,
 * is therefore not supported.)
 */
export async function applyMigrations(conn: MigrationConnection, opts: ApplyOptions): Promise<string[]> {
  const migrations = await loadMigrations(opts.dir);
  const log = opts.logger;

  // lock_timeout also bounds pg_advisory_lock: better a clear error than a
  // gateway hanging forever behind a stuck peer. Reset once we hold the lock so
  // the migrations themselves aren't cut short.
  await conn.query("SELECT set_config('lock_timeout', $1, false)", [`${opts.lockTimeoutMs ?? 60_000}ms`]);
  try {
    await conn.query("SELECT pg_advisory_lock($1::bigint)", [LOCK_KEY]);
  } catch (err) {
    if (pgErrorCode(err) !== "55P03") throw err; // 55P03 = lock_not_available
    throw new MigrationError("lock_timeout", "timed out waiting for another gateway to finish migrating the store", {
      cause: err,
    });
  }
  await conn.query("SELECT set_config('lock_timeout', '0', false)");

  try {
    await conn.exec(
      `CREATE TABLE IF NOT EXISTS "${MIGRATIONS_TABLE}" (
         name text PRIMARY KEY,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const rows = await conn.query<{ name: string; checksum: string }>(
      `SELECT name, checksum FROM "${MIGRATIONS_TABLE}" ORDER BY name`,
    );
    const applied = new Map(rows.map((r) => [r.name, r.checksum]));
    const known = new Map(migrations.map((m) => [m.name, m]));

    for (const [name, sum] of applied) {
      const m = known.get(name);
      if (!m) {
        throw new MigrationError(
          "unknown_migration",
          `the store has migration ${name}, which this gateway doesn't know: is it older than the database?`,
          { migration: name },
        );
      }
      if (m.checksum !== sum) {
        throw new MigrationError(
          "checksum_mismatch",
          `migration ${name} was changed after it was applied (checksum ${sum} in the store, ${m.checksum} on disk)`,
          { migration: name },
        );
      }
    }

    const done: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.name)) continue;
      const started = performance.now();
      await conn.exec("BEGIN");
      try {
        await conn.exec(m.sql);
        await conn.query(`INSERT INTO "${MIGRATIONS_TABLE}" (name, checksum) VALUES ($1, $2)`, [m.name, m.checksum]);
        await conn.exec("COMMIT");
      } catch (err) {
        await conn.exec("ROLLBACK").catch(() => undefined); // the original error matters more
        throw new MigrationError("apply_failed", `migration ${m.name} failed: ${(err as Error).message}`, {
          migration: m.name,
          cause: err,
        });
      }
      done.push(m.name);
      log.info({ migration: m.name, ms: Math.round(performance.now() - started) }, "applied store migration");
    }
    return done;
  } finally {
    // Also released when the connection closes; unlocking early lets a
    // waiting peer go on even if our caller keeps the connection.
    await conn.query("SELECT pg_advisory_unlock($1::bigint)", [LOCK_KEY]).catch(() => undefined);
  }
}
