// Embedded store: PGlite (PostgreSQL compiled to WASM) persisted in a
// directory, for single-node installs with no database server. The same SQL
// migrations as PostgreSQL are applied, then Prisma talks to it through
// pglite-prisma-adapter.
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AirlockError } from "@airlock/shared/errors";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "pino";
import { PrismaClient } from "./generated/client.js";
import { applyMigrations, type MigrationConnection } from "./migrate.js";
import { PGliteAdapterFactory } from "./pglite-adapter.js";

export interface PgliteOptions {
  dataDir: string;
  logger: Logger;
  migrationsDir?: string;
}

/** Lock files this process holds, to refuse a second open of the same directory. */
const held = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/**
 * PGlite has no locking of its own: two processes opening one directory would
 * corrupt it. Node has no flock, so we keep a pid file next to the directory.
 * A pid file of a dead process, or of our own pid that we don't hold (a
 * container restarted with the same pid), is stale and taken over.
 */
async function lockDir(lockPath: string): Promise<() => Promise<void>> {
  if (held.has(lockPath)) {
    throw new AirlockError("STORE_UNAVAILABLE", `the store is already open in this process (${lockPath})`);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lockPath, "wx");
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      held.add(lockPath);
      return async () => {
        held.delete(lockPath);
        await rm(lockPath, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
    }
    const pid = Number.parseInt(await readFile(lockPath, "utf8").catch(() => ""), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new AirlockError(
        "STORE_UNAVAILABLE",
        `the store is in use by process ${pid} (${lockPath}); remove that file only if no gateway is running`,
        { details: { pid } },
      );
    }
    await rm(lockPath, { force: true });
  }
}

function migrationConnection(db: PGlite): MigrationConnection {
  return {
    async query<R>(sql: string, params?: unknown[]) {
      return (await db.query<R>(sql, params)).rows;
    },
    async exec(sql: string) {
      // PGlite's query() uses the extended protocol (one statement); exec()
      // uses the simple protocol, which runs whole migration scripts.
      await db.exec(sql);
    },
  };
}

export async function openPglite(opts: PgliteOptions): Promise<{ prisma: PrismaClient; sql(text: string, params: unknown[]): Promise<unknown>; close(): Promise<void> }> {
  const dataDir = resolve(opts.dataDir);
  const dir = join(dataDir, "store");
  await mkdir(dir, { recursive: true });
  const unlock = await lockDir(join(dataDir, "store.lock"));

  let db: PGlite | undefined;
  try {
    db = await PGlite.create(dir);
    await applyMigrations(migrationConnection(db), {
      logger: opts.logger,
      ...(opts.migrationsDir === undefined ? {} : { dir: opts.migrationsDir }),
    });
  } catch (err) {
    await db?.close().catch(() => undefined);
    await unlock();
    throw AirlockError.from(err, "STORE_UNAVAILABLE");
  }

  const pglite = db;
  const prisma = new PrismaClient({ adapter: new PGliteAdapterFactory(pglite) });
  let closing: Promise<void> | undefined;
  return {
    prisma,
    sql: async (text, params) => (await pglite.query(text, params)).rows,
    close() {
      closing ??= (async () => {
        try {
          await prisma.$disconnect();
          await pglite.close(); // flushes to disk: skip it and recent writes may be lost
        } finally {
          await unlock();
        }
      })();
      return closing;
    },
  };
}
