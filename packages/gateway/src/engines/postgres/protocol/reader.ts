// Streaming message framing for PostgreSQL protocol v3, no I/O: feed it whatever chunks the
// socket produced, get whole decoded messages back.
// Framing: https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
// Flow:    https://www.postgresql.org/docs/current/protocol-flow.html
//
// Buffering: pushed chunks are queued by reference. A message that lies inside one chunk is
// returned as a view of it (zero-copy); one that spans chunks is copied once, into a buffer of
// exactly its size, when its last byte arrives. So many small messages cost no copies and a large
// DataRow arriving in N pieces costs one O(size) concatenation, never O(size²). The length word is
// validated as soon as its 4 bytes are in, before any body is buffered or allocated, so a hostile
// length cannot make us allocate more than the limit. Do not mutate a chunk after pushing it.
//
// Failure is final: after the first error every push rethrows it. Once framing is lost there is
// no way to find the next message boundary, which is why the server also closes the connection.
import {
  AUTH_MESSAGE_LIMIT,
  DEFAULT_MAX_MESSAGE_SIZE,
  FrontendTag,
  MAX_LENGTH_WORD,
  MAX_STARTUP_PACKET_LENGTH,
  SMALL_MESSAGE_LIMIT,
} from "./constants.js";
import { decodeBackend, isBackendTag } from "./decode-backend.js";
import { decodeFrontend, decodeStartupPacket, isFrontendTag } from "./decode-frontend.js";
import { PgProtocolError, SqlState, protocolViolation } from "./errors.js";
import type { AuthResponseKind, BackendMessage, FrontendMessage } from "./types.js";

export interface ReaderOptions {
  /**
   * Largest accepted length word (it counts itself but not the tag byte), default 64 MiB.
   * PostgreSQL's own ceiling is 1 GiB - 1; anything larger fails with MESSAGE_TOO_LARGE (54000).
   */
  maxMessageSize?: number;
}

const EMPTY = Buffer.alloc(0);

abstract class MessageReader<M> {
  protected readonly maxMessageSize: number;
  private chunks: Buffer[] = [];
  private head = 0; // index of the first chunk with unread bytes
  private offset = 0; // bytes of chunks[head] already consumed
  protected buffered = 0;
  private failure: PgProtocolError | undefined;
  /** Bytes of the message most recently decoded (every message is exactly one take). */
  private lastFrame: Buffer = EMPTY;

  constructor(options: ReaderOptions = {}) {
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isInteger(max) || max < 8 || max > MAX_LENGTH_WORD) throw new RangeError(`invalid maxMessageSize ${max}`);
    this.maxMessageSize = max;
  }

  /** Bytes received but not yet part of a complete message. Non-zero at EOF means a truncated stream. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The error that put this reader in its failed state, if any. */
  get error(): PgProtocolError | undefined {
    return this.failure;
  }

  /** Feeds a chunk and returns every message it completed (possibly none). */
  push(chunk: Uint8Array): M[] {
    const out: M[] = [];
    this.feed(chunk, (m) => out.push(m));
    return out;
  }

  /**
   * Callback flavour of push: messages completed before a protocol error are still delivered
   * (e.g. the ErrorResponse a server sent just before garbage). An exception thrown by the callback
   * propagates without failing the reader; unread bytes stay queued for the next feed.
   */
  feed(chunk: Uint8Array, onMessage: (message: M, frame: Buffer) => void): void {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) this.enqueue(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    for (;;) {
      let message: M | undefined;
      try {
        message = this.next();
      } catch (err) {
        this.failure =
          err instanceof PgProtocolError ? err : protocolViolation("MALFORMED_MESSAGE", "undecodable message", err);
        throw this.failure;
      }
      if (message === undefined) return;
      // The frame's exact bytes, so a proxy can forward an unchanged message without re-encoding.
      onMessage(message, this.lastFrame);
    }
  }

  /** Decodes the next complete message, or returns undefined if more bytes are needed. */
  protected abstract next(): M | undefined;

  private enqueue(chunk: Buffer): void {
    // Drop consumed slots once they are half the queue, so a long-lived reader stays O(1) amortised.
    if (this.head > 0 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Byte at position i of the unread stream (i < buffered). */
  protected peekByte(i: number): number {
    let at = this.offset + i;
    for (let k = this.head; ; k++) {
      const c = this.chunks[k]!;
      if (at < c.length) return c[at]!;
      at -= c.length;
    }
  }

  /** Int32 at position i of the unread stream (i + 4 <= buffered). */
  protected peekInt32(i: number): number {
    const first = this.chunks[this.head]!;
    if (this.offset + i + 4 <= first.length) return first.readInt32BE(this.offset + i);
    return ((this.peekByte(i) << 24) | (this.peekByte(i + 1) << 16) | (this.peekByte(i + 2) << 8) | this.peekByte(i + 3)) | 0;
  }

  /** Removes and returns the next n bytes (n <= buffered): a view if contiguous, else one exact copy. */
  protected take(n: number): Buffer {
    this.lastFrame = this.takeBytes(n);
    return this.lastFrame;
  }

  private takeBytes(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[this.head]!;
    if (this.offset + n <= first.length) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.advance();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const len = Math.min(c.length - this.offset, n - filled);
      c.copy(out, filled, this.offset, this.offset + len);
      filled += len;
      this.offset += len;
      if (this.offset === c.length) this.advance();
    }
    return out;
  }

  private advance(): void {
    this.chunks[this.head] = EMPTY; // release the chunk for GC
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    }
  }

  /** Validates a tagged message's length word against `limit`; returns the frame size (tag included). */
  protected frameSize(tag: number, limit: number): number {
    const len = this.peekInt32(1);
    if (len < 4) throw protocolViolation("INVALID_MESSAGE_LENGTH", `invalid message length ${len} for type ${tag}`);
    if (len > limit) {
      throw new PgProtocolError("MESSAGE_TOO_LARGE", SqlState.ProgramLimitExceeded, `message of type ${tag} is ${len} bytes, limit is ${limit}`);
    }
    return len + 1;
  }
}

