// Checks one session's records against its hash chain, checkpoints and
// tombstones (chain.ts, checkpoint.ts), and names each record that was
// altered, removed or reordered. Pure: no I/O, so the CLI runs it on what
// the API returned, with public keys it fetched or was given (--key).
import { chunkFields, genesis, linkHash, sessionEndFields, sessionStartFields, statementEndFields, statementStartFields, type LinkKind } from "./chain.js";
import type { CanonValue } from "./canon.js";
import { checkpointHash, checkpointPayload, tombstonePayload, verifySignature, type PublicKeys } from "./checkpoint.js";
import type { CheckpointMaterial, Finding, SessionMaterial, StatementMaterial } from "./material.js";

interface Link {
  position: number;
  kind: LinkKind;
  prev: string;
  hash: string;
  /** Hash recomputed from the row's content and its stored prev; null for tombstoned links. */
  computed: string | null;
  label: string;
  /** For statement records: recompute with another seq (reorder diagnosis). */
  withSeq?: (seq: number) => string;
  seq?: number;
  tombstone?: string;
}

const hx = (b: Uint8Array) => Buffer.from(b).toString("hex");
const buf = (h: string | null) => Buffer.from(h ?? "", "hex");

export interface VerifyResult {
  sessionId: string;
  links: number;
  checkpoints: number;
  findings: Finding[];
  ok: boolean;
}

export function verifySession(m: SessionMaterial, keys: PublicKeys): VerifyResult {
  const sid = m.session.id;
  const findings: Finding[] = [];
  const add = (f: Omit<Finding, "sessionId">) => findings.push({ sessionId: sid, ...f });
  if (!m.session.chainHash) {
    add({ severity: "warning", code: "NO_CHAIN", message: "session recorded without a hash chain (before tamper evidence was enabled)" });
    return done(sid, 0, m.checkpoints.length, findings);
  }

  const links = collectLinks(m, add, keys);
  const byPos = new Map<number, Link[]>();
  for (const l of links) byPos.set(l.position, [...(byPos.get(l.position) ?? []), l]);
  // A tombstone may not know a lost link's hash (lost in a crash): the next link's prev stands for it.
  for (const l of links) if (l.tombstone && !l.hash) l.hash = l.prev = byPos.get(l.position + 1)?.[0]?.prev ?? "";
  const byHash = new Map(links.filter((l) => l.hash).map((l) => [l.hash, l]));
  const signedMax = Math.max(0, ...m.checkpoints.map((c) => c.links));
  const max = Math.max(signedMax, ...links.map((l) => l.position));

  // Own hashes first: a record whose content changed, or that moved (reorder shows as a changed seq).
  const failed = links.filter((l) => l.computed !== null && l.computed !== l.hash);
  const seqs = failed.filter((l) => l.seq !== undefined).map((l) => l.seq!);
  const explained = new Set<Link>();
  for (const l of failed) {
    const moved = l.withSeq ? seqs.find((s) => s !== l.seq && l.withSeq!(s) === l.hash) : undefined;
    if (moved !== undefined) {
      explained.add(l);
      add({ severity: "error", code: "REORDERED", link: l.position, record: l.label, message: `${l.label} was recorded as statement #${moved}: records were reordered` });
    } else {
      add({ severity: "error", code: "ALTERED", link: l.position, record: l.label, message: `${l.label} was altered after it was recorded (its content no longer matches its hash)` });
    }
  }

  // Then the links between records.
  let prevHash = hx(genesis(sid));
  for (let p = 1; p <= max; p++) {
    const at = byPos.get(p);
    if (!at) {
      add({ severity: "error", code: "REMOVED", link: p, record: `link ${p}`, message: `the record at link ${p} ${describeGap(byPos, p)} was removed` });
      continue;
    }
    if (at.length > 1) add({ severity: "error", code: "REORDERED", link: p, record: at.map((l) => l.label).join(", "), message: `${at.length} records claim link ${p}: ${at.map((l) => l.label).join(", ")}` });
    const l = at[0]!;
    if (l.prev !== prevHash && !explained.has(l) && !(l.tombstone && l.computed === null && l.prev === l.hash)) {
      const other = byHash.get(l.prev);
      if (other && other.position !== p - 1) add({ severity: "error", code: "REORDERED", link: p, record: l.label, message: `${l.label} follows ${other.label} in the chain, not the record at link ${p - 1}: records were reordered` });
      else if (byPos.has(p - 1)) add({ severity: "error", code: "ALTERED", link: p, record: l.label, message: `the chain is broken before ${l.label}: the record at link ${p - 1} or this record's link was rewritten` });
    }
    if (l.tombstone) add({ severity: "info", code: "TOMBSTONE", link: p, record: l.label, message: `${l.label} is not in the store: ${l.tombstone}` });
    prevHash = l.hash;
  }

  checkCheckpoints(m, byPos, max, keys, add);
  return done(sid, max, m.checkpoints.length, findings);
}

