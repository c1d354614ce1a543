import { EventEmitter } from "node:events";
import { AirlockError } from "../errors.js";
import { DEFAULT_MUX_OPTIONS, MAX_WINDOW, type CommonFrame, type MuxOptions } from "./frames.js";
import { MuxStream, type StreamHost } from "./stream.js";

export interface MuxEvents {
  /** The link must be torn down: protocol violation or keepalive timeout. */
  fatal: [err: AirlockError];
}

/**
 * The stream table of one agent link, independent of gRPC so it can be tested
 * over an in-memory pipe. The owner feeds received frames to `receive` and
 * supplies `write`, which returns false when the transport's buffer is full
 * (then calls `onTransportDrain` once it empties).
 *
 * Stream ids are allocated by the opening side only (the gateway), ascending,
 * so an id at or below the highest seen that is no longer in the table
 * belongs to a stream that just ended: frames racing its end are dropped,
 * while frames for ids never opened are protocol errors.
 */
export class Mux extends EventEmitter<MuxEvents> implements StreamHost {
  readonly opts: MuxOptions;
  private readonly streams = new Map<number, MuxStream>();
  private readonly waiting = new Set<MuxStream>();
  private nextId = 1;
  private highestSeen = 0;
  private writable = true;
  /** Data bytes handed to the transport since it last drained. */
  private sinceDrain = 0;
  private dead: AirlockError | null = null;
  private lastReceived = Date.now();
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private pingNonce = 0n;
  /** Send window the peer grants each new stream. */
  peerWindow: number;

  constructor(
    private readonly write: (frame: CommonFrame) => boolean,
    opts: Partial<MuxOptions> = {},
    peerWindow = DEFAULT_MUX_OPTIONS.initialWindow,
  ) {
    super();
    this.opts = { ...DEFAULT_MUX_OPTIONS, ...opts };
    this.peerWindow = peerWindow;
  }

  get maxFrame(): number {
    return this.opts.maxFrame;
  }
  get linkWritable(): boolean {
    return this.writable;
  }
  get size(): number {
    return this.streams.size;
  }
  get isDead(): boolean {
    return this.dead !== null;
  }

  /** Opens a new local stream (gateway side). The caller sends the Open frame. */
  openStream(): MuxStream {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    return this.register(id);
  }

  /** Accepts a stream the peer opened (agent side). Returns null for a bad id. */
  acceptStream(id: number): MuxStream | null {
    if (this.dead || id <= this.highestSeen) return null;
    this.highestSeen = id;
    return this.register(id);
  }

  private register(id: number): MuxStream {
    const s = new MuxStream(this, id, { sendWindow: this.peerWindow, recvWindow: this.opts.initialWindow });
    this.streams.set(id, s);
    return s;
  }

  // ---- StreamHost ----------------------------------------------------------

  send(frame: CommonFrame): void {
    if (this.dead) return;
    const ok = this.write(frame);
    if (frame.case === "data") this.sinceDrain += frame.value.payload.length;
    // The transport says "full" after every large frame (gRPC/HTTP/2 buffers
    // are 16 KiB); stopping there would leave one frame in flight per round
    // trip. We keep writing until `linkBuffer` bytes await a drain instead;
    // per-stream windows still bound the total.
    if (!ok && this.sinceDrain >= this.opts.linkBuffer) this.writable = false;
  }

  waitForLink(stream: MuxStream): void {
    this.waiting.add(stream);
  }

  release(stream: MuxStream): void {
    this.streams.delete(stream.id);
    this.waiting.delete(stream);
  }

  /** The transport emptied its buffer: let waiting streams continue, in turn. */
  onTransportDrain(): void {
    this.writable = true;
    this.sinceDrain = 0;
    for (const s of this.waiting) {
      if (!this.writable) break;
      this.waiting.delete(s);
      s.pump();
    }
  }

  // ---- receiving -----------------------------------------------------------

  /** Handles one common frame from the peer. Violations make the link fatal. */
  receive(frame: CommonFrame): void {
    if (this.dead) return;
    this.lastReceived = Date.now();
    switch (frame.case) {
      case "data": {
        const s = this.lookup(frame.value.streamId, "Data");
        if (s && !s.receiveData(frame.value.payload)) {
          this.fail("FLOW_CONTROL_VIOLATION", `stream ${s.id}: data beyond the granted window or after half-close`);
        }
        return;
      }
      case "windowUpdate": {
        const s = this.lookup(frame.value.streamId, "WindowUpdate");
        const inc = frame.value.increment;
        if (s && (inc === 0 || inc > MAX_WINDOW || !s.addCredit(inc))) {
          this.fail("FLOW_CONTROL_VIOLATION", `stream ${s.id}: invalid window increment ${inc}`);
        }
        return;
      }
      case "halfClose": {
        const s = this.lookup(frame.value.streamId, "HalfClose");
        if (s && !s.receiveHalfClose()) this.fail("LINK_PROTOCOL_ERROR", `stream ${s.id}: duplicate HalfClose`);
        return;
      }
      case "close": {
        const s = this.lookup(frame.value.streamId, "Close");
        s?.receiveClose(frame.value.errorCode, frame.value.errorMessage);
        return;
      }
      case "ping":
        this.send({ case: "pong", value: { $typeName: "airlock.tunnel.v1.Pong", nonce: frame.value.nonce } });
        return;
      case "pong":
        return;
      case "error":
        this.fail("LINK_LOST", `peer reported ${frame.value.code}: ${frame.value.message}`);
        return;
    }
  }

  /** Ids at or below the high-water mark are streams that just ended: ignore. */
  private lookup(id: number, what: string): MuxStream | undefined {
    const s = this.streams.get(id);
    if (s) return s;
    const highest = Math.max(this.highestSeen, this.nextId - 1);
    if (id === 0 || id > highest) this.fail("LINK_PROTOCOL_ERROR", `${what} for stream ${id}, which was never opened`);
    return undefined;
  }

  /** Records a link-level failure: every stream ends with it, then `fatal` fires once. */
  fail(code: AirlockError["code"], message: string): void {
    this.shutdown(new AirlockError(code, message));
  }

  shutdown(err: AirlockError): void {
    if (this.dead) return;
    this.dead = err;
    this.stopKeepalive();
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.waiting.clear();
    for (const s of streams) s.destroy(err);
    this.emit("fatal", err);
  }

  // ---- keepalive -----------------------------------------------------------

  /** Pings on an interval and fails the link when the peer goes quiet. */
  startKeepalive(): void {
    if (this.opts.keepaliveIntervalMs <= 0 || this.keepaliveTimer) return;
    this.lastReceived = Date.now();
    this.keepaliveTimer = setInterval(() => {
      const silent = Date.now() - this.lastReceived;
      if (silent > this.opts.keepaliveTimeoutMs) {
        this.fail("LINK_TIMEOUT", `no frame from the peer for ${silent} ms`);
        return;
      }
      this.pingNonce++;
      this.send({ case: "ping", value: { $typeName: "airlock.tunnel.v1.Ping", nonce: this.pingNonce } });
    }, this.opts.keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  /** Counts a frame the owner handled itself (e.g. Open) as a sign of life. */
  touch(): void {
    this.lastReceived = Date.now();
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
  }
}