/** Where a FrontendReader is in the connection's life. */
export type FrontendPhase = "startup" | "messages" | "closed";

/**
 * Parses what a client sends to a server. The first packet is untagged (StartupMessage,
 * SSLRequest, GSSENCRequest or CancelRequest); after SSLRequest or GSSENCRequest the next packet is
 * untagged again (a startup on the now-encrypted, or still-plain, stream); after StartupMessage
 * every message is tagged. CancelRequest and Terminate end the stream: any further byte fails.
 */
export class FrontendReader extends MessageReader<FrontendMessage> {
  private state: FrontendPhase = "startup";
  private sawSSL = false;
  private sawGSS = false;
  private authKind: AuthResponseKind | undefined;

  get phase(): FrontendPhase {
    return this.state;
  }

  /**
   * Tells the reader how to decode the next 'p' messages, which depends on the Authentication
   * request the server sent ("password" after Cleartext/MD5, "sasl-initial" after SASL, "sasl" after
   * SASLContinue, "gss" after GSS/SSPI/GSSContinue). Unset, 'p' is returned raw as AuthResponse.
   */
  setAuthResponseKind(kind: AuthResponseKind | undefined): void {
    this.authKind = kind;
  }

  protected next(): FrontendMessage | undefined {
    if (this.buffered === 0) return undefined;
    if (this.state === "closed") {
      throw protocolViolation("UNEXPECTED_MESSAGE", "data received after CancelRequest or Terminate");
    }
    if (this.state === "startup") return this.nextStartupPacket();
    const tag = this.peekByte(0);
    if (!isFrontendTag(tag)) throw protocolViolation("UNKNOWN_MESSAGE_TYPE", `invalid frontend message type ${tag}`);
    if (this.buffered < 5) return undefined;
    const size = this.frameSize(tag, this.limitFor(tag));
    if (this.buffered < size) return undefined;
    const msg = decodeFrontend(tag, this.take(size).subarray(5), this.authKind);
    if (msg.type === "Terminate") this.state = "closed";
    return msg;
  }

  /** Mirrors the server's per-type caps (see constants.ts) so garbage lengths fail early. */
  private limitFor(tag: number): number {
    switch (tag) {
      case FrontendTag.Close: case FrontendTag.Describe: case FrontendTag.Execute: case FrontendTag.Flush:
      case FrontendTag.Sync: case FrontendTag.Terminate: case FrontendTag.CopyDone:
        return Math.min(SMALL_MESSAGE_LIMIT, this.maxMessageSize);
      case FrontendTag.AuthResponse:
        return Math.min(AUTH_MESSAGE_LIMIT, this.maxMessageSize);
      default:
        return this.maxMessageSize;
    }
  }

