// Checks one session's records against its hash chain, checkpoints and
// tombstones (chain.ts, checkpoint.ts), and names each record that was
// altered, removed or reordered. Pure: no I/O, so the CLI runs it on what
// the API returned, with public keys it fetched or was given (--key).
// Work is linear in the number of stored records: positions come from rows
// (attacker-controlled), so nothing loops over a claimed position range.
import { genesis } from "./chain.js";
import { checkpointHash, checkpointPayload, verifySignature, type PublicKeys } from "./checkpoint.js";
import { buf, collectLinks, hx, type AddFinding, type Link } from "./links.js";
import type { CheckpointMaterial, Finding, SessionMaterial } from "./material.js";

export interface VerifyResult {
  sessionId: string;
  links: number;
  checkpoints: number;
  findings: Finding[];
  ok: boolean;
}

export interface VerifyOptions {
  /** "Now" for judging unsigned records (default: the clock). */
  now?: Date;
  /**
   * Records older than this with no checkpoint over them are errors, not warnings: the
   * gateway signs open sessions every checkpointSeconds (default 30 s), so an old unsigned
   * tail means checkpoints were removed. Default 10 minutes.
   */
  unsignedGraceMs?: number;
}

export function verifySession(m: SessionMaterial, keys: PublicKeys, opts: VerifyOptions = {}): VerifyResult {
  const sid = m.session.id;
  const findings: Finding[] = [];
  const add: AddFinding = (f) => findings.push({ sessionId: sid, ...f });
  if (!m.session.chainHash) {
    // Only sessions from before tamper evidence may lack a chain; one with any chain material was stripped.
    const stripped = m.checkpoints.length > 0 || m.tombstones.length > 0 || m.chunks.length > 0 || m.statements.some((s) => s.link !== null) || m.session.endLink !== null;
    add(stripped
      ? { severity: "error", code: "ALTERED", record: "the session's start record", message: "the session's chain start was removed, but it has chain records and checkpoints" }
      : { severity: "warning", code: "NO_CHAIN", message: "session recorded without a hash chain (before tamper evidence was enabled)" });
    return done(sid, 0, m.checkpoints.length, findings);
  }

  const links = collectLinks(m, add, keys);
  const valid = checkCheckpointSignatures(m, keys, add);
  const byPos = new Map<number, Link[]>();
  for (const l of links) {
    const at = byPos.get(l.position);
    // A tombstone over a record that is still there (read while retention ran) changes nothing.
    if (at && l.tombstone && at.some((x) => x.hash === l.hash)) continue;
    if (at && !l.tombstone) {
      const i = at.findIndex((x) => x.tombstone && x.hash === l.hash);
      if (i >= 0) at.splice(i, 1);
    }
    if (at) at.push(l);
    else byPos.set(l.position, [l]);
  }
  const positions = [...byPos.keys()].sort((a, b) => a - b);
  // A tombstone may not know a lost link's hash (lost in a crash): the next link's prev stands for it.
  for (let i = 0; i < positions.length; i++) {
    for (const l of byPos.get(positions[i]!)!) if (l.tombstone && !l.hash) l.hash = l.prev = positions[i + 1] === positions[i]! + 1 ? (byPos.get(positions[i + 1]!)![0]!.prev ?? "") : "";
  }
  const byHash = new Map<string, Link>();
  for (const l of links) if (l.hash) byHash.set(l.hash, l);
  let signedMax = 0;
  for (const c of valid) signedMax = Math.max(signedMax, c.links);
  const lastPresent = positions.length ? positions[positions.length - 1]! : 0;
  const max = Math.max(signedMax, lastPresent);

  // Own hashes first: a record whose content changed, or that moved (reorder shows as a changed seq).
  const failed = links.filter((l) => l.computed !== null && l.computed !== l.hash);
  const seqs = new Set(failed.filter((l) => l.seq !== undefined).map((l) => l.seq!));
  const explained = new Set<Link>();
  for (const l of failed) {
    let moved: number | undefined;
    if (l.withSeq && seqs.size <= 1_000) for (const s of seqs) if (s !== l.seq && l.withSeq(s) === l.hash) (moved = s);
    if (moved !== undefined) {
      explained.add(l);
      add({ severity: "error", code: "REORDERED", link: l.position, record: l.label, message: `${l.label} was recorded as statement #${moved}: records were reordered` });
    } else {
      add({ severity: "error", code: "ALTERED", link: l.position, record: l.label, message: `${l.label} was altered after it was recorded (its content no longer matches its hash)` });
    }
  }

  // Then the links between records, over the positions that exist; gaps are reported as ranges.
  let prevHash = hx(genesis(sid));
  let prevPos = 0;
  const gap = (from: number, to: number, before: Link | undefined, after: Link | undefined) => {
    const where = before && after ? ` (between ${before.label} and ${after.label})` : before ? ` (after ${before.label}, signed by a checkpoint)` : "";
    const what = from === to ? `the record at link ${from}` : `the ${to - from + 1} records at links ${from}–${to}`;
    add({ severity: "error", code: "REMOVED", link: from, record: from === to ? `link ${from}` : `links ${from}–${to}`, message: `${what}${where} ${from === to ? "was" : "were"} removed` });
  };
  for (const p of positions) {
    const at = byPos.get(p)!;
    const l = at[0]!;
    if (p > prevPos + 1) gap(prevPos + 1, p - 1, byPos.get(prevPos)?.[0], l);
    if (at.length > 1) add({ severity: "error", code: "REORDERED", link: p, record: at.map((x) => x.label).join(", "), message: `${at.length} records claim link ${p}: ${at.map((x) => x.label).join(", ")}` });
    // Lost in a crash: the tombstone cannot know what came before it (and maybe not its own hash).
    const unknownLost = l.tombstone && l.computed === null && (l.prev === l.hash || l.prev === "");
    if (l.prev !== prevHash && !explained.has(l) && !unknownLost && p === prevPos + 1) {
      const other = byHash.get(l.prev);
      if (other && other.position !== p - 1) add({ severity: "error", code: "REORDERED", link: p, record: l.label, message: `${l.label} follows ${other.label} in the chain, not the record at link ${p - 1}: records were reordered` });
      else add({ severity: "error", code: "ALTERED", link: p, record: l.label, message: `the chain is broken before ${l.label}: the record at link ${p - 1} or this record's link was rewritten` });
    }
    if (l.tombstone) add({ severity: "info", code: "TOMBSTONE", link: p, record: l.label, message: `${l.label} is not in the store: ${l.tombstone}` });
    prevHash = l.hash;
    prevPos = p;
  }
  if (max > lastPresent) gap(lastPresent + 1, max, byPos.get(lastPresent)?.[0], undefined);

  checkCoverage(m, valid, byPos, lastPresent, max, links, add, opts);
  return done(sid, max, m.checkpoints.length, findings);
}

