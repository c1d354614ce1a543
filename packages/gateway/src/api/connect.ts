import type { FastifyPluginAsync } from "fastify";
import { AirlockError, WS_SUBPROTOCOL, WsByteStream } from "@airlock/shared";
import type { ClientConn } from "../engines/engine.js";
import { runSession, type RunDeps } from "../engines/run.js";
import { TcpEngine } from "../engines/tcp/engine.js";
import { PostgresEngine, type PostgresEngineDeps } from "../engines/postgres/engine.js";
import type { Recordings } from "../recordings/service.js";
import { principalOf } from "./auth.js";

export interface ConnectRoutesOptions {
  deps: RunDeps;
  postgres: PostgresEngineDeps;
  clientStallTimeoutMs: number;
  /** Byte recordings of raw TCP sessions (null or absent: not recorded). */
  recordings?: Recordings | null;
}

/**
 * `airlock connect` front door: one WebSocket per client TCP connection,
 * authenticated like every API call (the onRequest hook runs before the
 * upgrade, so a bad token is an HTTP 401 problem, not a dropped socket).
 */
export const connectRoutes: FastifyPluginAsync<ConnectRoutesOptions> = async (app, opts) => {
  const tcp = new TcpEngine(opts.recordings ?? null);
  // Postgres connections get the full engine here too (guardrails, masking, recording,
  // brokered credentials): `airlock connect` must not be a way around them.
  const engineFor = (type: string) => (type === "postgres" ? new PostgresEngine(opts.postgres, null) : tcp);
  app.get<{ Params: { name: string } }>("/connections/:name/connect", { websocket: true }, (socket, req) => {
    const stream = new WsByteStream(socket);
    // Failures are reported to the client and recorded by runSession; the
    // stream's own 'error' event must not become an uncaught exception.
    stream.on("error", () => {});
    if (socket.protocol !== WS_SUBPROTOCOL) {
      stream.fail(new AirlockError("INVALID_ARGUMENT", `WebSocket subprotocol ${WS_SUBPROTOCOL} is required`));
      return;
    }
    const client: ClientConn = {
      stream,
      sendError: (err) => stream.fail(err),
      sendReady: (sessionId) => stream.sendControl({ type: "ready", sessionId }),
    };
    // A client that stops reading holds at most the socket's buffers; after the
    // stall timeout it is dropped so it cannot pin an agent stream forever.
    const watchdog = setInterval(() => {
      if (stream.stalledForMs > opts.clientStallTimeoutMs) {
        req.log.warn({ connection: req.params.name, stalledMs: stream.stalledForMs }, "client stopped reading; dropping it");
        stream.fail(new AirlockError("CLIENT_STALLED", `client read nothing for ${Math.round(stream.stalledForMs / 1000)} s`));
      }
    }, Math.min(1_000, opts.clientStallTimeoutMs));
    watchdog.unref();
    void runSession(opts.deps, engineFor, client, { principal: principalOf(req), connectionName: req.params.name, clientAddr: req.ip }).finally(() =>
      clearInterval(watchdog),
    );
  });
};
