// The gateway's store for a bench run. By default the production store,
// PostgreSQL (127.0.0.1:5432, a fresh database per gateway, dropped after);
// `--store pglite` measures the embedded store `airlock dev` uses instead.
import { execFileSync } from "node:child_process";

const created = [];

function psql(sql) {
  execFileSync("psql", ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-X", "-q", "-c", sql], { stdio: ["ignore", "ignore", "pipe"] });
}

/** Returns an AIRLOCK_DATABASE_URL for a new empty database, or undefined for the embedded store. */
export function newStore(kind) {
  if (kind === "pglite") return undefined;
  const name = `airlock_bench_${process.pid}_${created.length}`;
  try {
    psql(`CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(`--store postgres needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth): ${err.stderr ?? err.message}; or pass --store pglite`);
  }
  created.push(name);
  return `postgresql://postgres@127.0.0.1:5432/${name}`;
}

/** Drops the databases this run created (after the gateways are stopped). */
export function dropStores() {
  for (const name of created.splice(0)) {
    try {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch {
      // best effort: a leftover bench database is harmless
    }
  }
}