function done(sessionId: string, links: number, checkpoints: number, findings: Finding[]): VerifyResult {
  return { sessionId, links, checkpoints, findings, ok: !findings.some((f) => f.severity === "error") };
}

function describeGap(byPos: Map<number, Link[]>, p: number): string {
  let before: Link | undefined;
  let after: Link | undefined;
  for (let q = p - 1; q >= 1 && !before; q--) before = byPos.get(q)?.[0];
  for (let q = p + 1; q <= p + 100_000 && !after; q++) after = byPos.get(q)?.[0];
  if (before && after) return `(between ${before.label} and ${after.label})`;
  if (before) return `(after ${before.label}, signed by a checkpoint)`;
  return "";
}

function collectLinks(m: SessionMaterial, add: (f: Omit<Finding, "sessionId">) => void, keys: PublicKeys): Link[] {
  const s = m.session;
  const out: Link[] = [];
  const g = hx(genesis(s.id));
  const startFields = sessionStartFields({ ...s, startedAt: s.startedAt });
  out.push({ position: 1, kind: "session.start", prev: g, hash: s.chainHash!, computed: hx(linkHash(buf(g), "session.start", startFields)), label: "the session's start record" });
  if (s.endLink !== null && s.endPrevHash && s.endHash) {
    const f = sessionEndFields({ endedAt: s.endedAt ?? "", bytesUp: s.bytesUp ?? 0, bytesDown: s.bytesDown ?? 0, outcome: s.outcome ?? "", errorCode: s.errorCode ?? null, error: s.error ?? null, unrecorded: s.unrecorded ?? 0, recordingChunks: s.recordingChunks ?? 0, recordingBytes: s.recordingBytes ?? 0 });
    out.push(mk(s.endLink, "session.end", s.endPrevHash, s.endHash, f, "the session's end record"));
  }
  for (const st of m.statements) out.push(...statementLinks(st));
  for (const c of m.chunks) out.push(mk(c.link, "chunk", c.prevHash, c.hash, chunkFields({ ...c, digest: buf(c.digest) }), `recording chunk #${c.idx}`));
  for (const t of m.tombstones) {
    const sig = verifySignature(keys, t.keyId, tombstonePayload(t), buf(t.signature));
    if (sig !== "ok" || t.sessionId !== s.id) {
      add({ severity: "error", code: sig === "unknown-key" ? "UNKNOWN_KEY" : "CHECKPOINT_INVALID", record: `tombstone ${t.id}`, message: `tombstone ${t.id} ${sig === "unknown-key" ? `is signed by unknown key ${t.keyId}` : "has an invalid signature (altered or moved)"}` });
      continue;
    }
    for (const [position, prev, hash] of t.links) out.push({ position, kind: "chunk", prev, hash, computed: null, label: `link ${position}`, tombstone: `${t.reason} (tombstone ${t.id}, ${t.at})` });
  }
  return out;
}

function mk(position: number, kind: LinkKind, prev: string, hash: string, fields: CanonValue[], label: string): Link {
  return { position, kind, prev, hash, computed: hx(linkHash(buf(prev), kind, fields)), label };
}

