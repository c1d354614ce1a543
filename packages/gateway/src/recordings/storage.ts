// Where the compressed bytes of recording chunks live. Every chunk also has a
// row in recording_chunks (chunks.ts) with its place in the session's hash
// chain; the storage only keeps the bytes, and the row says which storage and
// where (`storage`, `location`), so a gateway can read recordings written
// under an earlier configuration.
//
// Implementing another backend (an S3-compatible object store, say):
//   - put: one PutObject per chunk, key `<prefix>/<sessionId>/<idx>.zz`
//     (chunks are at most 16 MiB, so no multipart upload). Resolve only once
//     the store acknowledged the write (S3 answers 200 after the object is
//     durable); return { location: key, inline: null }. Retrying inside put is
//     fine: keys are deterministic, so a retried PUT overwrites the same object.
//   - get: GetObject and return its body as a Readable (the SDK's stream);
//     a missing object rejects with AirlockError NOT_FOUND.
//   - delete: DeleteObjects in batches of up to 1,000 keys; keys already gone
//     count as deleted (retention may retry after a crash).
//   - kind "s3"; register it in Recordings (service.ts) for reading too.
//   Object Lock in compliance mode would refuse retention's deletes: pick a
//   lock period no longer than the shortest retention rule.
import { Readable } from "node:stream";
import { AirlockError } from "@airlock/shared";
import type { Store } from "../store/index.js";

export type StorageKind = "db" | "fs" | "s3";

/** One chunk of one session's recording (idx from 1, see recorder.ts). */
export interface ChunkKey {
  sessionId: string;
  idx: number;
}

/** What the chunk row keeps about where its bytes are. */
export interface Placement {
  /** Path or object key; null when the bytes are inline in the row. */
  location: string | null;
  /** Bytes to keep in the row itself (the db backend); null for external stores. */
  inline: Buffer | null;
}

export interface RecordingStorage {
  readonly kind: StorageKind;
  /** Stores a chunk's compressed bytes durably before resolving. */
  put(key: ChunkKey, data: Buffer): Promise<Placement>;
  /** Streams a chunk's compressed bytes back. */
  get(key: ChunkKey & { location: string | null }): Promise<Readable>;
  /** Removes chunks' bytes; idempotent (already gone is fine). */
  delete(sessionId: string, chunks: ReadonlyArray<ChunkKey & { location: string | null }>): Promise<void>;
}

/**
 * The default: the compressed bytes go in the chunk row's `data` column, in
 * the same insert as the row (so put itself does no I/O), and leave with it.
 */
export class DbStorage implements RecordingStorage {
  readonly kind = "db" as const;

  constructor(private readonly store: Store) {}

  async put(_key: ChunkKey, data: Buffer): Promise<Placement> {
    return { location: null, inline: data };
  }

  async get(key: ChunkKey): Promise<Readable> {
    const row = await this.store.prisma.recordingChunk.findUnique({ where: { sessionId_idx: { sessionId: key.sessionId, idx: key.idx } }, select: { data: true } });
    if (!row?.data) throw new AirlockError("NOT_FOUND", `recording chunk #${key.idx} of session ${key.sessionId} has no data in the store`);
    return Readable.from([Buffer.from(row.data)]);
  }

  async delete(): Promise<void> {
    // The bytes are in the rows: deleting the rows (retention.ts) deletes them.
  }
}
