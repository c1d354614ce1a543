// Small file helpers for key material: files are written whole or not at all,
// with owner-only permissions from the first byte.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";

/** Creates `dir` (and parents) as owner-only if missing; leaves an existing dir's mode alone. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
}

function tmpPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

async function writeTmp(file: string, data: string | Uint8Array, mode: number): Promise<string> {
  const tmp = tmpPath(file);
  // Mode is applied at open, so the secret is never readable by others, even briefly.
  const fh = await fs.open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync(); // the content must be durable before the name points at it
  } finally {
    await fh.close();
  }
  return tmp;
}

/**
 * Writes `file` atomically, replacing any existing one: a crash leaves either
 * the old file or the new one, never a half-written key.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = await writeTmp(file, data, mode);
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Creates `file` atomically only if it does not exist yet. Returns false when
 * another process (or an earlier start) got there first; the caller then reads
 * the existing file, so two gateways starting at once agree on one key.
 */
export async function createFileExclusive(file: string, data: string | Uint8Array, mode: number): Promise<boolean> {
  const tmp = await writeTmp(file, data, mode);
  try {
    await fs.link(tmp, file); // link(2) fails with EEXIST instead of replacing
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    // Some volumes (vfat, a few network and FUSE mounts) have no hard links:
    // fall back to an exclusive create of the file itself.
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
      return writeDirectExclusive(file, data, mode);
    }
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

async function writeDirectExclusive(file: string, data: string | Uint8Array, mode: number): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, "wx", mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/** File contents, or null when the file does not exist. */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}
