// Recordings on real stores (PGlite, as `airlock dev` uses, and a throwaway
// PostgreSQL database): sessions recorded through the real SessionRecorder,
// AuditChains and Recordings (db and fs backends) read back frame for frame
// and verify with the public keys of the audit_keys table; an altered chunk
// is refused on replay; retention deletes what its rules say, leaves signed
// tombstones, and the sessions still verify.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { verifySession } from "@airlock/shared/audit/index";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditChains } from "../audit/chains.js";
import { AuditKeys } from "../audit/keys.js";
import { loadMaterial } from "../audit/material.js";
import { Keyring } from "../crypto/index.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { openStore, type Store } from "../store/index.js";
import { createTempDatabase } from "../store/testing.js";
import { readRecording, type ReplayLine } from "./reader.js";
import { RecordingRetention, ruleFor } from "./retention.js";
import { Recordings } from "./service.js";

const log = pino({ level: "silent" });
const DAY = 86_400_000;

interface Env {
  store: Store;
  dir: string;
  keys: AuditKeys;
  chains: AuditChains;
  sessions: SessionRecorder;
  db: Recordings;
  fs: Recordings;
}

async function open(kind: "pglite" | "postgres", cleanups: Array<() => Promise<unknown>>): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), "airlock-recordings-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  let databaseUrl: string | undefined;
  if (kind === "postgres") {
    const db = await createTempDatabase();
    cleanups.push(() => db.drop());
    databaseUrl = db.url;
  }
  const store = await openStore({ dataDir: dir, databaseUrl, logger: log });
  cleanups.push(() => store.close());
  const keys = new AuditKeys(store, new Keyring([randomBytes(32)]), log);
  const chains = new AuditChains(store, keys, log, { checkpointIntervalMs: 0 });
  cleanups.push(() => chains.close());
  const sessions = new SessionRecorder(store, log, chains);
  const config = { chunkBytes: 4096, flushMs: 60_000, dir: join(dir, "recordings") };
  const db = new Recordings({ store, chains, config: { ...config, storage: "db" }, dataDir: dir, log });
  const fs = new Recordings({ store, chains, config: { ...config, storage: "fs" }, dataDir: dir, log });
  await store.prisma.connection.createMany({
    data: [
      { name: "dev-db", type: "tcp", host: "127.0.0.1", port: 1, labels: { env: "dev", team: "a" } },
      { name: "prod-db", type: "tcp", host: "127.0.0.1", port: 2, labels: { env: "prod" } },
    ],
  });
  return { store, dir, keys, chains, sessions, db, fs };
}

/** Records one TCP session: `pieces` alternate client→target and target→client. */
async function recordSession(e: Env, via: Recordings, connectionName: string, pieces: Buffer[]): Promise<string> {
  const id = await e.sessions.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName, protocol: "tcp", clientAddr: "127.0.0.1", recordMode: "closed" });
  const rec = via.begin({ sessionId: id, connection: { recordMode: "closed" } as never, log })!;
  pieces.forEach((p, i) => rec.record(i % 2 === 0 ? 0 : 1, p));
  const s = await rec.finish();
  const size = (odd: number) => pieces.filter((_, i) => i % 2 === odd).reduce((a, p) => a + p.length, 0);
  await e.sessions.finish(id, { bytesUp: size(0), bytesDown: size(1), outcome: "ok", recording: { chunks: s.chunks, bytes: s.bytes, storage: s.storage } });
  return id;
}

async function lines(e: Env, id: string, direction: "up" | "down" | "both" = "both"): Promise<ReplayLine[]> {
  const out: ReplayLine[] = [];
  for await (const l of readRecording(e.store, e.db, id, direction)) out.push(l);
  return out;
}

const bytesOf = (ls: ReplayLine[]) => Buffer.concat(ls.flatMap((l) => ("data" in l ? [Buffer.from(l.data, "base64")] : [])));

async function verify(e: Env, id: string) {
  // The public keys as published: straight from the audit_keys table.
  const keys = new Map((await e.store.prisma.auditKey.findMany()).map((k) => [k.id, k.publicKey]));
  return verifySession((await loadMaterial(e.store, id))!, keys);
}

