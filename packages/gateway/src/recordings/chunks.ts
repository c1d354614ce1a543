// Rows of recording_chunks: one per chunk, written once its bytes are stored.
//
//   session_id, idx      the chunk's place: idx counts from 1 in the order chunks were sealed
//   link, prev_hash, hash  its link in the session's hash chain (kind "chunk",
//                        fields chunkFields: idx, at, frames, raw_bytes, digest)
//   at                   when it was sealed
//   frames, raw_bytes    frames it holds and their uncompressed size (headers included)
//   digest               SHA-256 of those uncompressed bytes
//   storage, location    which backend holds the compressed bytes, and where (storage.ts)
//   data                 the compressed bytes (zlib format, RFC 1950) when storage = db
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { inflate } from "node:zlib";
import { AirlockError } from "@airlock/shared";
import type { Store } from "../store/index.js";
import type { StorageKind, RecordingStorage } from "./storage.js";

const inflateAsync = promisify(inflate);

export interface ChunkRow {
  sessionId: string;
  idx: number;
  /** 0 with empty hashes when the session has no hash chain (tests without chains). */
  link: number;
  prevHash: Buffer;
  hash: Buffer;
  at: Date;
  frames: number;
  rawBytes: number;
  digest: Buffer;
  storage: StorageKind;
  location: string | null;
  data: Buffer | null;
}

export type ChunkMeta = Omit<ChunkRow, "data">;

const INSERT = `INSERT INTO recording_chunks (session_id, idx, link, prev_hash, hash, at, frames, raw_bytes, digest, storage, location, data)
  VALUES ($1::uuid, $2, $3, $4, $5, $6::timestamp(3), $7, $8, $9, $10, $11, $12)`;

/** Writes a chunk's row (raw SQL on the record pool: this is on a busy session's data path). */
export async function insertChunk(store: Store, r: ChunkRow): Promise<void> {
  // ISO with Z into a timestamp without time zone keeps the UTC clock value, as Prisma reads it.
  await store.sql(INSERT, [r.sessionId, r.idx, r.link, r.prevHash, r.hash, r.at.toISOString(), r.frames, r.rawBytes, r.digest, r.storage, r.location, r.data]);
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A session's chunk rows without their data, by idx, a page at a time. */
export async function* listChunks(store: Store, sessionId: string, page = 500): AsyncGenerator<ChunkMeta> {
  let after = 0;
  for (;;) {
    const rows = await store.prisma.recordingChunk.findMany({
      where: { sessionId, idx: { gt: after } },
      orderBy: { idx: "asc" },
      take: page,
      select: { sessionId: true, idx: true, link: true, prevHash: true, hash: true, at: true, frames: true, rawBytes: true, digest: true, storage: true, location: true },
    });
    for (const r of rows) yield { ...r, prevHash: buf(r.prevHash), hash: buf(r.hash), digest: buf(r.digest), storage: r.storage as StorageKind };
    if (rows.length < page) return;
    after = rows[rows.length - 1]!.idx;
  }
}

/** Compressed chunks above this are refused unread (chunks are at most 16 MiB raw; deflate adds little). */
const MAX_COMPRESSED = 17 * 1024 * 1024;

/**
 * One chunk's uncompressed frames, checked against the digest its row (and so
 * its chain link) carries: altered bytes are refused, never replayed.
 * Memory: one chunk, compressed and uncompressed.
 */
export async function readChunk(storage: RecordingStorage, c: ChunkMeta): Promise<Buffer> {
  const stream: Readable = await storage.get(c);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    size += piece.length;
    if (size > MAX_COMPRESSED) {
      stream.destroy();
      throw corrupt(c, `more than ${MAX_COMPRESSED} compressed bytes`);
    }
    parts.push(piece);
  }
  let raw: Buffer;
  try {
    raw = await inflateAsync(Buffer.concat(parts, size), { maxOutputLength: Math.max(1, c.rawBytes) });
  } catch (err) {
    throw corrupt(c, `cannot be decompressed to ${c.rawBytes} bytes (${(err as Error).message})`);
  }
  if (raw.length !== c.rawBytes) throw corrupt(c, `holds ${raw.length} bytes, its record says ${c.rawBytes}`);
  if (!createHash("sha256").update(raw).digest().equals(c.digest)) throw corrupt(c, "its bytes do not match the recorded digest (altered)");
  return raw;
}

function corrupt(c: ChunkMeta, why: string): AirlockError {
  return new AirlockError("INTERNAL", `recording chunk #${c.idx} of session ${c.sessionId} ${why}`);
}
