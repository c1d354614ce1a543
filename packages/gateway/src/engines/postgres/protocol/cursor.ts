// Bounds-checked sequential reads over one message body. Every overrun becomes a
// MALFORMED_MESSAGE (08P01) PgProtocolError, so decoders never throw RangeError on hostile input.
// Wire data types: https://www.postgresql.org/docs/current/protocol-message-types.html
import { protocolViolation } from "./errors.js";

export class Cursor {
  private pos = 0;

  /** `what` names the message in error texts. */
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(reason: string): never {
    throw protocolViolation("MALFORMED_MESSAGE", `malformed ${this.what}: ${reason}`);
  }

  private need(n: number): number {
    if (this.buf.length - this.pos < n) this.fail("insufficient data left in message");
    const at = this.pos;
    this.pos += n;
    return at;
  }

  uint8(): number {
    return this.buf[this.need(1)]!;
  }

  int8(): number {
    return this.buf.readInt8(this.need(1));
  }

  int16(): number {
    return this.buf.readInt16BE(this.need(2));
  }

  /** Counts are Int16 on paper but the server reads them unsigned (up to 65535). */
  uint16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }

  int32(): number {
    return this.buf.readInt32BE(this.need(4));
  }

  uint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }

  /** Null-terminated string; a missing terminator is malformed, not "read to the end". */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) this.fail("unterminated string");
    const s = this.buf.toString("utf8", this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** Zero-copy view of the next n bytes. */
  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  /** Zero-copy view of everything left. */
  rest(): Buffer {
    const at = this.pos;
    this.pos = this.buf.length;
    return this.buf.subarray(at);
  }

  /** Int32 length (-1 = NULL) followed by that many bytes; other negatives are malformed. */
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < 0) this.fail(`invalid value length ${len}`);
    return this.bytes(len);
  }

  /** Int16 count then that many Int16 format codes. */
  int16Array(): number[] {
    const n = this.uint16();
    this.expectAtLeast(n, 2);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.int16();
    return out;
  }

  /** Int16 count then that many UInt32 OIDs. */
  oidArray(): number[] {
    const n = this.uint16();
    this.expectAtLeast(n, 4);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.uint32();
    return out;
  }

  /** Int16 count then that many nullable byte values (Bind parameters, DataRow, FunctionCall args). */
  nullableBytesArray(): (Buffer | null)[] {
    const n = this.uint16();
    this.expectAtLeast(n, 4);
    const out = new Array<Buffer | null>(n);
    for (let i = 0; i < n; i++) out[i] = this.nullableBytes();
    return out;
  }

  /**
   * Rejects a count that cannot possibly fit before allocating for it: a 10-byte message
   * claiming 65535 columns fails here, not after building a 65535-slot array.
   */
  expectAtLeast(count: number, bytesEach: number): void {
    if (count * bytesEach > this.remaining) this.fail(`count ${count} exceeds message length`);
  }

  /** The server rejects trailing garbage (pq_getmsgend); so do we. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail("unexpected trailing data");
  }
}
