// TLS to the target, negotiated in-protocol: SSLRequest (Int32 8, Int32 80877103), one untagged
// byte back ('S' go ahead / 'N' no TLS), then the TLS handshake on the same byte stream.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
//
// The stream is the agent tunnel's Duplex, not a socket: tls.connect({ socket }) accepts any Duplex
// (Node wraps non-sockets in a JSStreamSocket), which the tests check with a non-socket Duplex.
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { AirlockError } from "@airlock/shared/errors";
import type { BackendReader } from "../protocol/reader.js";
import { writeFrontend } from "../protocol/writer.js";
import { readUntil } from "./io.js";

export interface TargetTlsOptions {
  /**
   * disable: plain protocol (the tunnel is encrypted up to the agent);
   * require: TLS, no certificate check (protects the agent→target hop from passive sniffing only);
   * verify-full: chain checked against caPem (or the system CAs) and the name against serverName.
   */
  mode: "disable" | "require" | "verify-full";
  caPem?: string;
  /** Name the certificate must carry (verify-full), also sent as SNI unless it is an IP literal. */
  serverName?: string;
}

/**
 * Sends SSLRequest and, on 'S', performs the TLS handshake over `stream`. Returns the TLS socket to
 * talk on, paused and with no listener of ours. Fails with TARGET_TLS_FAILED on 'N', on an
 * ErrorResponse (a pre-TLS server) or on a handshake/verification failure.
 */
export async function startTls(stream: Duplex, reader: BackendReader, options: TargetTlsOptions): Promise<tls.TLSSocket> {
  const connectOptions = tlsConnectOptions(options);
  let accepted = false;
  reader.expectEncryptionResponse("ssl");
  stream.write(writeFrontend({ type: "SSLRequest" }));
  await readUntil(stream, reader, (message) => {
    if (message.type === "SSLResponse") {
      accepted = message.accepted;
      return true;
    }
    // Only a server older than 7.0 answers with an error; its text comes from an unauthenticated
    // peer, so it is not shown.
    throw new AirlockError("TARGET_TLS_FAILED", `target answered SSLRequest with ${message.type}`);
  });
  if (!accepted) throw new AirlockError("TARGET_TLS_FAILED", "target does not accept TLS");
  return handshake(stream, connectOptions);
}

function tlsConnectOptions(options: TargetTlsOptions): tls.ConnectionOptions {
  const name = options.serverName;
  // RFC 6066 forbids IP literals in SNI (Node warns); the identity check still uses `host`.
  const sni = name !== undefined && isIP(name) === 0 ? { servername: name } : {};
  // libpq 17 sends this ALPN; PostgreSQL 17+ with direct TLS requires it, older servers ignore it.
  const common = { ALPNProtocols: ["postgresql"], minVersion: "TLSv1.2" as const, ...sni };
  if (options.mode === "require") return { ...common, rejectUnauthorized: false };
  if (options.mode !== "verify-full") throw new AirlockError("TARGET_TLS_FAILED", `unknown TLS mode ${String(options.mode)}`);
  if (name === undefined || name === "") {
    throw new AirlockError("TARGET_TLS_FAILED", "TLS mode verify-full needs the target's serverName");
  }
  // `host` is what checkServerIdentity matches when there is no SNI name (IP literals).
  return { ...common, host: name, rejectUnauthorized: true, ...(options.caPem !== undefined ? { ca: options.caPem } : {}) };
}

function handshake(stream: Duplex, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...options, socket: stream });
    const done = (err?: Error): void => {
      socket.off("secureConnect", onSecure);
      socket.off("error", done);
      socket.off("close", onClose);
      if (err === undefined) {
        socket.pause();
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(new AirlockError("TARGET_TLS_FAILED", `TLS handshake with the target failed: ${err.message}`, { cause: err }));
    };
    const onSecure = (): void => done();
    const onClose = (): void => done(new Error("connection closed during the handshake"));
    socket.once("secureConnect", onSecure);
    socket.on("error", done);
    socket.once("close", onClose);
  });
}
