// StreamRecording and the recording relay with in-memory storages: chunks of
// whole frames chained in seal order, the flush timer, backpressure while the
// store is slow (the source stops being read), and fail-closed / best-effort
// behaviour when the store refuses chunks.
import { createHash, randomBytes } from "node:crypto";
import { Duplex, Readable } from "node:stream";
import { inflateSync } from "node:zlib";
import { ChainHead, chunkFields, linkHash } from "@airlock/shared/audit/index";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import type { ChunkRow } from "./chunks.js";
import { FrameDecoder, type Frame } from "./frames.js";
import { StreamRecording, type StreamRecordingOptions } from "./recorder.js";
import { relayRecorded } from "./relay.js";
import type { ChunkKey, Placement, RecordingStorage } from "./storage.js";

const SID = "5d7f6a52-1c3b-4f0e-9a61-2f4b8c0d9e11";
const log = pino({ level: "silent" });

/** Keeps chunks in a map; can be held (put waits) or made to fail. */
class MemStorage implements RecordingStorage {
  readonly kind = "db" as const;
  readonly data = new Map<number, Buffer>();
  puts = 0;
  deleted: number[] = [];
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  failWhen: ((idx: number) => boolean) | null = null;

  hold(): void {
    let open!: () => void;
    this.gate = { promise: new Promise<void>((r) => (open = r)), open };
  }
  release(): void {
    this.gate?.open();
    this.gate = null;
  }
  async put(key: ChunkKey, data: Buffer): Promise<Placement> {
    this.puts++;
    if (this.gate) await this.gate.promise;
    if (this.failWhen?.(key.idx)) throw new Error("disk full");
    this.data.set(key.idx, data);
    return { location: `mem/${key.idx}`, inline: null };
  }
  async get(key: ChunkKey): Promise<Readable> {
    return Readable.from([this.data.get(key.idx)!]);
  }
  async delete(_s: string, chunks: ReadonlyArray<ChunkKey>): Promise<void> {
    for (const c of chunks) (this.deleted.push(c.idx), this.data.delete(c.idx));
  }
}

function setup(over: Partial<StreamRecordingOptions> = {}) {
  const storage = (over.storage as MemStorage | undefined) ?? new MemStorage();
  const rows: ChunkRow[] = [];
  const head = new ChainHead(SID);
  const lost: Array<{ link: number; reason: string; forwarded: boolean }> = [];
  const chains = {
    append: (_s: string, kind: "chunk", fields: Parameters<ChainHead["append"]>[1]) => head.append(kind, fields),
    lost: (_s: string, link: { link: number }, reason: string, forwarded = false) => (lost.push({ link: link.link, reason, forwarded }), true),
  };
  const rec = new StreamRecording({
    sessionId: SID, recordMode: "closed", storage, writeRow: async (r) => void rows.push(r), chains: chains as never, chunkBytes: 1024, flushMs: 60_000, log, ...over,
  });
  return { rec, storage, rows, lost };
}

/** Frames of one stored chunk, checked against its row's size and digest. */
function framesOf(storage: MemStorage, row: ChunkRow): Frame[] {
  const raw = inflateSync(storage.data.get(row.idx)!);
  expect(raw.length).toBe(row.rawBytes);
  expect(createHash("sha256").update(raw).digest().equals(row.digest)).toBe(true);
  const d = new FrameDecoder();
  const frames = d.push(raw);
  d.end();
  return frames;
}

/** A client that sends `total` random bytes in pieces and collects what comes back. */
function client(total: number, piece = 16 * 1024, endWhenDone = true) {
  const sent: Buffer[] = [];
  let pulled = 0;
  const got: Buffer[] = [];
  const d = new Duplex({
    read() {
      if (pulled >= total) return void (endWhenDone && this.push(null));
      const b = randomBytes(Math.min(piece, total - pulled));
      pulled += b.length;
      sent.push(b);
      this.push(b);
    },
    write(c: Buffer, _e, cb) {
      got.push(c);
      cb();
    },
  });
  return { d, pulled: () => pulled, sent: () => Buffer.concat(sent), got: () => Buffer.concat(got) };
}

