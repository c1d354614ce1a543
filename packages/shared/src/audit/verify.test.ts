// The verifier against sessions built here with the writer's own chain code
// and a real Ed25519 key, then tampered with the way someone with database
// access would: each change must be found and named.
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ChainHead, chunkFields, sessionEndFields, sessionStartFields, statementEndFields, statementStartFields } from "./chain.js";
import { checkpointHash, checkpointPayload, tombstonePayload } from "./checkpoint.js";
import type { CheckpointMaterial, SessionMaterial, StatementMaterial } from "./material.js";
import { verifySession, verifyStreams } from "./verify.js";

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const keys = new Map([["k1", publicKey.export({ format: "pem", type: "spki" }).toString()]]);
const hex = (b: Buffer | null) => (b ? b.toString("hex") : null);
let streamSeq = 0;
let streamPrev: Buffer | null = null;

function checkpoint(sessionId: string, head: ChainHead, kind: string): CheckpointMaterial {
  const c = { sessionId, links: head.links, head: head.head, kind, at: new Date("2026-11-24T10:00:00.000Z"), keyId: "k1", stream: "7b0c6a8e-0000-4000-8000-000000000001", streamSeq: ++streamSeq, prevHash: streamPrev };
  const hash = checkpointHash(c);
  streamPrev = hash;
  return { id: `cp-${streamSeq}`, sessionId, links: c.links, head: c.head.toString("hex"), kind, at: c.at.toISOString(), keyId: "k1", stream: c.stream, streamSeq: c.streamSeq, prevHash: hex(c.prevHash), hash: hash.toString("hex"), signature: sign(null, checkpointPayload(c), privateKey).toString("hex") };
}

/** A closed session of n statements, each completed; a periodic checkpoint after the 2nd, final at the end. */
function session(id: string, n = 4): SessionMaterial {
  const h = new ChainHead(id);
  const start = { id, subject: "alice", subjectKind: "user", authMethod: "oidc", tokenId: null, connectionName: "pg", protocol: "postgres", clientAddr: "127.0.0.1", startedAt: "2026-11-24T09:00:00.000Z", groups: ["dba"], recordMode: "closed" };
  const chainHash = hex(h.append("session.start", sessionStartFields(start)).hash);
  const statements: StatementMaterial[] = [];
  const checkpoints: CheckpointMaterial[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const rec = { id: `00000000-0000-4000-8000-${String(seq).padStart(12, "0")}`, seq, subject: "alice", text: `SELECT ${seq} FROM customers`, kind: "select", command: "SELECT", objects: ["customers"], decision: "allow", rule: null, reason: null, status: "pending", startedAt: new Date(Date.parse("2026-11-24T09:00:00Z") + seq).toISOString(), errorCode: null, error: null };
    const a = h.append("statement", statementStartFields(rec));
    const end = { status: "ok", durationMs: 1.5 * seq, rows: String(seq), commandTag: `SELECT ${seq}`, masked: 0, errorCode: null, error: null };
    const b = h.append("statement.end", statementEndFields(end));
    statements.push({ ...rec, ...end, link: a.link, prevHash: hex(a.prev), hash: hex(a.hash), endLink: b.link, endPrevHash: hex(b.prev), endHash: hex(b.hash) });
    if (seq === 2) checkpoints.push(checkpoint(id, h, "periodic"));
  }
  const endRec = { endedAt: "2026-11-24T09:01:00.000Z", bytesUp: "100", bytesDown: "2000", outcome: "ok", errorCode: null, error: null, unrecorded: 0, recordingChunks: 0, recordingBytes: "0" };
  const e = h.append("session.end", sessionEndFields(endRec));
  checkpoints.push(checkpoint(id, h, "final"));
  return { session: { ...start, ...endRec, chainHash, endLink: e.link, endPrevHash: hex(e.prev), endHash: hex(e.hash) }, statements, chunks: [], checkpoints, tombstones: [] };
}

const errors = (m: SessionMaterial) => verifySession(m, keys).findings.filter((f) => f.severity === "error");

