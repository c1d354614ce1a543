import type { IncomingMessage } from "node:http";
import net from "node:net";
import { WebSocket } from "ws";
import { AirlockError, isErrorCode, relay, WS_SUBPROTOCOL, WsByteStream } from "@airlock/shared";

export interface ConnectOptions {
  gateway: string;
  token: string;
  connection: string;
}

function wsUrl(gateway: string, connection: string): string {
  const u = new URL(gateway);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = `${u.pathname.replace(/\/$/, "")}/api/v1/connections/${encodeURIComponent(connection)}/connect`;
  return u.toString();
}

/** Opens one tunnelled byte stream to a connection; resolves once the gateway has reached the target. */
export function openTunnel(opts: ConnectOptions): Promise<{ stream: WsByteStream; sessionId: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(opts.gateway, opts.connection), WS_SUBPROTOCOL, {
      headers: { authorization: `Bearer ${opts.token}` },
      perMessageDeflate: false,
      maxPayload: 1024 * 1024,
    });
    // A refused upgrade carries problem JSON: surface its reason, not "Unexpected server response".
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        let code = "UNAUTHENTICATED";
        let detail = `gateway answered HTTP ${res.statusCode}`;
        try {
          const p = JSON.parse(body) as { code?: string; detail?: string };
          code = p.code ?? code;
          detail = p.detail ?? detail;
        } catch {
          // not JSON; keep the status line
        }
        reject(new AirlockError(isErrorCode(code) ? code : "INTERNAL", detail));
        ws.terminate(); // only after the body: terminating first would win the race with a vaguer error
      });
    });
    const stream = new WsByteStream(ws);
    // Until the caller owns the stream, failures arrive through the ready promise.
    const early = () => {};
    stream.on("error", early);
    ws.once("error", (err) => reject(new AirlockError("LINK_LOST", `cannot reach the gateway: ${err.message}`)));
    stream.ready.then((sessionId) => {
      stream.off("error", early);
      resolve({ stream, sessionId });
    }, reject);
  });
}

/**
 * `airlock connect`: a local listener whose every accepted socket becomes one
 * session through the gateway. Each socket's failure is reported on stderr and
 * does not affect the others.
 */
export async function listenAndForward(
  opts: ConnectOptions & { host: string; port: number },
  report: (msg: string) => void,
): Promise<net.Server & { settled(graceMs: number): Promise<void> }> {
  const live = new Set<Promise<unknown>>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: 256 * 1024 }, (socket) => {
    socket.pause(); // hold the client's first bytes until the target is reached
    socket.on("error", () => {}); // relay reports it
    openTunnel(opts).then(
      ({ stream, sessionId }) => {
        report(`session ${sessionId}: ${socket.remoteAddress}:${socket.remotePort} → ${opts.connection}`);
        socket.resume();
        const done = relay(socket, stream).then((r) => {
          if (r.error) report(`session ${sessionId}: ended with ${r.error.code}: ${r.error.message}`);
        });
        live.add(done);
        void done.finally(() => live.delete(done));
      },
      (err: AirlockError) => {
        report(`connection to ${opts.connection} failed: ${err.code}: ${err.message}`);
        socket.destroy();
      },
    );
  });
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(opts.port, opts.host, () => res());
  });
  /** Resolves once sessions in flight have ended, or after graceMs. */
  const settled = (graceMs: number) =>
    Promise.race([Promise.all([...live]).then(() => undefined), new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
  return Object.assign(server, { settled });
}
