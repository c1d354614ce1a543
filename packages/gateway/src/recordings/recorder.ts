// Byte recording of one stream session. Both directions are cut into frames
// (frames.ts) in the order the gateway relays them; frames are batched into
// chunks of at most `chunkBytes` uncompressed bytes, each holding whole frames
// only. A chunk is sealed when full or `flushMs` after its first frame: at that
// moment it gets its idx (from 1), its digest (SHA-256 of its uncompressed
// frames) and its link in the session's hash chain, in seal order. It is then
// compressed (zlib, RFC 1950; as stored blocks for a while after a chunk that
// would not shrink) and stored (storage.ts) and its row written (chunks.ts),
// a few at a time.
//
// Memory is bounded: the open chunk plus sealed chunks not yet stored may hold
// `maxPendingBytes`; above that `hasRoom()` is false and the relay's taps
// (relay.ts) hold the bytes back, so both sides of the session wait for the
// store instead of the gateway buffering.
//
// When a chunk cannot be stored its link is reported lost (a signed tombstone
// explains the gap in the chain) and counted. In record mode "closed" the
// session then ends with STORE_UNAVAILABLE; in "best_effort" it goes on.
// Bytes are relayed once they are in a sealed-or-open chunk, not once stored:
// a store failure ends a closed session within maxPendingBytes of traffic.
import { createHash, type Hash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { constants, deflate } from "node:zlib";
import { AirlockError, type Logger } from "@airlock/shared";
import { chunkFields } from "@airlock/shared/audit/index";
import type { AuditChains } from "../audit/chains.js";
import type { ChunkRow } from "./chunks.js";
import { FRAME_HEADER, frameHeader, type Direction } from "./frames.js";
import type { Placement, RecordingStorage, StorageKind } from "./storage.js";

const deflateAsync = promisify(deflate);
/** A chunk that deflates to more than this share of its size counts as incompressible. */
const INCOMPRESSIBLE = 0.9;
/** Chunks stored without searching for matches after an incompressible one, before trying again. */
const INCOMPRESSIBLE_SKIP = 16;

export interface StreamRecordingOptions {
  sessionId: string;
  recordMode: "closed" | "best_effort";
  storage: RecordingStorage;
  /** Writes a stored chunk's row (chunks.ts insertChunk). */
  writeRow: (row: ChunkRow) => Promise<void>;
  /** The session's hash chain; null without tamper evidence (chunks get link 0). */
  chains: Pick<AuditChains, "append" | "lost"> | null;
  chunkBytes: number;
  flushMs: number;
  /** Default 8 chunks (512 KiB at the default chunk size); never below 2 (so a full open chunk cannot block its own sealing). */
  maxPendingBytes?: number;
  /** Chunks compressed and stored at once. Default 4 (the store's round trips overlap). */
  concurrency?: number;
  /**
   * zlib level. Default 1: level 1 shrinks text several times at a fraction of the CPU of higher
   * levels. Chunks deflate cannot shrink (TLS, SSH: most relayed bytes) make the next
   * INCOMPRESSIBLE_SKIP chunks go out as stored blocks (level 0: same format, no search).
   */
  level?: number;
  log: Logger;
  /** Milliseconds, monotonic (tests pass a fake one). */
  clock?: () => number;
}

export interface RecordingSummary {
  /** Chunks stored (their rows written). */
  chunks: number;
  /** Uncompressed bytes of those chunks (frame headers included). */
  bytes: number;
  /** Chunks that could not be stored (each one a tombstoned link). */
  lost: number;
  storage: StorageKind | null;
  /** Set when the recording failed in a way that ends the session. */
  error: AirlockError | null;
}

interface Sealed {
  idx: number;
  at: Date;
  frames: number;
  raw: Buffer;
  digest: Buffer;
  link: { link: number; prev: Buffer; hash: Buffer } | null;
}

export class StreamRecording {
  private readonly t0: number;
  private readonly clock: () => number;
  private readonly maxPending: number;
  private readonly concurrency: number;
  private parts: Buffer[] = [];
  private openBytes = 0;
  private openFrames = 0;
  private openHash: Hash = createHash("sha256");
  private nextIdx = 1;
  /** Bytes recorded and not yet stored (or given up): the open chunk, queued and in-flight chunks. */
  private pending = 0;
  private queue: Sealed[] = [];
  private inflight = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Chunks left to store at level 0 (the stream looked incompressible). */
  private storeOnly = 0;
  private waiters: Array<() => void> = [];
  private closed = false;
  private readonly stats = { chunks: 0, bytes: 0, lost: 0 };
  failure: AirlockError | null = null;
  /** Called once when the recording fails in a way that must end the session. */
  onFailure: ((err: AirlockError) => void) | null = null;

  constructor(private readonly o: StreamRecordingOptions) {
    this.clock = o.clock ?? (() => performance.now());
    this.t0 = this.clock();
    this.maxPending = Math.max(2 * o.chunkBytes, o.maxPendingBytes ?? 8 * o.chunkBytes);
    this.concurrency = Math.max(1, o.concurrency ?? 4);
  }

  /** Appends bytes that are about to be relayed in one direction. */
  record(dir: Direction, data: Buffer): void {
    if (this.closed || !data.length) return;
    const t = this.clock() - this.t0;
    for (let off = 0; off < data.length; ) {
      const room = this.o.chunkBytes - this.openBytes - FRAME_HEADER;
      if (room <= 0) {
        this.seal();
        continue;
      }
      const piece = data.subarray(off, off + Math.min(room, data.length - off));
      const h = frameHeader(t, dir, piece.length);
      this.parts.push(h, piece);
      this.openHash.update(h).update(piece);
      this.openBytes += FRAME_HEADER + piece.length;
      this.pending += FRAME_HEADER + piece.length;
      this.openFrames++;
      off += piece.length;
      if (this.openFrames === 1) {
        this.timer = setTimeout(() => this.seal(), this.o.flushMs);
        this.timer.unref();
      }
    }
    if (this.openBytes >= this.o.chunkBytes - FRAME_HEADER) this.seal();
  }

  /** False while too much is recorded and not yet stored: the caller should stop reading. */
  hasRoom(): boolean {
    return this.pending < this.maxPending || this.failure !== null;
  }

  /** Resolves once there is room again (or the recording failed: check `failure`). */
  async whenRoom(): Promise<void> {
    // Woken whenever a chunk is stored or given up; room comes once enough are.
    while (!this.hasRoom()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Seals what is open, waits until every chunk is stored or given up, and sums up. */
  async finish(): Promise<RecordingSummary> {
    this.seal();
    this.closed = true;
    while (this.queue.length || this.inflight) await new Promise<void>((r) => this.waiters.push(r));
    return { ...this.stats, storage: this.stats.chunks || this.stats.lost ? this.o.storage.kind : null, error: this.failure };
  }

  private seal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.openFrames) return;
    const at = new Date();
    const raw = Buffer.concat(this.parts, this.openBytes);
    const digest = this.openHash.digest();
    const s: Sealed = { idx: this.nextIdx++, at, frames: this.openFrames, raw, digest, link: null };
    // The link is taken now, in seal order, whatever order the writes finish in.
    s.link = this.o.chains?.append(this.o.sessionId, "chunk", chunkFields({ idx: s.idx, at, frames: s.frames, rawBytes: raw.length, digest })) ?? null;
    this.parts = [];
    this.openBytes = 0;
    this.openFrames = 0;
    this.openHash = createHash("sha256");
    this.queue.push(s);
    this.pump();
  }

  private pump(): void {
    while (this.inflight < this.concurrency && this.queue.length) {
      const s = this.queue.shift()!;
      this.inflight++;
      void this.store(s).finally(() => {
        this.inflight--;
        this.pending -= s.raw.length;
        this.wake();
        this.pump();
      });
    }
  }

  private async store(s: Sealed): Promise<void> {
    const { sessionId, storage } = this.o;
    let placement: Placement | null = null;
    try {
      const level = this.storeOnly > 0 ? constants.Z_NO_COMPRESSION : (this.o.level ?? constants.Z_BEST_SPEED);
      if (this.storeOnly > 0) this.storeOnly--;
      const data = await deflateAsync(s.raw, { level });
      if (level !== constants.Z_NO_COMPRESSION && data.length > s.raw.length * INCOMPRESSIBLE) this.storeOnly = INCOMPRESSIBLE_SKIP;
      placement = await storage.put({ sessionId, idx: s.idx }, data);
      const empty = Buffer.alloc(0);
      await this.o.writeRow({
        sessionId, idx: s.idx, link: s.link?.link ?? 0, prevHash: s.link?.prev ?? empty, hash: s.link?.hash ?? empty, at: s.at,
        frames: s.frames, rawBytes: s.raw.length, digest: s.digest, storage: storage.kind, location: placement.location, data: placement.inline,
      });
      this.stats.chunks++;
      this.stats.bytes += s.raw.length;
    } catch (err) {
      // Bytes stored without a row would be unreachable: remove them (best effort).
      if (placement?.location) await storage.delete(sessionId, [{ sessionId, idx: s.idx, location: placement.location }]).catch(() => undefined);
      this.lose(s, err as Error);
    }
  }

  private lose(s: Sealed, err: Error): void {
    this.stats.lost++;
    const reason = `recording chunk could not be stored: ${err.message}`;
    // The bytes were relayed without a durable record: counted as unrecorded on the session.
    const withinLimit = s.link ? (this.o.chains?.lost(this.o.sessionId, s.link, reason, true) ?? true) : true;
    this.o.log.warn({ session: this.o.sessionId, idx: s.idx, err: err.message, recordMode: this.o.recordMode }, "recording chunk lost");
    if (this.o.recordMode === "closed") {
      this.fail(new AirlockError("STORE_UNAVAILABLE", `the session's recording could not be stored, so the session was ended (record mode closed): ${err.message}`, { cause: err }));
    } else if (!withinLimit) {
      this.fail(new AirlockError("STORE_UNAVAILABLE", `too many recording chunks of this session could not be stored: ${err.message}`, { cause: err }));
    }
  }

  private fail(err: AirlockError): void {
    if (this.failure) return;
    this.failure = err;
    this.wake();
    this.onFailure?.(err);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
