// Test helper (excluded from the build, like fixtures.ts): a throwaway PostgreSQL instance in a temp
// dir on a free loopback port, with one role per password authentication method and optional TLS.
// initdb refuses to run as root, so as root the server runs as the `postgres` system user.
// Start once per test file (beforeAll): about 1 s (initdb -N, fsync off).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { generateCa, issueServerCert } from "../../../crypto/tls-gen.js";

export interface TestUser {
  user: string;
  password: string;
}

export interface TestPostgres {
  host: string;
  port: number;
  dataDir: string;
  /** Database every role can connect to. */
  database: string;
  /** CA that signed the server certificate (ssl only). */
  caPem?: string;
  /** A name in the server certificate (ssl only). */
  serverName?: string;
  /** Roles whose pg_hba.conf line forces that method; `admin` is a trusted superuser for setup. */
  users: { scram: TestUser; md5: TestUser; plain: TestUser; trust: TestUser; admin: TestUser };
  /** Runs SQL as the superuser (setup only). */
  query(sql: string): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** Highest installed PostgreSQL's bin dir, or AIRLOCK_PG_BIN. */
function pgBinDir(): string {
  const fromEnv = process.env.AIRLOCK_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error("no PostgreSQL server binaries found (set AIRLOCK_PG_BIN)");
  return path.join(root, versions[0]!, "bin");
}

/** uid/gid to run the server as: ourselves, or the `postgres` user when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], opts: { cwd: string; user: { uid: number; gid: number } | undefined }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" }, ...opts.user });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} exited ${code}: ${output}`))));
  });
}

const HBA = `# TYPE DATABASE USER ADDRESS METHOD
host all postgres 127.0.0.1/32 trust
host all u_trust 127.0.0.1/32 trust
host all u_md5 127.0.0.1/32 md5
host all u_plain 127.0.0.1/32 password
host all all 127.0.0.1/32 scram-sha-256
`;

export async function startTestPostgres(opts: { ssl?: boolean; maxConnections?: number } = {}): Promise<TestPostgres> {
  const bin = pgBinDir();
  const user = runAs();
  const base = await mkdtemp(path.join(os.tmpdir(), "airlock-pg-"));
  const dataDir = path.join(base, "data");
  const own = async (p: string): Promise<void> => {
    if (user) await chown(p, user.uid, user.gid);
  };
  await own(base);
  await run(path.join(bin, "initdb"), ["-D", dataDir, "-N", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"], { cwd: base, user });
  await writeFile(path.join(dataDir, "pg_hba.conf"), HBA);

  const settings = ["listen_addresses=127.0.0.1", `unix_socket_directories=${base}`, "fsync=off", "full_page_writes=off", "synchronous_commit=off", `max_connections=${opts.maxConnections ?? 40}`];
  let caPem: string | undefined;
  const serverName = opts.ssl ? "pg.airlock.test" : undefined;
  if (opts.ssl) {
    const ca = await generateCa();
    const server = await issueServerCert(ca, { dns: ["pg.airlock.test", "localhost"], ips: ["127.0.0.1"] });
    caPem = ca.certPem;
    const certFile = path.join(dataDir, "server.crt");
    const keyFile = path.join(dataDir, "server.key");
    await writeFile(certFile, server.certPem);
    await writeFile(keyFile, server.keyPem, { mode: 0o600 });
    await chmod(keyFile, 0o600); // PostgreSQL refuses a key readable by others
    await own(certFile);
    await own(keyFile);
    settings.push("ssl=on", `ssl_cert_file=${certFile}`, `ssl_key_file=${keyFile}`);
  }
  await own(path.join(dataDir, "pg_hba.conf"));

  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await startServer(path.join(bin, "postgres"), ["-D", dataDir, "-p", String(port), ...settings.flatMap((s) => ["-c", s])], base, user);
    } catch (err) {
      // Another test grabbed the port between freePort() and bind(): try another.
      if (attempt >= 3 || !String(err).includes("could not bind")) {
        await rm(base, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const server = child;
  // A test run that ends without stop() (crash, bail) must not leave a server and its files behind.
  const killOnExit = (): void => {
    server.kill("SIGKILL");
    rmSync(base, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  const host = "127.0.0.1";
  const admin = { user: "postgres", password: "" };
  const query = async (sql: string): Promise<pg.QueryResult> => {
    const client = new pg.Client({ host, port, user: admin.user, database: "postgres" });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const secret = (): string => `pw-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
  const users = {
    scram: { user: "u_scram", password: secret() },
    md5: { user: "u_md5", password: secret() },
    plain: { user: "u_plain", password: secret() },
    trust: { user: "u_trust", password: "" },
    admin,
  };
  await query(`
    CREATE ROLE u_scram LOGIN PASSWORD '${users.scram.password}';
    CREATE ROLE u_plain LOGIN PASSWORD '${users.plain.password}';
    CREATE ROLE u_trust LOGIN;
    SET password_encryption = 'md5';
    CREATE ROLE u_md5 LOGIN PASSWORD '${users.md5.password}';
  `);

  const stop = async (): Promise<void> => {
    process.off("exit", killOnExit);
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
      server.kill("SIGINT"); // fast shutdown
      const timer = setTimeout(() => server.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(base, { recursive: true, force: true });
  };
  return { host, port, dataDir, database: "postgres", ...(opts.ssl ? { caPem, serverName } : {}), users, query, stop };
}

/** Spawns the postmaster and resolves once it accepts connections (it says so on stderr). */
function startServer(cmd: string, args: string[], cwd: string, user: { uid: number; gid: number } | undefined): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_ALL: "C" }, ...user });
    let log = "";
    let ready = false;
    // Keep draining stderr for the server's whole life: a full pipe would block its logging.
    child.stderr!.on("data", (c: Buffer) => {
      if (ready) return;
      log += c.toString();
      if (log.includes("database system is ready to accept connections")) {
        ready = true;
        resolve(child);
      }
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (!ready) reject(new Error(`postgres exited ${code} during start: ${log}`));
    });
  });
}
