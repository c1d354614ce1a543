// Growable buffer for encoding one message. Every write validates its value so an out-of-range
// number or a NUL inside a String fails loudly instead of producing a frame that desynchronises
// the peer (a NUL would end a String early and turn the rest of it into the next field).
// Wire data types: https://www.postgresql.org/docs/current/protocol-message-types.html
import { MAX_LENGTH_WORD } from "./constants.js";
import { PgProtocolError, SqlState } from "./errors.js";

export class Builder {
  private buf: Buffer;
  private pos = 0;
  private readonly lengthAt: number;

  /**
   * `tag` null for the untagged startup-phase packets. `estimate` is the expected body size: a good
   * one (e.g. the sum of DataRow values) avoids re-copying large payloads while growing.
   */
  constructor(tag: number | null, estimate = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(64, estimate + 16));
    if (tag !== null) this.buf[this.pos++] = tag;
    this.lengthAt = this.pos;
    this.pos += 4; // length word, patched by finish()
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    checkInt(v, 0, 0xff, "Byte1");
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  i8(v: number): this {
    checkInt(v, -0x80, 0x7f, "Int8");
    this.ensure(1);
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }

  i16(v: number): this {
    checkInt(v, -0x8000, 0x7fff, "Int16");
    this.ensure(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }

  /** Counts: Int16 on paper, read unsigned by the server, so 0..65535. */
  count(v: number): this {
    checkInt(v, 0, 0xffff, "count");
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }

  i32(v: number): this {
    checkInt(v, -0x8000_0000, 0x7fff_ffff, "Int32");
    this.ensure(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }

  /** OIDs and version words. */
  u32(v: number): this {
    checkInt(v, 0, 0xffff_ffff, "UInt32");
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }

  /** Null-terminated UTF-8 string. `nonEmpty` where an empty string would read as a list terminator. */
  cstr(s: string, nonEmpty = false): this {
    if (s.includes("\0")) throw new PgProtocolError("INVALID_STRING", SqlState.CharacterNotInRepertoire, "string contains a NUL character");
    if (nonEmpty && s.length === 0) throw new PgProtocolError("INVALID_STRING", SqlState.CharacterNotInRepertoire, "empty string would end the list");
    const n = Buffer.byteLength(s, "utf8");
    this.ensure(n + 1);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Int32 length (-1 for NULL) then the bytes. */
  nullable(b: Uint8Array | null): this {
    if (b === null) return this.i32(-1);
    return this.i32(b.length).bytes(b);
  }

  /** Patches the length word (which counts itself, not the tag) and returns the frame. */
  finish(): Buffer {
    const len = this.pos - this.lengthAt;
    if (len > MAX_LENGTH_WORD) {
      throw new PgProtocolError("MESSAGE_TOO_LARGE", SqlState.ProgramLimitExceeded, `message of ${len} bytes exceeds the Int32 length word`);
    }
    this.buf.writeInt32BE(len, this.lengthAt);
    return this.buf.subarray(0, this.pos);
  }
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new PgProtocolError("VALUE_OUT_OF_RANGE", SqlState.NumericValueOutOfRange, `${what} value ${v} out of range`);
  }
}

/** Sum of payload sizes plus per-value length words, as a Builder estimate. */
export function payloadSize(values: readonly (Uint8Array | null)[]): number {
  let n = 0;
  for (const v of values) n += 4 + (v === null ? 0 : v.length);
  return n;
}
