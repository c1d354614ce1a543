// The filesystem backend on a real directory: one 0600 file per chunk at the
// documented path, no temporary files left, reads stream the bytes back,
// missing and tampered locations are refused, deletion is idempotent.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsStorage } from "./storage-fs.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-recfs-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s as AsyncIterable<Buffer>) parts.push(p);
  return Buffer.concat(parts);
}

describe("FsStorage", () => {
  it("writes each chunk to <dir>/<session>/<idx>.zz, mode 0600, and reads it back", async () => {
    const fs = new FsStorage(dir);
    const sessionId = randomUUID();
    const a = randomBytes(70_000);
    const b = randomBytes(10);
    const pa = await fs.put({ sessionId, idx: 1 }, a);
    const pb = await fs.put({ sessionId, idx: 12 }, b);
    expect(pa).toEqual({ location: `${sessionId}/00000001.zz`, inline: null });
    expect(pb.location).toBe(`${sessionId}/00000012.zz`);
    expect(await readdir(join(dir, sessionId))).toEqual(["00000001.zz", "00000012.zz"]);
    expect((await stat(join(dir, pa.location!))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir, pa.location!))).equals(a)).toBe(true);
    expect((await readAll(await fs.get({ sessionId, idx: 1, location: pa.location }))).equals(a)).toBe(true);
    expect((await readAll(await fs.get({ sessionId, idx: 12, location: pb.location }))).equals(b)).toBe(true);
  });

  it("rewriting a chunk replaces it whole (rename over the old file)", async () => {
    const fs = new FsStorage(dir);
    const sessionId = randomUUID();
    await fs.put({ sessionId, idx: 1 }, Buffer.from("first version, longer"));
    const p = await fs.put({ sessionId, idx: 1 }, Buffer.from("second"));
    expect((await readFile(join(dir, p.location!))).toString()).toBe("second");
    expect(await readdir(join(dir, sessionId))).toEqual(["00000001.zz"]);
  });

  it("a missing file is NOT_FOUND; a location outside the session's directory is refused unopened", async () => {
    const fs = new FsStorage(dir);
    const sessionId = randomUUID();
    await expect(fs.get({ sessionId, idx: 3, location: `${sessionId}/00000003.zz` })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const other = randomUUID();
    for (const location of ["../../etc/passwd", `${other}/00000001.zz`, `${sessionId}/../x.zz`, null]) {
      await expect(fs.get({ sessionId, idx: 1, location })).rejects.toMatchObject({ code: "INTERNAL", message: expect.stringContaining("invalid file location") });
    }
  });

  it("refuses a session id that is not a UUID (it names a directory)", async () => {
    await expect(new FsStorage(dir).put({ sessionId: "../x", idx: 1 }, Buffer.alloc(1))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("delete removes the files, leftovers of interrupted writes and the directory; twice is fine", async () => {
    const fs = new FsStorage(dir);
    const sessionId = randomUUID();
    const chunks = [];
    for (let idx = 1; idx <= 3; idx++) chunks.push({ sessionId, idx, location: (await fs.put({ sessionId, idx }, randomBytes(100))).location });
    await writeFile(join(dir, sessionId, "00000004.zz.tmp.abcdef"), "partial");
    await fs.delete(sessionId, chunks.slice(0, 2));
    expect(await readdir(join(dir, sessionId))).toEqual(["00000003.zz", "00000004.zz.tmp.abcdef"]);
    await fs.delete(sessionId, chunks);
    await expect(stat(join(dir, sessionId))).rejects.toMatchObject({ code: "ENOENT" });
    await fs.delete(sessionId, chunks);
  });
});
