// Recording chunks as files: one file per chunk, `<dir>/<sessionId>/<idx>.zz`
// (idx zero-padded to 8 digits so a listing sorts in order), holding the
// chunk's compressed bytes exactly as the db backend would keep them. The row
// in recording_chunks stores the path relative to dir, so the directory can be
// moved or mounted elsewhere.
//
// A write is atomic and durable before put resolves: the bytes go to a
// temporary file in the same directory, which is fsynced, renamed into place,
// and the directory is fsynced (and its parent, when the session's directory
// was just created). A crash leaves either the whole chunk or a stray
// `*.tmp.*` file that delete() clears.
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { AirlockError } from "@airlock/shared";
import { isUuid } from "../sessions/statements-sql.js";
import type { ChunkKey, Placement, RecordingStorage } from "./storage.js";

/** What a stored location may look like: anything else (a tampered row) is refused, never opened. */
const LOCATION = /^[0-9a-f-]{36}\/\d{8,10}\.zz$/i;

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class FsStorage implements RecordingStorage {
  readonly kind = "fs" as const;

  constructor(readonly dir: string) {}

  static location(key: ChunkKey): string {
    if (!isUuid(key.sessionId)) throw new AirlockError("INVALID_ARGUMENT", `not a session id: ${key.sessionId}`);
    return `${key.sessionId}/${String(key.idx).padStart(8, "0")}.zz`;
  }

  async put(key: ChunkKey, data: Buffer): Promise<Placement> {
    const location = FsStorage.location(key);
    const sessionDir = join(this.dir, key.sessionId);
    const created = await mkdir(sessionDir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, location);
    const tmp = `${file}.tmp.${randomBytes(6).toString("hex")}`;
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, file);
    await fsyncPath(sessionDir);
    // A new session directory is only durable once its parent records it.
    if (created) await fsyncPath(this.dir);
    return { location, inline: null };
  }

  async get(key: ChunkKey & { location: string | null }): Promise<Readable> {
    if (!key.location || !LOCATION.test(key.location) || !key.location.startsWith(`${key.sessionId}/`)) {
      throw new AirlockError("INTERNAL", `recording chunk #${key.idx} has an invalid file location ${JSON.stringify(key.location)}`);
    }
    const path = join(this.dir, key.location);
    // Open first so a missing file is a clear error, not a stream that fails later.
    const fh = await open(path, "r").catch((err: unknown) => {
      if (errno(err) === "ENOENT") throw new AirlockError("NOT_FOUND", `recording chunk #${key.idx} of session ${key.sessionId} is missing from ${this.dir}`);
      throw err;
    });
    return fh.createReadStream();
  }

  async delete(sessionId: string, chunks: ReadonlyArray<ChunkKey & { location: string | null }>): Promise<void> {
    for (const c of chunks) {
      const location = c.location && LOCATION.test(c.location) ? c.location : FsStorage.location(c);
      await unlink(join(this.dir, location)).catch((err: unknown) => {
        if (errno(err) !== "ENOENT") throw err;
      });
    }
    // The directory goes once it holds nothing but leftovers of interrupted writes.
    const sessionDir = join(this.dir, sessionId);
    const left = await readdir(sessionDir).catch(() => null);
    if (!left) return;
    if (left.every((f) => f.includes(".tmp."))) {
      for (const f of left) await unlink(join(sessionDir, f)).catch(() => undefined);
      await rmdir(sessionDir).catch(() => undefined);
    }
  }
}