function done(sessionId: string, links: number, checkpoints: number, findings: Finding[]): VerifyResult {
  return { sessionId, links, checkpoints, findings, ok: !findings.some((f) => f.severity === "error") };
}

/** Signature, own hash and session of each checkpoint; returns the valid ones. */
function checkCheckpointSignatures(m: SessionMaterial, keys: PublicKeys, add: AddFinding): CheckpointMaterial[] {
  const valid: CheckpointMaterial[] = [];
  for (const c of m.checkpoints) {
    const name = `checkpoint ${c.id} (${c.kind}, ${c.links} links)`;
    const problem = checkpointProblem(c, keys);
    if (problem === "unknown-key") add({ severity: "error", code: "UNKNOWN_KEY", record: name, message: `${name} is signed by unknown key ${c.keyId}` });
    else if (problem || c.sessionId !== m.session.id) add({ severity: "error", code: "CHECKPOINT_INVALID", record: name, message: `${name}: the signature does not match its content (the checkpoint was altered or swapped in from elsewhere)` });
    else valid.push(c);
  }
  return valid;
}

function checkpointProblem(c: CheckpointMaterial, keys: PublicKeys): "unknown-key" | "bad" | null {
  const rec = { ...c, head: buf(c.head), prevHash: c.prevHash ? buf(c.prevHash) : null };
  const sig = verifySignature(keys, c.keyId, checkpointPayload(rec), buf(c.signature));
  if (sig !== "ok") return sig;
  return hx(checkpointHash(rec)) === c.hash ? null : "bad";
}

