// The byte format of a recording: what crossed the gateway in a stream
// session (raw TCP today, terminals later), as a sequence of frames. One frame
// is one piece of bytes that went one way at one moment:
//
//   offset  size  field
//   0       4     t     u32 big-endian: milliseconds since the recording started
//                       (when the relay began); saturates at 2^32-1 (~49.7 days)
//   4       1     dir   u8: 0 = client→target ("up"), 1 = target→client ("down")
//   5       4     len   u32 big-endian: payload length in bytes
//   9       len   data  the bytes, exactly as relayed
//
// Recordings are stored in chunks (recorder.ts); each chunk holds whole frames
// only, so every chunk decodes on its own. The decoder below takes arbitrary
// pieces of that byte sequence (a chunk as storage streams it back) and never
// holds more than one frame plus one incoming piece.
import { AirlockError } from "@airlock/shared";

export const FRAME_HEADER = 9;
export const DIR_UP = 0;
export const DIR_DOWN = 1;
export type Direction = typeof DIR_UP | typeof DIR_DOWN;

/** The largest t a frame can carry. */
export const MAX_T = 0xffff_ffff;
/** Frames are never larger than a chunk (config allows 16 MiB): anything longer is corruption. */
export const MAX_FRAME = 16 * 1024 * 1024;

export interface Frame {
  t: number;
  dir: Direction;
  data: Buffer;
}

/** The 9-byte header of a frame (the payload follows it). */
export function frameHeader(t: number, dir: Direction, len: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.writeUInt32BE(Math.max(0, Math.min(MAX_T, Math.floor(t))), 0);
  h.writeUInt8(dir, 4);
  h.writeUInt32BE(len, 5);
  return h;
}

export function encodeFrame(f: Frame): Buffer {
  return Buffer.concat([frameHeader(f.t, f.dir, f.data.length), f.data]);
}

/**
 * Incremental decoder: push any split of the byte sequence, get the frames it
 * completes. `end()` throws when the input stopped inside a frame.
 */
export class FrameDecoder {
  private bufs: Buffer[] = [];
  private have = 0;
  private header: { t: number; dir: Direction; len: number } | null = null;

  constructor(private readonly maxFrame = MAX_FRAME) {}

  push(piece: Buffer): Frame[] {
    if (piece.length) {
      this.bufs.push(piece);
      this.have += piece.length;
    }
    const out: Frame[] = [];
    for (;;) {
      if (!this.header) {
        if (this.have < FRAME_HEADER) break;
        const h = this.take(FRAME_HEADER);
        const dir = h.readUInt8(4);
        const len = h.readUInt32BE(5);
        if (dir !== DIR_UP && dir !== DIR_DOWN) throw corrupt(`frame direction ${dir} is neither 0 nor 1`);
        if (len > this.maxFrame) throw corrupt(`frame length ${len} exceeds ${this.maxFrame}`);
        this.header = { t: h.readUInt32BE(0), dir, len };
      }
      if (this.have < this.header.len) break;
      out.push({ t: this.header.t, dir: this.header.dir, data: this.take(this.header.len) });
      this.header = null;
    }
    return out;
  }

  /** Throws unless the input ended on a frame boundary. */
  end(): void {
    if (this.header || this.have) throw corrupt(`input ended inside a frame (${this.have} bytes left over)`);
  }

  /** Removes and returns the next n buffered bytes; copies only when they span pieces. */
  private take(n: number): Buffer {
    this.have -= n;
    const first = this.bufs[0]!;
    if (n === 0) return Buffer.alloc(0);
    if (first.length >= n) {
      if (first.length === n) this.bufs.shift();
      else this.bufs[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const b = this.bufs[0]!;
      const k = Math.min(b.length, n - at);
      b.copy(out, at, 0, k);
      at += k;
      if (k === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(k);
    }
    return out;
  }
}

function corrupt(why: string): AirlockError {
  return new AirlockError("INTERNAL", `recording is corrupt: ${why}`);
}
