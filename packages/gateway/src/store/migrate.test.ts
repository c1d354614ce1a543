// The migrator against real databases: migrations agree with schema.prisma,
// concurrent gateways take turns, and tampering is refused.
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "./index.js";
import { applyMigrations, loadMigrations, MigrationError, MIGRATIONS_DIR, type MigrationConnection } from "./migrate.js";
import { catalogDump, createTempDatabase, type RowQuery, type TempDatabase, withClient } from "./testing.js";

const logger = pino({ level: "silent" });
const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDb(): Promise<TempDatabase> {
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  return db;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "airlock-migrate-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of the real migrations that a test may change. */
async function migrationsCopy(): Promise<string> {
  const dir = join(await tempDir(), "migrations");
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

const pgQuery =
  (client: pg.Client): RowQuery =>
  async (sql) =>
    (await client.query(sql)).rows;

function pgConnection(client: pg.Client): MigrationConnection {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
    exec: async (sql: string) => void (await client.query(sql)),
  };
}

/**
 * Column order is not part of the schema's meaning: a later migration's ADD COLUMN appends
 * where a fresh schema lists the field in place. Compare columns by name instead.
 */
function byName<T extends { columns: Record<string, unknown>[] }>(dump: T): T {
  const columns = dump.columns
    .map(({ ordinal_position: _, ...c }) => c)
    .sort((x, y) => `${x.table_name}.${x.column_name}`.localeCompare(`${y.table_name}.${y.column_name}`));
  return { ...dump, columns };
}

/** Values as strings: pg and PGlite parse some catalog types differently. */
function normalise(dump: Record<string, Record<string, unknown>[]>) {
  return Object.fromEntries(
    Object.entries(dump).map(([k, rows]) => [
      k,
      rows.map((r) => Object.fromEntries(Object.entries(r).map(([c, v]) => [c, v === null ? null : String(v)]))),
    ]),
  );
}

describe("migrations", () => {
  it("build exactly the schema that schema.prisma describes", async () => {
    const { stdout: fromSchema } = await promisify(execFile)(
      "sh",
      ["scripts/prisma.sh", "migrate", "diff", "--from-empty", "--to-schema-datamodel", "prisma/schema.prisma", "--script"],
      { cwd: PACKAGE_ROOT },
    );
    expect(fromSchema).toContain("CREATE TABLE");

    const a = await tempDb();
    const b = await tempDb();
    const store = await openStore({ databaseUrl: a.url, dataDir: await tempDir(), logger });
    await store.close();
    // Objects Prisma's schema language can't express (full-text index, SIEM triggers) come from raw-objects.sql.
    const raw = await readFile(join(PACKAGE_ROOT, "prisma/raw-objects.sql"), "utf8");
    await withClient(b.url, async (c) => (await c.query(fromSchema), await c.query(raw)));

    const dumpA = await withClient(a.url, (c) => catalogDump(pgQuery(c)));
    const dumpB = await withClient(b.url, (c) => catalogDump(pgQuery(c)));
    expect(dumpA.tables.map((t) => t.table_name)).toEqual(["access_tokens", "agents", "audit_checkpoints", "audit_keys", "audit_outbox", "audit_sinks", "audit_tombstones", "auth_events", "connections", "login_requests", "logins", "policy_versions", "recording_chunks", "review_decisions", "reviews", "service_accounts", "sessions", "statements", "users"]);
    expect(dumpA.triggers.map((t) => t.tgname)).toEqual(["sessions_audit_insert", "sessions_audit_update", "statements_audit_insert", "statements_audit_update"]);
    expect(dumpA.columns.length).toBeGreaterThan(40);
    expect(byName(dumpA)).toEqual(byName(dumpB));

    // The same SQL gives PGlite (PostgreSQL 17 in WASM) the same schema.
    const dataDir = await tempDir();
    await (await openStore({ dataDir, logger })).close();
    const lite = await PGlite.create(join(dataDir, "store"));
    try {
      const dumpLite = await catalogDump(async (sql) => (await lite.query<Record<string, unknown>>(sql)).rows);
      expect(normalise(byName(dumpLite))).toEqual(normalise(byName(dumpA)));
    } finally {
      await lite.close();
    }
  });

  it("are applied once when two gateways open one fresh database at the same time", async () => {
    const db = await tempDb();
    const dataDir = await tempDir();
    const stores = await Promise.all([1, 2].map(() => openStore({ databaseUrl: db.url, dataDir, logger })));
    for (const s of stores) expect(await s.prisma.agent.count()).toBe(0);
    await Promise.all(stores.map((s) => s.close()));

    const names = (await loadMigrations()).map((m) => m.name);
    const rows = await withClient(db.url, (c) => c.query("SELECT name FROM _airlock_migrations ORDER BY name"));
    expect(rows.rows.map((r: { name: string }) => r.name)).toEqual(names);
  });

  it("take turns under the advisory lock: exactly one runner applies them", async () => {
    const db = await tempDb();
    const clients = await Promise.all(
      [1, 2, 3].map(async () => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        cleanups.push(() => c.end());
        return c;
      }),
    );
    const applied = await Promise.all(clients.map((c) => applyMigrations(pgConnection(c), { logger })));
    expect(applied.filter((a) => a.length > 0)).toHaveLength(1);
  });

  it("give up with lock_timeout when another gateway holds the lock too long", async () => {
    const db = await tempDb();
    await withClient(db.url, async (holder) => {
      await holder.query("SELECT pg_advisory_lock(18376491302601547)");
      await withClient(db.url, async (c) => {
        const err = await applyMigrations(pgConnection(c), { logger, lockTimeoutMs: 200 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(MigrationError);
        expect((err as MigrationError).reason).toBe("lock_timeout");
      });
    });
  });
});

describe("the migrator refuses", () => {
  it("an applied migration whose checksum changed in the database (PostgreSQL)", async () => {
    const db = await tempDb();
    const dataDir = await tempDir();
    await (await openStore({ databaseUrl: db.url, dataDir, logger })).close();
    await withClient(db.url, (c) => c.query("UPDATE _airlock_migrations SET checksum = 'tampered' WHERE name = '0001_init'"));

    const err = await openStore({ databaseUrl: db.url, dataDir, logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe("STORE_UNAVAILABLE");
    expect((err as MigrationError).reason).toBe("checksum_mismatch");
    expect((err as MigrationError).migration).toBe("0001_init");
  });

  it("an applied migration.sql that was edited afterwards (PGlite), and releases the directory", async () => {
    const dataDir = await tempDir();
    const migrationsDir = await migrationsCopy();
    await (await openStore({ dataDir, logger, migrationsDir })).close();
    const file = join(migrationsDir, "0001_init", "migration.sql");
    await writeFile(file, `${await readFile(file, "utf8")}\n-- an innocent-looking edit\n`);

    const err = await openStore({ dataDir, logger, migrationsDir }).catch((e: unknown) => e);
    expect((err as MigrationError).reason).toBe("checksum_mismatch");
    // The failed open must not leave the directory locked.
    await (await openStore({ dataDir, logger })).close();
  });

  it("a database that has migrations this gateway doesn't know", async () => {
    const db = await tempDb();
    const dataDir = await tempDir();
    await (await openStore({ databaseUrl: db.url, dataDir, logger })).close();
    await withClient(db.url, (c) => c.query("INSERT INTO _airlock_migrations (name, checksum) VALUES ('9999_future', 'x')"));
    const err = await openStore({ databaseUrl: db.url, dataDir, logger }).catch((e: unknown) => e);
    expect((err as MigrationError).reason).toBe("unknown_migration");
  });

  it("a failing migration, rolling it back whole", async () => {
    const db = await tempDb();
    const migrationsDir = await migrationsCopy();
    await mkdir(join(migrationsDir, "0002_broken"));
    await writeFile(join(migrationsDir, "0002_broken", "migration.sql"), "CREATE TABLE half_done (x int);\nSELECT 1/0;\n");

    const err = await openStore({ databaseUrl: db.url, dataDir: await tempDir(), logger, migrationsDir }).catch(
      (e: unknown) => e,
    );
    expect((err as MigrationError).reason).toBe("apply_failed");
    expect((err as MigrationError).migration).toBe("0002_broken");
    await withClient(db.url, async (c) => {
      expect((await c.query("SELECT to_regclass('half_done') AS t")).rows[0].t).toBeNull();
      expect((await c.query("SELECT name FROM _airlock_migrations")).rows).toEqual([{ name: "0001_init" }]);
    });
  });

  it("an empty or missing migrations directory", async () => {
    const empty = await tempDir();
    await expect(loadMigrations(empty)).rejects.toMatchObject({ reason: "missing_migrations" });
    await expect(loadMigrations(join(empty, "nope"))).rejects.toMatchObject({ reason: "missing_migrations" });
  });
});