  private nextStartupPacket(): FrontendMessage | undefined {
    // A startup length word starts with 0x00 (it is at most 10000); 0x16 is a TLS handshake record:
    // a PG17 client using sslnegotiation=direct, which must be routed to TLS before this reader.
    if (this.peekByte(0) === 0x16) throw protocolViolation("DIRECT_TLS_HANDSHAKE", "TLS handshake where a startup packet was expected");
    if (this.buffered < 4) return undefined;
    const len = this.peekInt32(0);
    if (len < 8) throw protocolViolation("INVALID_MESSAGE_LENGTH", `invalid length of startup packet ${len}`);
    if (len > MAX_STARTUP_PACKET_LENGTH) {
      throw new PgProtocolError("MESSAGE_TOO_LARGE", SqlState.ProgramLimitExceeded, `startup packet is ${len} bytes, limit is ${MAX_STARTUP_PACKET_LENGTH}`);
    }
    if (this.buffered < len) return undefined;
    const msg = decodeStartupPacket(this.take(len));
    switch (msg.type) {
      case "SSLRequest":
      case "GSSENCRequest": {
        const isSSL = msg.type === "SSLRequest";
        if (isSSL ? this.sawSSL : this.sawGSS) throw protocolViolation("UNEXPECTED_MESSAGE", `duplicate ${msg.type}`);
        if (isSSL) this.sawSSL = true;
        else this.sawGSS = true;
        // The client must wait for our one-byte answer; anything already here was sent in clear
        // before the handshake and must not be trusted as part of the encrypted session.
        if (this.buffered > 0) {
          throw protocolViolation("UNENCRYPTED_DATA_AFTER_NEGOTIATION", `received unencrypted data after ${msg.type}`);
        }
        break;
      }
      case "CancelRequest":
        this.state = "closed";
        break;
      case "StartupMessage":
        this.state = "messages";
        break;
    }
    return msg;
  }
}

/**
 * Parses what a server sends to a client. All messages are tagged, except the one-byte answer to
 * an SSLRequest/GSSENCRequest, which the caller announces with expectEncryptionResponse().
 */
export class BackendReader extends MessageReader<BackendMessage> {
  private expecting: "ssl" | "gss" | undefined;

  /**
   * The next byte answers the SSLRequest ('S'/'N') or GSSENCRequest ('G'/'N') just sent. A server
   * may instead send an ErrorResponse, which is parsed normally (and must not be shown to users:
   * the server is not authenticated yet).
   */
  expectEncryptionResponse(kind: "ssl" | "gss"): void {
    this.expecting = kind;
  }

  protected next(): BackendMessage | undefined {
    if (this.buffered === 0) return undefined;
    const tag = this.peekByte(0);
    if (this.expecting !== undefined && tag !== 0x45) {
      const kind = this.expecting;
      this.expecting = undefined;
      this.take(1);
      const yes = kind === "ssl" ? 0x53 : 0x47;
      if (tag !== yes && tag !== 0x4e) {
        throw protocolViolation("UNEXPECTED_MESSAGE", `invalid response ${tag} to ${kind === "ssl" ? "SSLRequest" : "GSSENCRequest"}`);
      }
      // The server must say nothing more until we speak again; extra bytes could be a MITM's.
      if (this.buffered > 0) {
        throw protocolViolation("UNENCRYPTED_DATA_AFTER_NEGOTIATION", "received unencrypted data after encryption response");
      }
      return kind === "ssl" ? { type: "SSLResponse", accepted: tag === yes } : { type: "GSSENCResponse", accepted: tag === yes };
    }
    this.expecting = undefined;
    if (!isBackendTag(tag)) throw protocolViolation("UNKNOWN_MESSAGE_TYPE", `invalid backend message type ${tag}`);
    if (this.buffered < 5) return undefined;
    const size = this.frameSize(tag, this.maxMessageSize);
    if (this.buffered < size) return undefined;
    return decodeBackend(tag, this.take(size).subarray(5));
  }
}
