// The native Postgres front door: psql and drivers connect here with
//   postgresql://USER@GATEWAY:15432/CONNECTION[/DBNAME]?sslmode=require
// and their Airlock access token as the password. Startup (TLS, protocol
// version, password) happens here; the session itself runs through the common
// runner (engines/run.ts) with the PostgresEngine.
import net from "node:net";
import type tls from "node:tls";
import type { Duplex } from "node:stream";
import { AirlockError, type Logger } from "@airlock/shared";
import type { IdentityService } from "../../identity/verify.js";
import type { ClientConn } from "../engine.js";
import { runSession, type RunDeps } from "../run.js";
import type { CancelRegistry } from "./cancel.js";
import { readClientStartup, readNext } from "./client-startup.js";
import { PostgresEngine, validateStartup, type PostgresEngineDeps } from "./engine.js";
import { PgFatal, fatalFrame } from "./errors.js";
import { writeBackend } from "./protocol/index.js";

export interface FrontDoorOptions {
  host: string;
  port: number;
  /** Server certificate for SSLRequest; null refuses TLS (then only allowPlaintext clients get in). */
  tls: tls.SecureContext | null;
  allowPlaintext: boolean;
  /** The same credential check as the REST API: gateway tokens, API keys, trusted IdP JWTs. */
  identity: IdentityService;
  run: RunDeps;
  engine: PostgresEngineDeps;
  cancels: CancelRegistry;
  log: Logger;
}

const PROTOCOL_3_0 = 3 << 16;

export class PostgresFrontDoor {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly o: FrontDoorOptions) {}

  async start(): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    this.o.log.info({ host: this.o.host, port }, "postgres front door listening");
    return port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {}); // reported through the session or the startup failure
    void this.serve(socket).catch((err) => {
      this.o.log.debug({ err: (err as Error).message }, "postgres front door: connection failed");
    });
  }

  private async serve(socket: net.Socket): Promise<void> {
    let stream: Duplex = socket;
    try {
      // A failure after the TLS upgrade must be reported inside TLS, or the client sees garbage.
      const onTls = (secure: Duplex) => {
        stream = secure;
        secure.on("error", () => {}); // a reset while we report an error must not be unhandled
      };
      const r = await readClientStartup(socket, { tls: this.o.tls, onTls });
      if (r.kind === "cancel") {
        stream.end();
        await this.o.cancels.cancel(r.request);
        return;
      }
      stream = r.stream;
      stream.on("error", () => {});
      const { startup, reader } = r;
      if (startup.protocolVersion >> 16 !== 3) throw new PgFatal("0A000", `unsupported frontend protocol ${startup.protocolVersion >> 16}.${startup.protocolVersion & 0xffff}`);
      if (!r.tls && !this.o.allowPlaintext) {
        throw new PgFatal("28000", "TLS is required: connect with sslmode=require (or verify-full with the gateway CA)", "The password is your access token; Airlock does not accept it in clear text.");
      }
      validateStartup(startup);
      const unknownOptions = Object.keys(startup.params).filter((k) => k.startsWith("_pq_."));
      if (startup.protocolVersion !== PROTOCOL_3_0 || unknownOptions.length) {
        // Newer clients may ask for 3.2 or protocol extensions: we speak 3.0 and say so.
        stream.write(writeBackend({ type: "NegotiateProtocolVersion", newestMinorVersion: 0, unrecognizedOptions: unknownOptions }));
      }
      stream.write(writeBackend({ type: "AuthenticationCleartextPassword" }));
      reader.setAuthResponseKind("password");
      const pw = await readNext(stream, reader);
      reader.setAuthResponseKind(undefined);
      if (pw.type !== "PasswordMessage") throw new PgFatal("08P01", `expected a password message, got ${pw.type}`);
      const principal = await this.o.identity.verify(pw.password, { via: "postgres", clientAddr: socket.remoteAddress?.replace(/^::ffff:/, "") ?? null }).catch((err: unknown) => {
        const e = AirlockError.from(err);
        throw new PgFatal(e.code === "STORE_UNAVAILABLE" ? "58000" : "28P01", `password authentication failed: ${e.message}`, "Use an Airlock access token (airlock login, airlock tokens create), a service account token or a trusted IdP's JWT as the password.");
      });
      const dbParam = startup.params.database ?? "";
      const slash = dbParam.indexOf("/");
      const connectionName = slash < 0 ? dbParam : dbParam.slice(0, slash);
      const database = slash < 0 ? null : dbParam.slice(slash + 1) || null;
      if (!connectionName) throw new PgFatal("3D000", "no connection named: use the connection name as the database (CONNECTION or CONNECTION/dbname)");
      const s = stream;
      const client: ClientConn = {
        stream: s,
        sendError: (err) => {
          if (!s.destroyed && s.writable) s.end(fatalFrame(err));
        },
      };
      const engine = new PostgresEngine(this.o.engine, { reader, startup, database });
      const addr = socket.remoteAddress ?? null;
      const res = await runSession(this.o.run, engine, client, { principal, connectionName, clientAddr: addr?.replace(/^::ffff:/, "") ?? null });
      if (!s.destroyed) s.end();
      void res;
    } catch (err) {
      if (!stream.destroyed && stream.writable) stream.end(fatalFrame(err));
      throw err;
    }
  }
}
