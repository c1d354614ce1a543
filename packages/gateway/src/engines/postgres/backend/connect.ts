// Credential brokering: the gateway logs in to the target PostgreSQL with the stored credentials
// over a stream the agent tunnel already connected to host:port, so users never see them.
// Flow: [SSLRequest → 'S' → TLS handshake] → StartupMessage (3.0) → authentication → ParameterStatus*
// BackendKeyData → ReadyForQuery. https://www.postgresql.org/docs/current/protocol-flow.html
//
// On failure the stream (and TLS socket) is destroyed: a half-started connection is useless and
// holds a tunnel stream. Errors carry no password (see startup.ts startupError).
import type { Duplex } from "node:stream";
import { AirlockError } from "@airlock/shared/errors";
import { PROTOCOL_3_0 } from "../protocol/constants.js";
import type { NoticeResponse } from "../protocol/index.js";
import { BackendReader } from "../protocol/reader.js";
import { writeFrontend } from "../protocol/writer.js";
import { asTargetError, readUntil, withDeadline } from "./io.js";
import { StartupExchange } from "./startup.js";
import { startTls, type TargetTlsOptions } from "./tls.js";

export type { TargetTlsOptions } from "./tls.js";

export interface TargetLogin {
  user: string;
  password: string;
  database: string;
  /**
   * Extra startup params to send (application_name, client_encoding, DateStyle, …). `user` and
   * `database` here are ignored (the login's win). The caller decides what a client may pass:
   * `replication` and `options` change what the session can do.
   */
  params: Record<string, string>;
  tls: TargetTlsOptions;
  /** Whole startup, TLS included; default 10 s. */
  timeoutMs?: number;
}

export interface TargetConnection {
  /**
   * The stream to keep talking on: the TLS socket, or the original duplex. Paused, no listeners of
   * ours left attached: attach an 'error' listener at once, and call resume() after adding a 'data'
   * listener (a paused stream stays paused).
   */
  socket: Duplex;
  /**
   * The reader used during startup: it may already hold bytes that arrived after ReadyForQuery;
   * keep feeding it (reader.push(Buffer.alloc(0)) returns messages already complete).
   */
  reader: BackendReader;
  /** ParameterStatus values the server sent during startup, in order. */
  parameters: Array<{ name: string; value: string }>;
  backendKey: { processId: number; secretKey: Buffer } | null;
  /** From the first ReadyForQuery. */
  status: "I" | "T" | "E";
  /** NoticeResponse messages received during startup (forward them to the client). */
  notices: NoticeResponse[];
  /** Which method the server asked for: "scram-sha-256" | "md5" | "password" | "trust". */
  authMethod: string;
}

export const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;

export async function connectTarget(stream: Duplex, login: TargetLogin): Promise<TargetConnection> {
  const timeoutMs = login.timeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const opened: Duplex[] = [stream];
  const destroyAll = (): void => {
    for (const s of opened) s.destroy();
  };
  const work = (async (): Promise<TargetConnection> => {
    const reader = new BackendReader();
    let socket: Duplex = stream;
    if (login.tls.mode !== "disable") {
      socket = await startTls(stream, reader, login.tls);
      opened.push(socket);
    }
    const params: Record<string, string> = { user: login.user, database: login.database };
    for (const [name, value] of Object.entries(login.params)) {
      if (name !== "user" && name !== "database") params[name] = value;
    }
    socket.write(writeFrontend({ type: "StartupMessage", protocolVersion: PROTOCOL_3_0, params }));
    const exchange = new StartupExchange({ user: login.user, password: login.password }, (frame) => socket.write(frame));
    await readUntil(socket, reader, (m) => exchange.onMessage(m));
    return { socket, reader, ...exchange.outcome() };
  })();
  try {
    return await withDeadline(
      work,
      timeoutMs,
      () => new AirlockError("TARGET_PROTOCOL_ERROR", `target did not finish startup in ${timeoutMs} ms`),
      destroyAll,
    );
  } catch (err) {
    destroyAll();
    throw asTargetError(err);
  }
}

export const CANCEL_TIMEOUT_MS = 10_000;

/**
 * Sends a CancelRequest (Int32 16, Int32 80877102, Int32 pid, Byte4 key) on a fresh stream to the
 * target, after SSLRequest + TLS if tls.mode is not "disable", then ends the stream. Resolves when
 * the server has closed the connection (it does so right after reading the request), so the cancel
 * was delivered; PostgreSQL never answers, so success says nothing about whether a query stopped.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export async function cancelOnTarget(
  stream: Duplex,
  key: { processId: number; secretKey: Buffer },
  tls: TargetTlsOptions,
): Promise<void> {
  const opened: Duplex[] = [stream];
  const destroyAll = (): void => {
    for (const s of opened) s.destroy();
  };
  const work = (async (): Promise<void> => {
    let socket: Duplex = stream;
    if (tls.mode !== "disable") {
      socket = await startTls(stream, new BackendReader(), tls);
      opened.push(socket);
    }
    await sendAndAwaitClose(socket, writeFrontend({ type: "CancelRequest", processId: key.processId, secretKey: key.secretKey }));
  })();
  try {
    await withDeadline(
      work,
      CANCEL_TIMEOUT_MS,
      () => new AirlockError("TARGET_PROTOCOL_ERROR", `target did not take the cancel request in ${CANCEL_TIMEOUT_MS} ms`),
      destroyAll,
    );
  } catch (err) {
    throw asTargetError(err);
  } finally {
    destroyAll();
  }
}

/** Writes `frame`, half-closes, and waits for the peer to close. A reset after our bytes left is fine. */
function sendAndAwaitClose(socket: Duplex, frame: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let flushed = false;
    const finish = (err?: Error): void => {
      socket.off("error", onError);
      socket.off("end", onClosed);
      socket.off("close", onClosed);
      if (err === undefined) resolve();
      else reject(new AirlockError("TARGET_PROTOCOL_ERROR", `cancel request to the target failed: ${err.message}`, { cause: err }));
    };
    const onError = (err: Error): void => finish(flushed ? undefined : err);
    const onClosed = (): void => finish(flushed ? undefined : new Error("connection closed before the request was sent"));
    socket.on("error", onError);
    socket.on("end", onClosed);
    socket.on("close", onClosed);
    socket.resume(); // the server sends nothing, but 'end' only fires on a flowing stream
    // The write callback, not end's: 'finish' may come after the peer's FIN on a TLS socket.
    socket.write(frame, () => {
      flushed = true;
    });
    socket.end();
  });
}
