import { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { AirlockError, isErrorCode } from "./errors.js";

/**
 * Byte-stream framing over one WebSocket (subprotocol `airlock.tcp.v1`), used
 * between `airlock connect` and the gateway:
 *   binary message → payload bytes, in order
 *   text message   → JSON control: {"type":"ready","sessionId"} once the target
 *                    is reached, {"type":"eof"} for half-close (TCP FIN, which
 *                    WebSocket itself cannot express), {"type":"error","code","message"}
 *                    before the sender closes.
 */
export const WS_SUBPROTOCOL = "airlock.tcp.v1";

export type WsControl =
  | { type: "ready"; sessionId: string }
  | { type: "eof" }
  | { type: "error"; code: string; message: string };

/** Close codes in the private range, so a client can tell our failures apart. */
export const WS_CLOSE = { normal: 1000, error: 4000, stalled: 4008, unauthorized: 4001 } as const;

/** Largest message we send; both ends accept up to 1 MiB. */
const MAX_MESSAGE = 512 * 1024;

/** Queue at most this much in the socket before we stop reading our source. */
const SEND_HIGH_WATER = 4 * 1024 * 1024;

/**
 * A Duplex over a WebSocket speaking the framing above, with backpressure both
 * ways: writes wait while the socket's send buffer is over the high-water mark,
 * and the socket is paused while our readable side is full.
 */
export class WsByteStream extends Duplex {
  private pendingCb: ((err?: Error | null) => void) | null = null;
  private blockedSince = 0;
  private gotEof = false;
  /** Resolves with the session id once the far end says the target is reached. */
  readonly ready: Promise<string>;
  private resolveReady!: (id: string) => void;
  private rejectReady!: (e: AirlockError) => void;

  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {});
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer, isBinary: boolean) => (isBinary ? this.onData(data) : this.onText(data.toString("utf8"))));
    ws.on("close", (code: number, reason: Buffer) => {
      // Both sides sent eof: autoDestroy closes us once our reader has drained.
      if (this.destroyed || (this.gotEof && this.writableFinished)) return;
      const why = reason.toString() || `WebSocket closed (${code})`;
      this.destroy(code === WS_CLOSE.normal ? undefined : new AirlockError("LINK_LOST", why));
    });
    ws.on("error", (err: Error) => this.destroy(new AirlockError("LINK_LOST", `WebSocket: ${err.message}`, { cause: err })));
  }

  private onData(data: Buffer): void {
    if (this.gotEof) {
      this.destroy(new AirlockError("INVALID_ARGUMENT", "data after eof"));
      return;
    }
    if (!this.push(data)) this.ws.pause();
  }

  private onText(text: string): void {
    let msg: WsControl;
    try {
      msg = JSON.parse(text) as WsControl;
    } catch {
      return void this.destroy(new AirlockError("INVALID_ARGUMENT", "malformed control message"));
    }
    if (msg.type === "ready") this.resolveReady(msg.sessionId);
    else if (msg.type === "eof") {
      this.gotEof = true;
      this.push(null);
    } else if (msg.type === "error") {
      const err = new AirlockError(isErrorCode(msg.code) ? msg.code : "INTERNAL", msg.message);
      this.rejectReady(err);
      this.destroy(err);
    }
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ws.send(chunk, { binary: true }, (err) => {
      if (err) return this.pendingCb ? (this.pendingCb(err), (this.pendingCb = null)) : undefined;
      if (this.pendingCb && this.ws.bufferedAmount < SEND_HIGH_WATER) {
        const p = this.pendingCb;
        this.pendingCb = null;
        p();
      }
    });
    if (this.ws.bufferedAmount < SEND_HIGH_WATER) return cb();
    this.pendingCb = cb;
    this.blockedSince = Date.now();
  }

  /** Chunks queued while the socket was busy go out as one message (ws caps at 1 MiB). */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (chunks.length === 1) return this._write(chunks[0]!.chunk, "binary", cb);
    const all = Buffer.concat(chunks.map((c) => c.chunk));
    for (let off = 0; off < all.length; off += MAX_MESSAGE) {
      const last = off + MAX_MESSAGE >= all.length;
      this._write(all.subarray(off, off + MAX_MESSAGE), "binary", last ? cb : () => {});
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sendControl({ type: "eof" });
    cb();
    if (this.gotEof) this.ws.close(WS_CLOSE.normal);
  }

  sendControl(msg: WsControl): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** How long writes have waited on a peer that does not read (0 when flowing). */
  get stalledForMs(): number {
    return this.pendingCb ? Date.now() - this.blockedSince : 0;
  }

  /** Tells the peer why, then closes. */
  fail(err: AirlockError): void {
    this.sendControl({ type: "error", code: err.code, message: err.message });
    this.ws.close(err.code === "CLIENT_STALLED" ? WS_CLOSE.stalled : WS_CLOSE.error, err.message.slice(0, 120));
    this.destroy(err);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.rejectReady(err instanceof AirlockError ? err : new AirlockError("LINK_LOST", err?.message ?? "connection closed"));
    if (this.pendingCb) {
      this.pendingCb(err);
      this.pendingCb = null;
    }
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      if (err) this.ws.close(WS_CLOSE.error, err.message.slice(0, 120));
      else this.ws.close(WS_CLOSE.normal);
    }
    cb(err);
  }
}