describe("verifySession", () => {
  it("accepts an untouched session with no findings at all", () => {
    const r = verifySession(session("a1"), keys);
    expect(r.findings).toEqual([]);
    expect(r).toMatchObject({ ok: true, links: 10, checkpoints: 2 });
  });

  it("names a statement whose text was edited", () => {
    const m = session("a2");
    m.statements[2]!.text = "SELECT 3 FROM customers -- nothing to see";
    expect(errors(m)).toEqual([expect.objectContaining({ code: "ALTERED", record: `statement #3 (${m.statements[2]!.id})` })]);
  });

  it("names an outcome that was edited (rows returned)", () => {
    const m = session("a3");
    m.statements[0]!.rows = "0";
    expect(errors(m)).toEqual([expect.objectContaining({ code: "ALTERED", record: expect.stringContaining("the outcome of statement #1") })]);
  });

  it("names the place of a deleted statement", () => {
    const m = session("a4");
    const [gone] = m.statements.splice(1, 1);
    const e = errors(m);
    expect(e).toEqual([expect.objectContaining({ code: "REMOVED", link: gone!.link, record: `links ${gone!.link}–${gone!.endLink}` })]);
    expect(e[0]!.message).toContain(`between the outcome of statement #1 (${m.statements[0]!.id}) and statement #3`);
  });

  it("names two statements swapped in order as reordered, not altered", () => {
    const m = session("a5");
    const [x, y] = [m.statements[1]!, m.statements[2]!];
    [x.seq, y.seq] = [y.seq, x.seq];
    const e = errors(m);
    expect(e.length).toBeGreaterThan(0);
    expect(e.every((f) => f.code === "REORDERED")).toBe(true);
    expect(e.map((f) => f.message).join("\n")).toContain(`statement #3 (${x.id}) was recorded as statement #2`);
  });

  it("names rows moved to other link positions as reordered", () => {
    const m = session("a6");
    const [x, y] = [m.statements[0]!, m.statements[1]!];
    [x.link, y.link] = [y.link, x.link];
    expect(errors(m).map((f) => f.code)).toContain("REORDERED");
  });

  it("finds a checkpoint swapped in from another session", () => {
    const m = session("a7");
    const other = session("a8");
    m.checkpoints[1] = { ...other.checkpoints[1]!, sessionId: "a7" };
    expect(errors(m)).toEqual([
      expect.objectContaining({ code: "CHECKPOINT_INVALID", record: expect.stringContaining(other.checkpoints[1]!.id) }),
      expect.objectContaining({ code: "CHECKPOINT_MISSING" }),
    ]);
  });

  it("finds a whole tail rewritten with fresh hashes: the signed head no longer matches", () => {
    const m = session("a9");
    // An attacker re-chains the last outcome: its own hash is consistent, but not what was signed.
    const s = m.statements[3]!;
    s.rows = "999";
    const h = new ChainHead("a9");
    h.head = Buffer.from(s.endPrevHash!, "hex");
    const b = h.append("statement.end", statementEndFields(s));
    s.endHash = b.hash.toString("hex");
    m.session.endPrevHash = s.endHash;
    const end = h.append("session.end", sessionEndFields({ ...m.session, endedAt: m.session.endedAt!, bytesUp: m.session.bytesUp!, bytesDown: m.session.bytesDown!, outcome: m.session.outcome!, errorCode: null, error: null, unrecorded: 0, recordingChunks: 0, recordingBytes: 0 }));
    m.session.endHash = end.hash.toString("hex");
    const codes = errors(m).map((f) => f.code);
    expect(codes).toContain("CHECKPOINT_MISMATCH");
  });

  it("flags records appended after the final checkpoint", () => {
    const m = session("b1");
    const extra = { ...m.statements[3]!, id: "x", seq: 9, link: 11, endLink: null, endPrevHash: null, endHash: null, prevHash: m.session.endHash };
    m.statements.push(extra);
    expect(errors(m).map((f) => f.code)).toContain("ALTERED");
  });

  it("refuses a checkpoint signed by an unknown key", () => {
    const m = session("b2");
    m.checkpoints[0]!.keyId = "k9";
    expect(errors(m)).toEqual([expect.objectContaining({ code: "UNKNOWN_KEY" })]);
  });

  it("accepts links removed under a valid signed tombstone and reports why", () => {
    const m = session("b3");
    const [gone] = m.statements.splice(1, 1);
    const t = { sessionId: "b3", at: "2026-11-25T00:00:00.000Z", reason: "retention", keyId: "k1", links: [[gone!.link!, gone!.prevHash!, gone!.hash!], [gone!.endLink!, gone!.endPrevHash!, gone!.endHash!]] as Array<[number, string, string]> };
    m.tombstones.push({ ...t, id: "t1", signature: sign(null, tombstonePayload(t), privateKey).toString("hex") });
    const r = verifySession(m, keys);
    expect(r.ok).toBe(true);
    expect(r.findings.map((f) => f.code)).toEqual(["TOMBSTONE", "TOMBSTONE"]);
    // The same tombstone with its list edited no longer counts.
    m.tombstones[0]!.links.pop();
    expect(errors(m).map((f) => f.code)).toContain("CHECKPOINT_INVALID");
  });

  it("accepts links lost in a crash (unknown hashes) when a tombstone lists them", () => {
    const m = session("b4");
    const s = m.statements[1]!;
    const lostAt = s.endLink!;
    Object.assign(s, { endLink: null, endPrevHash: null, endHash: null, status: "pending", durationMs: null, rows: null, commandTag: null });
    const t = { sessionId: "b4", at: "2026-11-25T00:00:00.000Z", reason: "lost when the gateway stopped abruptly", keyId: "k1", links: [[lostAt, "", ""]] as Array<[number, string, string]> };
    m.tombstones.push({ ...t, id: "t2", signature: sign(null, tombstonePayload(t), privateKey).toString("hex") });
    expect(verifySession(m, keys).findings).toEqual([expect.objectContaining({ severity: "info", code: "TOMBSTONE", link: lostAt })]);
  });

  it("verifies recording chunks like statements", () => {
    const h = new ChainHead("c1");
    const start = { id: "c1", subject: "bob", subjectKind: "user", authMethod: null, tokenId: null, connectionName: "ssh", protocol: "tcp", clientAddr: null, startedAt: "2026-11-24T09:00:00.000Z", groups: [], recordMode: "closed" };
    const chainHash = hex(h.append("session.start", sessionStartFields(start)).hash);
    const chunk = { idx: 0, at: "2026-11-24T09:00:01.000Z", frames: 3, rawBytes: 42, digest: Buffer.alloc(32, 7) };
    const l = h.append("chunk", chunkFields(chunk));
    const m: SessionMaterial = { session: { ...start, endedAt: null, chainHash, endLink: null, endPrevHash: null, endHash: null }, statements: [], chunks: [{ ...chunk, digest: chunk.digest.toString("hex"), link: l.link, prevHash: hex(l.prev)!, hash: hex(l.hash)! }], checkpoints: [checkpoint("c1", h, "periodic")], tombstones: [] };
    expect(verifySession(m, keys).findings).toEqual([]);
    m.chunks[0]!.rawBytes = 41;
    expect(errors(m)).toEqual([expect.objectContaining({ code: "ALTERED", record: "recording chunk #0" })]);
  });
});

