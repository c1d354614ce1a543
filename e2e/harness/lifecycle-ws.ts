// A raw WebSocket client for the `airlock connect` front door
// (/api/v1/connections/NAME/connect, subprotocol airlock.tcp.v1): lets tests
// see refused upgrades as HTTP responses, read control messages, and misbehave
// (stop reading) in ways the real CLI never does.
import type { IncomingMessage } from "node:http";
import type net from "node:net";
import WebSocket from "ws";

export const SUBPROTOCOL = "airlock.tcp.v1";

export type Upgrade =
  | { kind: "rejected"; status: number; contentType: string; body: Record<string, unknown> | undefined; text: string }
  | { kind: "open"; protocol: string }
  | { kind: "error"; message: string };

export interface RawClient {
  ws: WebSocket;
  /** How the HTTP upgrade went. */
  upgrade: Promise<Upgrade>;
  /** Text (control) messages received, parsed. */
  controls: Array<Record<string, unknown>>;
  /** Resolves with the session id from the first {"type":"ready"} message. */
  ready: Promise<string>;
  /** Binary bytes received so far. */
  received(): number;
  closed: Promise<{ code: number; reason: string; at: number }>;
  /** Stops reading from the TCP socket underneath (a client that never reads). */
  pauseSocket(): void;
}

export function rawConnect(apiUrl: string, connection: string, token: string | undefined, opts: { protocol?: string | null; pauseOnReady?: boolean } = {}): RawClient {
  const url = `${apiUrl.replace(/^http/, "ws")}/api/v1/connections/${encodeURIComponent(connection)}/connect`;
  const protocols = opts.protocol === null ? [] : [opts.protocol ?? SUBPROTOCOL];
  const ws = new WebSocket(url, protocols, {
    headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
    perMessageDeflate: false,
  });
  ws.binaryType = "nodebuffer";
  const controls: Array<Record<string, unknown>> = [];
  let bytes = 0;
  let resolveReady!: (id: string) => void;
  const ready = new Promise<string>((r) => (resolveReady = r));
  const pauseSocket = () => (ws as unknown as { _socket: net.Socket })._socket.pause();
  const upgrade = new Promise<Upgrade>((resolve) => {
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => {
        let body: Record<string, unknown> | undefined;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = undefined;
        }
        resolve({ kind: "rejected", status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body, text });
        ws.terminate();
      });
    });
    ws.once("open", () => resolve({ kind: "open", protocol: ws.protocol }));
    ws.once("error", (err) => resolve({ kind: "error", message: err.message }));
  });
  ws.on("error", () => {});
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      bytes += data.length;
      return;
    }
    const msg = JSON.parse(data.toString()) as Record<string, unknown>;
    controls.push(msg);
    if (msg.type === "ready") {
      if (opts.pauseOnReady) pauseSocket();
      resolveReady(String(msg.sessionId));
    }
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.on("close", (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
  return { ws, upgrade, controls, ready, received: () => bytes, closed, pauseSocket };
}