function statementLinks(st: StatementMaterial): Link[] {
  if (st.link === null || !st.prevHash || !st.hash) return [];
  const label = `statement #${st.seq} (${st.id})`;
  const completed = st.endLink !== null;
  const start = (seq: number) =>
    statementStartFields({ ...st, seq, status: completed ? "pending" : st.status, errorCode: st.errorCode, error: st.error });
  const out: Link[] = [{ ...mk(st.link, "statement", st.prevHash, st.hash, start(st.seq), label), seq: st.seq, withSeq: (seq) => hx(linkHash(buf(st.prevHash), "statement", start(seq))) }];
  if (completed && st.endPrevHash && st.endHash) {
    out.push(mk(st.endLink!, "statement.end", st.endPrevHash, st.endHash, statementEndFields(st), `the outcome of statement #${st.seq} (${st.id})`));
  }
  return out;
}

function checkCheckpoints(m: SessionMaterial, byPos: Map<number, Link[]>, max: number, keys: PublicKeys, add: (f: Omit<Finding, "sessionId">) => void): void {
  const valid: CheckpointMaterial[] = [];
  for (const c of m.checkpoints) {
    const name = `checkpoint ${c.id} (${c.kind}, ${c.links} links)`;
    const rec = { ...c, head: buf(c.head), prevHash: c.prevHash ? buf(c.prevHash) : null };
    const sig = verifySignature(keys, c.keyId, checkpointPayload(rec), buf(c.signature));
    if (sig === "unknown-key") {
      add({ severity: "error", code: "UNKNOWN_KEY", record: name, message: `${name} is signed by unknown key ${c.keyId}` });
      continue;
    }
    if (sig === "bad" || c.sessionId !== m.session.id || hx(checkpointHash(rec)) !== c.hash) {
      add({ severity: "error", code: "CHECKPOINT_INVALID", record: name, message: `${name}: the signature does not match its content (the checkpoint was altered or swapped in from elsewhere)` });
      continue;
    }
    const at = byPos.get(c.links)?.[0];
    if (at && at.hash !== c.head) {
      add({ severity: "error", code: "CHECKPOINT_MISMATCH", link: c.links, record: name, message: `the records up to link ${c.links} are not the ones ${name} signed (${at.label} differs)` });
    }
    valid.push(c);
  }
  const last = valid.reduce<CheckpointMaterial | null>((a, c) => (!a || c.links > a.links ? c : a), null);
  const final = valid.find((c) => c.kind === "final" || c.kind === "recovered");
  if (final && max > final.links) {
    add({ severity: "error", code: "ALTERED", link: final.links + 1, record: `link ${final.links + 1}`, message: `${max - final.links} record(s) were added after the session was closed (its ${final.kind} checkpoint signed ${final.links} links)` });
  } else if (!last && max > 0) {
    add({ severity: "warning", code: "UNSIGNED", message: `no checkpoint signs this session's ${max} links yet` });
  } else if (last && max > last.links) {
    add({ severity: "warning", code: "UNSIGNED", link: last.links + 1, message: `links ${last.links + 1}–${max} come after the newest checkpoint (${m.session.endedAt ? "closed without a final checkpoint" : "session still open"})` });
  } else if (m.session.endedAt && !final) {
    add({ severity: "warning", code: "UNSIGNED", message: "the session ended without a final checkpoint" });
  }
}

/**
 * Checks the checkpoint streams seen in a time range: each signer's checkpoints
 * must follow each other without gaps. A gap means checkpoints (and maybe the
 * sessions they sealed) were removed.
 */
export function verifyStreams(checkpoints: readonly CheckpointMaterial[]): Finding[] {
  const out: Finding[] = [];
  const streams = new Map<string, CheckpointMaterial[]>();
  for (const c of checkpoints) streams.set(c.stream, [...(streams.get(c.stream) ?? []), c]);
  for (const [stream, list] of streams) {
    list.sort((a, b) => a.streamSeq - b.streamSeq);
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (b.streamSeq !== a.streamSeq + 1) {
        out.push({ severity: "error", code: "REMOVED", sessionId: b.sessionId, record: `checkpoint stream ${stream}`, message: `checkpoints #${a.streamSeq + 1}–#${b.streamSeq - 1} of signer stream ${stream} are missing (removed with their sessions?)` });
      } else if (b.prevHash !== a.hash) {
        out.push({ severity: "error", code: "ALTERED", sessionId: b.sessionId, record: `checkpoint ${b.id}`, message: `checkpoint ${b.id} does not follow checkpoint ${a.id} of its stream` });
      }
    }
  }
  return out;
}
