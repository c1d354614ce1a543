import net from "node:net";
import tls from "node:tls";
import type { Open } from "@airlock/proto";
import { AirlockError } from "@airlock/shared";

/**
 * Dials the target named in an Open frame. Sockets are half-open capable so
 * a client's FIN reaches the target as a FIN, not as a full close.
 */
export function dialTarget(open: Open): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const timeoutMs = open.connectTimeoutMs || 10_000;
    const t = open.tls;
    const socket = t?.enabled
      ? tls.connect({
          host: open.host,
          port: open.port,
          servername: t.serverName || (net.isIP(open.host) ? undefined : open.host),
          rejectUnauthorized: t.verify,
          ca: t.caPem || undefined,
          // Honoured by tls.connect (passed on to the TLSSocket) but missing from its types.
          ...({ allowHalfOpen: true } as object),
        })
      : net.connect({ host: open.host, port: open.port, allowHalfOpen: true, ...({ writableHighWaterMark: 256 * 1024 } as object) });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new AirlockError("STREAM_REFUSED", `connect to ${open.host}:${open.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(new AirlockError("STREAM_REFUSED", `connect to ${open.host}:${open.port} failed: ${err.message}`, { cause: err }));
    };
    socket.once("error", onError);
    socket.once(t?.enabled ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}