describe("verifySession against stripping and forged positions", () => {
  it("refuses a session whose chain start was removed to pass it off as unchained", () => {
    const m = session("e1");
    m.session.chainHash = null;
    expect(errors(m)).toEqual([expect.objectContaining({ code: "ALTERED", record: "the session's start record" })]);
  });

  it("names a statement row inserted without a chain link", () => {
    const m = session("e2");
    m.statements.push({ ...m.statements[0]!, id: "forged", seq: 9, link: null, prevHash: null, hash: null, endLink: null, endPrevHash: null, endHash: null });
    expect(errors(m)).toEqual([expect.objectContaining({ code: "ALTERED", record: "statement #9 (forged)" })]);
  });

  it("refuses a closed session whose final checkpoint was deleted", () => {
    const m = session("e3");
    m.checkpoints.pop();
    expect(errors(m)).toEqual([expect.objectContaining({ code: "CHECKPOINT_MISSING" })]);
  });

  it("refuses an open session rewritten with its checkpoints deleted once the records are old, and only warns while they are fresh", () => {
    const m = session("e4");
    Object.assign(m.session, { endedAt: null, endLink: null, endPrevHash: null, endHash: null, outcome: "active" });
    m.checkpoints = [];
    const late = verifySession(m, keys, { now: new Date("2026-11-24T11:00:00Z") });
    expect(late.findings).toEqual([expect.objectContaining({ severity: "error", code: "CHECKPOINT_MISSING" })]);
    const fresh = verifySession(m, keys, { now: new Date("2026-11-24T09:01:00Z") });
    expect(fresh).toMatchObject({ ok: true, findings: [expect.objectContaining({ severity: "warning", code: "UNSIGNED" })] });
  });

  it("stays linear when a row claims a huge link position", () => {
    const m = session("e5");
    m.statements[3]!.endLink = 2 ** 31 - 1;
    const started = process.hrtime.bigint();
    const e = errors(m);
    expect(e.map((f) => f.code)).toContain("REMOVED");
    expect(e.length).toBeLessThan(10);
    expect(Number(process.hrtime.bigint() - started)).toBeGreaterThan(0);
  });

  it("ignores a tombstone over records that are still present (read while retention ran)", () => {
    const m = session("e6");
    const st = m.statements[1]!;
    const t = { sessionId: "e6", at: "2026-11-25T00:00:00.000Z", reason: "retention", keyId: "k1", links: [[st.link!, st.prevHash!, st.hash!]] as Array<[number, string, string]> };
    m.tombstones.push({ ...t, id: "t3", signature: sign(null, tombstonePayload(t), privateKey).toString("hex") });
    expect(verifySession(m, keys).findings).toEqual([]);
  });

  it("handles a session of 150,000 links", () => {
    const m = session("e7", 75_000);
    expect(verifySession(m, keys)).toMatchObject({ ok: true, links: 150_002 });
  });
});

describe("verifyStreams", () => {
  it("refuses unsigned filler put in place of removed checkpoints", () => {
    const all = [session("f1"), session("f2")].flatMap((m) => m.checkpoints);
    const filler = { ...all[1]!, signature: "00".repeat(64) };
    expect(verifyStreams([all[0]!, filler, ...all.slice(2)], keys)).toEqual([expect.objectContaining({ code: "CHECKPOINT_INVALID" }), expect.objectContaining({ code: "REMOVED" })]);
  });

  it("names checkpoints missing from a signer's stream", () => {
    const all = [session("d1"), session("d2"), session("d3")].flatMap((m) => m.checkpoints);
    expect(verifyStreams(all)).toEqual([]);
    const gap = all.filter((_, i) => i !== 3);
    expect(verifyStreams(gap)).toEqual([expect.objectContaining({ code: "REMOVED", message: expect.stringContaining(`#${all[3]!.streamSeq}`) })]);
  });
});
