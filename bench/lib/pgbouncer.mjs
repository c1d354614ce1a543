// The pooler people put in front of PostgreSQL today, as the baseline for
// Airlock's Postgres front door: Debian's pgbouncer, started by the bench in
// a temp dir on a free port, nothing on the machine touched.
//
// Session pooling, not transaction pooling: Airlock is a session proxy (one
// server connection per client connection for its lifetime), so session mode
// is the like-for-like comparison. pool_size ≥ clients so nobody queues.
// Client-side TLS is on (a throwaway self-signed certificate) because
// Airlock's front door always speaks TLS to clients; the hop to PostgreSQL is
// plaintext for both, as the machine's PostgreSQL has ssl = off.
// Config reference: https://www.pgbouncer.org/config.html
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { join } from "node:path";
import { freePort, start, waitFor } from "./procs.mjs";
import { runCollect } from "./pgbench.mjs";

const PGBOUNCER = "/usr/sbin/pgbouncer";

/** Why pgbouncer cannot be measured here, or null when it can. */
export function pgbouncerUnavailable() {
  if (!fs.existsSync(PGBOUNCER)) return `${PGBOUNCER} not found; install it with: apt-get install -y pgbouncer`;
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
  } catch {
    return "openssl not found (needed for pgbouncer's client TLS certificate); install it with: apt-get install -y openssl";
  }
  return null;
}

export function pgbouncerVersion() {
  return execFileSync(PGBOUNCER, ["--version"], { encoding: "utf8" }).split("\n", 1)[0].trim();
}

/**
 * Starts pgbouncer in session mode in front of `target` ({host, port, user}).
 * Returns { rec, port, tls: true, poolMode }.
 */
export async function startPgbouncer(dir, target, { poolSize }) {
  const why = pgbouncerUnavailable();
  if (why) throw new Error(why);
  fs.mkdirSync(dir, { recursive: true });
  const key = join(dir, "server.key");
  const cert = join(dir, "server.crt");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert], {
    stdio: "ignore",
  });
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  fs.writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${target.host} port=${target.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =", // TCP only: nothing written outside the temp dir
      "pool_mode = session",
      "auth_type = trust", // the target trusts loopback too; both sides unauthenticated alike
      `auth_file = ${join(dir, "userlist.txt")}`, // trust still wants the user listed
      `default_pool_size = ${poolSize}`,
      `max_client_conn = ${poolSize + 20}`,
      // Close idle server connections soon (default 10 min): the other paths need those slots of the shared server.
      "server_idle_timeout = 3",
      "client_tls_sslmode = require",
      `client_tls_key_file = ${key}`,
      `client_tls_cert_file = ${cert}`,
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
  );
  fs.writeFileSync(join(dir, "userlist.txt"), `"${target.user}" ""\n`);
  // pgbouncer refuses to run as root; -u drops to the postgres user, which
  // must then be able to read the config, key and certificate.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    fs.chmodSync(dir, 0o755);
    for (const f of fs.readdirSync(dir)) fs.chmodSync(join(dir, f), 0o644);
  }
  const rec = start("pgbouncer", PGBOUNCER, [...(asRoot ? ["-u", "postgres"] : []), ini], { log: join(dir, "pgbouncer.log") });
  await waitFor(
    "pgbouncer accepting connections",
    async () => (await runCollect("psql", ["-X", "-At", "-c", "select 1"], pgbouncerConn(port, target.user, "postgres"))).stdout.trim() === "1",
    { rec },
  );
  return { rec, port, tls: true, poolMode: "session" };
}

/** libpq environment for a connection through pgbouncer. */
export function pgbouncerConn(port, user, db) {
  return { PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: user, PGDATABASE: db, PGSSLMODE: "require", PGPASSWORD: "" };
}