/** Do the valid checkpoints cover the records? Heads must match; a closed session needs its final seal. */
function checkCoverage(m: SessionMaterial, valid: CheckpointMaterial[], byPos: Map<number, Link[]>, lastPresent: number, max: number, links: Link[], add: AddFinding, opts: VerifyOptions): void {
  for (const c of valid) {
    const at = byPos.get(c.links)?.[0];
    const name = `checkpoint ${c.id} (${c.kind}, ${c.links} links)`;
    if (at && at.hash !== c.head) add({ severity: "error", code: "CHECKPOINT_MISMATCH", link: c.links, record: name, message: `the records up to link ${c.links} are not the ones ${name} signed (${at.label} differs)` });
  }
  let last: CheckpointMaterial | null = null;
  let final: CheckpointMaterial | null = null;
  for (const c of valid) {
    if (!last || c.links > last.links) last = c;
    if ((c.kind === "final" || c.kind === "recovered") && (!final || c.links > final.links)) final = c;
  }
  const closed = m.session.endedAt !== null || (m.session.outcome !== undefined && m.session.outcome !== "active");
  if (final && lastPresent > final.links) {
    add({ severity: "error", code: "ALTERED", link: final.links + 1, record: `link ${final.links + 1}`, message: `${lastPresent - final.links} record(s) were added after the session was closed (its ${final.kind} checkpoint signed ${final.links} links)` });
    return;
  }
  if (final) return;
  if (closed) {
    add({ severity: "error", code: "CHECKPOINT_MISSING", message: "the session is closed but has no final checkpoint (removed?)" });
    return;
  }
  if (max === 0 || (last && max <= last.links)) return;
  // Open session with records no checkpoint covers: normal for a few seconds, suspicious after the grace period.
  const from = last ? last.links + 1 : 1;
  let oldest = Infinity;
  for (const l of links) if (l.position >= from && l.at) oldest = Math.min(oldest, Date.parse(l.at));
  const now = (opts.now ?? new Date()).getTime();
  const stale = now - oldest > (opts.unsignedGraceMs ?? 10 * 60_000);
  add({
    severity: stale ? "error" : "warning",
    code: stale ? "CHECKPOINT_MISSING" : "UNSIGNED",
    link: from,
    message: stale ? `links ${from}–${max} were recorded long ago but no checkpoint signs them (checkpoints removed?)` : `links ${from}–${max} come after the newest checkpoint (session still open)`,
  });
}

/**
 * Checks the checkpoint streams seen in a time range: each checkpoint's signature and hash, and that
 * each signer's checkpoints follow each other without gaps. A gap means checkpoints (and maybe the
 * sessions they sealed) were removed.
 */
export function verifyStreams(checkpoints: readonly CheckpointMaterial[], keys?: PublicKeys, anchors: ReadonlySet<string> = new Set()): Finding[] {
  const out: Finding[] = [];
  const streams = new Map<string, CheckpointMaterial[]>();
  for (const c of checkpoints) {
    if (keys) {
      const problem = checkpointProblem(c, keys);
      if (problem && anchors.has(c.id)) {
        // The checkpoint before the range: its own session is outside the range; continuity can't be checked from it.
        out.push({ severity: "warning", code: "CHECKPOINT_INVALID", sessionId: c.sessionId, record: `checkpoint ${c.id}`, message: `checkpoint ${c.id}, just before the range in signer stream ${c.stream}, is not validly signed: verify the earlier range too` });
        continue;
      }
      if (problem) {
        out.push({ severity: "error", code: problem === "unknown-key" ? "UNKNOWN_KEY" : "CHECKPOINT_INVALID", sessionId: c.sessionId, record: `checkpoint ${c.id}`, message: `checkpoint ${c.id} of signer stream ${c.stream} is not validly signed` });
        continue;
      }
    }
    let list = streams.get(c.stream);
    if (!list) streams.set(c.stream, (list = []));
    list.push(c);
  }
  for (const [stream, list] of streams) {
    list.sort((a, b) => a.streamSeq - b.streamSeq);
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (b.streamSeq === a.streamSeq) continue;
      if (b.streamSeq !== a.streamSeq + 1) {
        out.push({ severity: "error", code: "REMOVED", sessionId: b.sessionId, record: `checkpoint stream ${stream}`, message: `checkpoints #${a.streamSeq + 1}–#${b.streamSeq - 1} of signer stream ${stream} are missing (removed with their sessions?)` });
      } else if (b.prevHash !== a.hash) {
        out.push({ severity: "error", code: "ALTERED", sessionId: b.sessionId, record: `checkpoint ${b.id}`, message: `checkpoint ${b.id} does not follow checkpoint ${a.id} of its stream` });
      }
    }
  }
  return out;
}