const pieces = (n: number, size: number) => Array.from({ length: n }, (_, i) => randomBytes(size + (i % 7) * 100));

describe("ruleFor", () => {
  it("picks the first rule whose labels all match; {} matches anything", () => {
    const rules: Array<{ labels: Record<string, string>; recordingDays: number }> = [{ labels: { env: "prod", tier: "1" }, recordingDays: 365 }, { labels: { env: "prod" }, recordingDays: 90 }, { labels: {}, recordingDays: 7 }];
    expect(ruleFor(rules, { env: "prod", tier: "1", x: "y" })?.recordingDays).toBe(365);
    expect(ruleFor(rules, { env: "prod", tier: "2" })?.recordingDays).toBe(90);
    expect(ruleFor(rules, {})?.recordingDays).toBe(7);
    expect(ruleFor(rules.slice(0, 2), { env: "dev" })).toBeNull();
  });
});

describe.each(["pglite", "postgres"] as const)("recordings on %s", (kind) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let e: Env;
  beforeAll(async () => {
    e = await open(kind, cleanups);
  });
  afterAll(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });

  it("db storage: a session reads back byte for byte per direction, and its chunk links verify", async () => {
    const ps = pieces(40, 900);
    const id = await recordSession(e, e.db, "dev-db", ps);
    const all = await lines(e, id);
    const end = all.at(-1)!;
    expect(end).toMatchObject({ end: { gaps: 0 } });
    const row = await e.store.prisma.session.findUniqueOrThrow({ where: { id } });
    expect("end" in end && end.end.chunks).toBe(row.recordingChunks);
    expect(row.recordingChunks).toBeGreaterThan(5);
    expect(row.recordingStorage).toBe("db");
    expect(bytesOf(await lines(e, id, "up")).equals(Buffer.concat(ps.filter((_, i) => i % 2 === 0)))).toBe(true);
    expect(bytesOf(await lines(e, id, "down")).equals(Buffer.concat(ps.filter((_, i) => i % 2 === 1)))).toBe(true);
    // Frames come in recorded order, directions interleaved.
    expect(all.filter((l) => "dir" in l).slice(0, 4).map((l) => ("dir" in l ? l.dir : ""))).toEqual(["up", "down", "up", "down"]);
    const v = await verify(e, id);
    expect(v).toMatchObject({ ok: true, findings: [], links: row.recordingChunks + 2 });
  });

  it("fs storage: one file per chunk, rows keep the location and no bytes, the recording reads back and verifies", async () => {
    const ps = pieces(20, 1500);
    const id = await recordSession(e, e.fs, "dev-db", ps);
    const rows = await e.store.prisma.recordingChunk.findMany({ where: { sessionId: id }, orderBy: { idx: "asc" } });
    expect(rows.map((r) => [r.idx, r.storage, r.location, r.data])).toEqual(rows.map((_, i) => [i + 1, "fs", `${id}/${String(i + 1).padStart(8, "0")}.zz`, null]));
    expect((await readdir(join(e.dir, "recordings", id))).length).toBe(rows.length);
    expect(bytesOf(await lines(e, id)).equals(Buffer.concat(ps))).toBe(true);
    expect(await verify(e, id)).toMatchObject({ ok: true, findings: [] });
  });

  it("a chunk whose stored bytes were altered is refused on replay, after the chunks before it", async () => {
    const id = await recordSession(e, e.db, "dev-db", pieces(20, 1000));
    const forged = Buffer.alloc(4096 - 9 - 9, 0x41);
    const header = Buffer.from([0, 0, 0, 1, 1, 0, 0, forged.length >> 8, forged.length & 0xff]);
    await e.store.prisma.recordingChunk.update({ where: { sessionId_idx: { sessionId: id, idx: 2 } }, data: { data: new Uint8Array(deflateSync(Buffer.concat([header, forged]))) } });
    const all = await lines(e, id);
    const last = all.at(-1)!;
    expect(last).toMatchObject({ error: { code: "INTERNAL", message: expect.stringMatching(/chunk #2 .*(digest|holds)/) } });
    expect(all.some((l) => "end" in l)).toBe(false);
  });

  it("retention deletes recordings past the matching rule, leaves one signed tombstone per session, and the sessions still verify", async () => {
    const dev = await recordSession(e, e.fs, "dev-db", pieces(12, 2000));
    const prod = await recordSession(e, e.db, "prod-db", pieces(6, 2000));
    const orphan = await recordSession(e, e.db, "deleted-connection", pieces(6, 2000));
    const devChunks = await e.store.prisma.recordingChunk.findMany({ where: { sessionId: dev }, orderBy: { idx: "asc" } });
    const now = () => new Date(Date.now() + 30 * DAY);
    const rules = [{ labels: { env: "dev" }, recordingDays: 7 }, { labels: { env: "prod" }, recordingDays: 365 }];
    const swept = await new RecordingRetention({ store: e.store, recordings: e.fs, keys: e.keys, rules, log, now }).sweep();
    // Every dev-db session recorded by the earlier tests is 30 days old too.
    expect(swept.sessions).toBeGreaterThanOrEqual(1);

    expect(await e.store.prisma.recordingChunk.count({ where: { sessionId: dev } })).toBe(0);
    await expect(readdir(join(e.dir, "recordings", dev))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await e.store.prisma.session.findUniqueOrThrow({ where: { id: dev } })).recordingStorage).toBe("deleted");
    const tombs = await e.store.prisma.auditTombstone.findMany({ where: { sessionId: dev } });
    expect(tombs).toHaveLength(1);
    expect(tombs[0]!.links).toEqual(devChunks.map((c) => [c.link, Buffer.from(c.prevHash).toString("hex"), Buffer.from(c.hash).toString("hex")]));
    expect(tombs[0]!.reason).toMatch(/retention.*"env":"dev".*7 days/);
    const v = await verify(e, dev);
    expect(v.ok).toBe(true);
    expect(v.findings.map((f) => [f.severity, f.code, f.link])).toEqual(devChunks.map((c) => ["info", "TOMBSTONE", c.link]));

    // The prod rule keeps a year; a session whose connection is gone has no labels, so no rule here matches it.
    expect(await e.store.prisma.recordingChunk.count({ where: { sessionId: prod } })).toBeGreaterThan(0);
    expect(await e.store.prisma.recordingChunk.count({ where: { sessionId: orphan } })).toBeGreaterThan(0);

    // A catch-all rule applies to it; a second pass over already swept sessions changes nothing.
    const catchAll = new RecordingRetention({ store: e.store, recordings: e.fs, keys: e.keys, rules: [...rules, { labels: {}, recordingDays: 1 }], log, now });
    await catchAll.sweep();
    expect(await e.store.prisma.recordingChunk.count({ where: { sessionId: orphan } })).toBe(0);
    expect(await verify(e, orphan)).toMatchObject({ ok: true });
    expect(await catchAll.sweep()).toEqual({ sessions: 0, chunks: 0 });
    expect(await e.store.prisma.auditTombstone.count({ where: { sessionId: dev } })).toBe(1);
    expect(await e.store.prisma.recordingChunk.count({ where: { sessionId: prod } })).toBeGreaterThan(0);
  });

  it("a long recording gets one tombstone per batch; a chunk removed without one fails verification", async () => {
    const long = await recordSession(e, e.db, "prod-db", pieces(20, 2000));
    const n = await e.store.prisma.recordingChunk.count({ where: { sessionId: long } });
    const now = () => new Date(Date.now() + 400 * DAY);
    await new RecordingRetention({ store: e.store, recordings: e.db, keys: e.keys, rules: [{ labels: { env: "prod" }, recordingDays: 365 }], log, now, batch: 4 }).sweep();
    expect(await e.store.prisma.auditTombstone.count({ where: { sessionId: long } })).toBe(Math.ceil(n / 4));
    expect(await verify(e, long)).toMatchObject({ ok: true });

    // Control: the same deletion without a tombstone is what verification exists to catch.
    const tampered = await recordSession(e, e.db, "dev-db", pieces(10, 2000));
    await e.store.prisma.recordingChunk.delete({ where: { sessionId_idx: { sessionId: tampered, idx: 2 } } });
    const v = await verify(e, tampered);
    expect(v.ok).toBe(false);
    expect(v.findings).toContainEqual(expect.objectContaining({ code: "REMOVED", link: 3 }));
  });
});
