// Test support for anything that needs a real store: throwaway PostgreSQL
// databases and a catalog dump to compare schemas. Lives beside the code (not
// in a *.test.ts) so other modules' tests can import it too.
import { randomBytes } from "node:crypto";
import pg from "pg";

/** Server used by tests; the machine's local PostgreSQL (trust auth) by default. */
export const TEST_PG_URL = process.env.AIRLOCK_TEST_PG_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface TempDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a uniquely named empty database; `drop()` removes it even with sessions still open. */
export async function createTempDatabase(prefix = "airlock_test"): Promise<TempDatabase> {
  const name = `${prefix}_${Date.now()}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // WITH (FORCE) (PostgreSQL 13+) ends leftover sessions, e.g. a pool a failed test didn't close.
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/** Runs `fn` with a connected client on `url`, then disconnects. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export type RowQuery = (sql: string) => Promise<Record<string, unknown>[]>;

/**
 * What a schema is made of, from information_schema and pg_catalog, in a
 * stable order: tables, columns (type, nullability, default), indexes,
 * constraints, enums and sequences of the public schema. Tables in `exclude`
 * (e.g. the migrator's own) are left out.
 */
export async function catalogDump(query: RowQuery, exclude: string[] = ["_airlock_migrations"]) {
  const skip = exclude.map((t) => `'${t.replace(/'/g, "''")}'`).join(", ") || "''";
  return {
    tables: await query(
      `SELECT table_name, table_type FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name NOT IN (${skip}) ORDER BY table_name`,
    ),
    columns: await query(
      `SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable, column_default,
              character_maximum_length, numeric_precision, numeric_scale, datetime_precision
         FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name NOT IN (${skip})
        ORDER BY table_name, ordinal_position`,
    ),
    indexes: await query(
      `SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename NOT IN (${skip}) ORDER BY tablename, indexname`,
    ),
    constraints: await query(
      `SELECT cl.relname AS table_name, co.conname, co.contype::text AS contype,
              pg_get_constraintdef(co.oid) AS definition
         FROM pg_constraint co
         JOIN pg_class cl ON cl.oid = co.conrelid
         JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = 'public' AND cl.relname NOT IN (${skip})
        ORDER BY cl.relname, co.conname`,
    ),
    enums: await query(
      `SELECT t.typname, e.enumlabel FROM pg_type t
         JOIN pg_enum e ON e.enumtypid = t.oid
         JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' ORDER BY t.typname, e.enumsortorder`,
    ),
    triggers: await query(
      `SELECT t.tgname, cl.relname AS table_name, pg_get_triggerdef(t.oid) AS definition, pg_get_functiondef(t.tgfoid) AS function
         FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY t.tgname`,
    ),
    sequences: await query(
      `SELECT sequence_name, data_type FROM information_schema.sequences
        WHERE sequence_schema = 'public' ORDER BY sequence_name`,
    ),
  };
}