/** A target that collects what it gets and half-closes back once the client is done. */
function target() {
  const got: Buffer[] = [];
  const d = new Duplex({
    read() {},
    write(c: Buffer, _e, cb) {
      got.push(c);
      cb();
    },
    final(cb) {
      this.push(null);
      cb();
    },
  });
  return { d, got: () => Buffer.concat(got) };
}

const settle = async (turns = 200) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
};

describe("StreamRecording", () => {
  it("cuts both directions into chunks of whole frames, at most chunkBytes each, idx from 1, chained in seal order", async () => {
    const { rec, storage, rows } = setup();
    const up: Buffer[] = [];
    const down: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const b = randomBytes(1 + ((i * 397) % 2500));
      (i % 3 ? down : up).push(b);
      rec.record(i % 3 ? 1 : 0, b);
    }
    const summary = await rec.finish();
    rows.sort((a, b) => a.idx - b.idx);
    expect(rows.map((r) => r.idx)).toEqual(rows.map((_, i) => i + 1));
    expect(summary).toMatchObject({ chunks: rows.length, lost: 0, storage: "db", error: null, bytes: rows.reduce((a, r) => a + r.rawBytes, 0) });
    const frames = rows.flatMap((r) => {
      expect(r.rawBytes).toBeLessThanOrEqual(1024);
      expect(r.location).toBe(`mem/${r.idx}`);
      const f = framesOf(storage, r);
      expect(f.length).toBe(r.frames);
      return f;
    });
    expect(Buffer.concat(frames.filter((f) => f.dir === 0).map((f) => f.data)).equals(Buffer.concat(up))).toBe(true);
    expect(Buffer.concat(frames.filter((f) => f.dir === 1).map((f) => f.data)).equals(Buffer.concat(down))).toBe(true);
    // Each row carries its link; each link's prev is the previous chunk's hash, and its hash covers the row's fields.
    rows.forEach((r, i) => {
      expect(r.link).toBe(i + 1);
      if (i) expect(r.prevHash.equals(rows[i - 1]!.hash)).toBe(true);
      expect(linkHash(r.prevHash, "chunk", chunkFields(r)).equals(r.hash)).toBe(true);
    });
  });

  it("compresses text; incompressible bytes are stored with no more than zlib's framing", async () => {
    const { rec, storage, rows } = setup();
    const text = Buffer.from("SELECT * FROM customers WHERE id = 42;\n".repeat(2000));
    rec.record(0, text);
    rec.record(1, randomBytes(40_000));
    await rec.finish();
    const size = (r: ChunkRow) => storage.data.get(r.idx)!.length;
    const [textRows, randomRows] = [rows.filter((r) => r.idx <= Math.ceil(text.length / 1015)), rows.filter((r) => r.idx > Math.ceil(text.length / 1015) + 1)];
    expect(textRows.every((r) => size(r) < r.rawBytes / 4)).toBe(true);
    expect(randomRows.length).toBeGreaterThan(20);
    expect(randomRows.every((r) => size(r) <= r.rawBytes + 64)).toBe(true);
    rows.forEach((r) => framesOf(storage, r));
  });

  it("seals a chunk flushMs after its first frame, without waiting for it to fill", async () => {
    const { rec, rows } = setup({ flushMs: 20 });
    rec.record(0, Buffer.from("hello"));
    await vi.waitFor(() => expect(rows).toHaveLength(1));
    expect(rows[0]).toMatchObject({ idx: 1, frames: 1, rawBytes: 9 + 5 });
    await rec.finish();
    expect(rows).toHaveLength(1);
  });

  it("a chunk stored but whose row cannot be written is removed from the storage and its link reported lost", async () => {
    const storage = new MemStorage();
    const { rec, lost } = setup({ storage, writeRow: async () => Promise.reject(new Error("store down")), recordMode: "best_effort" });
    rec.record(1, randomBytes(100));
    const summary = await rec.finish();
    expect(summary).toMatchObject({ chunks: 0, lost: 1, error: null });
    expect(storage.deleted).toEqual([1]);
    expect(lost).toEqual([{ link: 1, reason: expect.stringContaining("store down"), forwarded: true }]);
  });
});

