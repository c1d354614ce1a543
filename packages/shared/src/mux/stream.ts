import { Duplex } from "node:stream";
import { AirlockError, isErrorCode } from "../errors.js";
import type { CommonFrame } from "./frames.js";

/** What a stream needs from the link that carries it. */
export interface StreamHost {
  readonly maxFrame: number;
  /** False while the link's own buffer is full; streams then wait for `onLinkDrain`. */
  readonly linkWritable: boolean;
  send(frame: CommonFrame): void;
  waitForLink(stream: MuxStream): void;
  /** Called once the stream is done in both directions or destroyed. */
  release(stream: MuxStream, reset: boolean): void;
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  cb: (err?: Error | null) => void;
}

/**
 * One logical byte stream on a link, as a Node Duplex so callers can `pipe`
 * it to sockets and get backpressure for free.
 *
 * Flow control is credit based, per stream: we may have at most `sendWindow`
 * bytes in flight; the peer returns credit (WindowUpdate) once its consumer has
 * read them. On our receive side credit is returned from `_read`, i.e. only
 * when our own consumer wants more, so a slow reader stops the far sender
 * without growing memory beyond one window per stream.
 */
export class MuxStream extends Duplex {
  readonly id: number;
  private sendWindow: number;
  private readonly recvWindow: number;
  /** Total bytes the peer may have sent: the initial window plus every credit returned. */
  private granted: number;
  private readonly creditThreshold: number;
  private pending: PendingWrite | null = null;
  private sentHalfClose = false;
  private gotHalfClose = false;
  private released = false;
  bytesIn = 0;

  constructor(
    private readonly host: StreamHost,
    id: number,
    opts: { sendWindow: number; recvWindow: number },
  ) {
    // Half-open is the point: TCP half-close travels as HalfClose frames.
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.id = id;
    this.sendWindow = opts.sendWindow;
    this.recvWindow = opts.recvWindow;
    this.granted = opts.recvWindow;
    this.creditThreshold = Math.max(1, Math.floor(opts.recvWindow / 4));
  }

  // ---- sending ---------------------------------------------------------

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, offset: 0, cb };
    this.pump();
  }

  /**
   * Chunks that queued up while we waited for credit or for the link are sent
   * as few large frames: per-frame cost, not bytes, dominates the link's CPU.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this._write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), "binary", cb);
  }

  /** Sends as much of the pending write as credit and the link allow. */
  pump(): void {
    const p = this.pending;
    if (!p || this.destroyed) return;
    while (p.offset < p.chunk.length) {
      if (this.sendWindow <= 0) return; // resumed by addCredit
      if (!this.host.linkWritable) {
        this.host.waitForLink(this);
        return;
      }
      const n = Math.min(p.chunk.length - p.offset, this.sendWindow, this.host.maxFrame);
      const payload = p.chunk.subarray(p.offset, p.offset + n);
      p.offset += n;
      this.sendWindow -= n;
      this.host.send({ case: "data", value: { $typeName: "airlock.tunnel.v1.Data", streamId: this.id, payload } });
    }
    this.pending = null;
    p.cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sentHalfClose = true;
    this.host.send({ case: "halfClose", value: { $typeName: "airlock.tunnel.v1.HalfClose", streamId: this.id } });
    cb();
    this.maybeRelease();
  }

  /** Peer granted more credit. Returns false if the grant overflows a sane window. */
  addCredit(increment: number): boolean {
    this.sendWindow += increment;
    if (this.sendWindow > 2 ** 31 - 1) return false;
    this.pump();
    return true;
  }

  // ---- receiving -------------------------------------------------------

  /** Returns false when the peer exceeded the window we granted (protocol violation). */
  receiveData(payload: Uint8Array): boolean {
    if (this.gotHalfClose) return false;
    if (this.bytesIn + payload.length > this.granted) return false;
    this.bytesIn += payload.length;
    if (this.destroyed) return true; // data racing a local reset is dropped
    this.push(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    return true;
  }

  override _read(): void {
    // Credit covers what our consumer has taken out of the buffer, never what
    // merely sits in it, so at most one window is ever buffered here.
    const taken = this.bytesIn - this.readableLength;
    const increment = taken + this.recvWindow - this.granted;
    if (increment >= this.creditThreshold || (increment > 0 && this.readableLength === 0)) {
      this.granted += increment;
      this.host.send({
        case: "windowUpdate",
        value: { $typeName: "airlock.tunnel.v1.WindowUpdate", streamId: this.id, increment },
      });
    }
  }

  receiveHalfClose(): boolean {
    if (this.gotHalfClose) return false;
    this.gotHalfClose = true;
    this.push(null);
    this.maybeRelease();
    return true;
  }

  /** Peer aborted the stream. */
  receiveClose(code: string, message: string): void {
    this.released = true; // the peer already forgot the stream; don't answer
    this.host.release(this, false);
    const err = code
      ? new AirlockError(isErrorCode(code) ? code : "STREAM_RESET", message || undefined)
      : new AirlockError("STREAM_RESET", message || "stream closed by peer");
    this.destroy(err);
  }

  private maybeRelease(): void {
    if (this.sentHalfClose && this.gotHalfClose && !this.released) {
      this.released = true;
      this.host.release(this, false);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const p = this.pending;
    this.pending = null;
    if (!this.released) {
      this.released = true;
      const code = err instanceof AirlockError ? err.code : "STREAM_RESET";
      this.host.send({
        case: "close",
        value: { $typeName: "airlock.tunnel.v1.Close", streamId: this.id, errorCode: code, errorMessage: err?.message ?? "" },
      });
      this.host.release(this, true);
    }
    p?.cb(err ?? new AirlockError("STREAM_RESET"));
    cb(err);
  }
}