describe("recording relay", () => {
  it("carries both directions unchanged and records them", async () => {
    const { rec, storage, rows } = setup({ chunkBytes: 4096 });
    const c = client(300_000);
    const t = target();
    const result = await relayRecorded(c.d, t.d, rec);
    const summary = await rec.finish();
    expect(result).toEqual({ bytesUp: 300_000, bytesDown: 0 });
    expect(t.got().equals(c.sent())).toBe(true);
    rows.sort((a, b) => a.idx - b.idx);
    const recorded = Buffer.concat(rows.flatMap((r) => framesOf(storage, r)).map((f) => f.data));
    expect(recorded.equals(c.sent())).toBe(true);
    expect(summary.chunks).toBe(rows.length);
  });

  it("stops reading the source while chunks wait for a slow store, and lets everything through once it catches up", async () => {
    const storage = new MemStorage();
    storage.hold();
    const { rec, rows } = setup({ storage, chunkBytes: 4096, maxPendingBytes: 16 * 1024 });
    const total = 4 * 1024 * 1024;
    const c = client(total);
    const t = target();
    const done = relayRecorded(c.d, t.d, rec);
    await vi.waitFor(() => expect(rec.hasRoom()).toBe(false));
    await settle();
    const stalledAt = c.pulled();
    await settle();
    // Nothing more was read while the store held: the source waits, the gateway does not buffer.
    expect(c.pulled()).toBe(stalledAt);
    // Bounded by the recording's limit plus the streams' own buffers (a few 16 KiB pieces), far below the transfer.
    expect(stalledAt).toBeLessThan(16 * 1024 + 6 * 16 * 1024);
    storage.release();
    const result = await done;
    await rec.finish();
    expect(result.error).toBeUndefined();
    expect(t.got().equals(c.sent())).toBe(true);
    expect(rows.reduce((a, r) => a + r.rawBytes - 9 * r.frames, 0)).toBe(total);
  });

  it("record mode closed: a chunk the store refuses ends the session with STORE_UNAVAILABLE, its link tombstoned", async () => {
    const storage = new MemStorage();
    storage.failWhen = () => true;
    const { rec, lost } = setup({ storage, chunkBytes: 4096 });
    const c = client(64 * 1024 * 1024);
    const t = target();
    const result = await relayRecorded(c.d, t.d, rec);
    const summary = await rec.finish();
    expect(result.error).toMatchObject({ code: "STORE_UNAVAILABLE", message: expect.stringMatching(/recording could not be stored.*disk full/) });
    expect(c.d.destroyed && t.d.destroyed).toBe(true);
    // The session was cut long before the 64 MiB went through.
    expect(c.pulled()).toBeLessThan(1024 * 1024);
    expect(summary).toMatchObject({ chunks: 0, error: { code: "STORE_UNAVAILABLE" } });
    expect(lost.length).toBe(summary.lost);
    expect(lost[0]).toMatchObject({ link: 1, forwarded: true });
  });

  it("record mode closed: a store failure while the session is idle (timer flush) still ends it", async () => {
    const storage = new MemStorage();
    storage.failWhen = () => true;
    const { rec } = setup({ storage, flushMs: 10 });
    const c = client(10, 10, false); // sends 10 bytes, then stays open
    const t = target();
    const result = await relayRecorded(c.d, t.d, rec);
    expect(result.error?.code).toBe("STORE_UNAVAILABLE");
    expect(t.got().length).toBe(10);
  });

  it("record mode best_effort: refused chunks are counted and tombstoned, the session goes on", async () => {
    const storage = new MemStorage();
    storage.failWhen = (idx) => idx % 2 === 0;
    const { rec, rows, lost } = setup({ storage, chunkBytes: 4096, recordMode: "best_effort" });
    const c = client(200_000);
    const t = target();
    const result = await relayRecorded(c.d, t.d, rec);
    const summary = await rec.finish();
    expect(result.error).toBeUndefined();
    expect(t.got().equals(c.sent())).toBe(true);
    expect(summary.error).toBeNull();
    expect(summary.lost).toBeGreaterThan(0);
    expect(summary.chunks).toBe(rows.length);
    // Links follow seal order (here link = idx): the stored chunks are the odd ones, the tombstoned ones the even.
    expect(lost.map((l) => l.link).sort((a, b) => a - b)).toEqual(Array.from({ length: summary.lost }, (_, i) => 2 * (i + 1)));
    expect(rows.map((r) => r.link).sort((a, b) => a - b)).toEqual(Array.from({ length: summary.chunks }, (_, i) => 2 * i + 1));
  });
});
