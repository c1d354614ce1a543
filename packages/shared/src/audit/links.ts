// Turns a session's stored material into chain links for the verifier
// (verify.ts): each link with its stored position, prev and hash, the hash
// recomputed from the row's content, and a name an auditor can look up.
import { chunkFields, genesis, linkHash, sessionEndFields, sessionStartFields, statementEndFields, statementStartFields, type LinkKind } from "./chain.js";
import type { CanonValue } from "./canon.js";
import { tombstonePayload, verifySignature, type PublicKeys } from "./checkpoint.js";
import type { Finding, SessionMaterial, StatementMaterial } from "./material.js";

export interface Link {
  position: number;
  kind: LinkKind;
  prev: string;
  hash: string;
  /** Hash recomputed from the row's content and its stored prev; null for tombstoned links. */
  computed: string | null;
  label: string;
  /** When the record was made (statements, chunks), for judging an unsigned tail's age. */
  at?: string;
  /** For statement records: recompute with another seq (reorder diagnosis). */
  withSeq?: (seq: number) => string;
  seq?: number;
  tombstone?: string;
}

export type AddFinding = (f: Omit<Finding, "sessionId">) => void;

export const hx = (b: Uint8Array) => Buffer.from(b).toString("hex");
export const buf = (h: string | null) => Buffer.from(h ?? "", "hex");

/** Links of every stored record, of valid tombstones; rows without a link in a chained session are findings. */
export function collectLinks(m: SessionMaterial, add: AddFinding, keys: PublicKeys): Link[] {
  const s = m.session;
  const out: Link[] = [];
  const g = hx(genesis(s.id));
  out.push({ position: 1, kind: "session.start", prev: g, hash: s.chainHash!, computed: hx(linkHash(buf(g), "session.start", sessionStartFields(s))), label: "the session's start record", at: s.startedAt });
  if (s.endLink !== null && s.endPrevHash && s.endHash) {
    const f = sessionEndFields({ endedAt: s.endedAt ?? "", bytesUp: s.bytesUp ?? 0, bytesDown: s.bytesDown ?? 0, outcome: s.outcome ?? "", errorCode: s.errorCode ?? null, error: s.error ?? null, unrecorded: s.unrecorded ?? 0, recordingChunks: s.recordingChunks ?? 0, recordingBytes: s.recordingBytes ?? 0 });
    out.push(mk(s.endLink, "session.end", s.endPrevHash, s.endHash, f, "the session's end record", s.endedAt ?? undefined));
  } else if (s.endedAt) {
    add({ severity: "error", code: "ALTERED", record: "the session's end record", message: "the session is closed but its end record has no chain link (written outside the gateway?)" });
  }
  for (const st of m.statements) {
    if (st.link === null || !st.prevHash || !st.hash) {
      add({ severity: "error", code: "ALTERED", record: `statement #${st.seq} (${st.id})`, message: `statement #${st.seq} (${st.id}) has no chain link: it was not recorded by the gateway (inserted afterwards?)` });
      continue;
    }
    out.push(...statementLinks(st));
  }
  for (const c of m.chunks) out.push(mk(c.link, "chunk", c.prevHash, c.hash, chunkFields({ ...c, digest: buf(c.digest) }), `recording chunk #${c.idx}`, c.at));
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

function mk(position: number, kind: LinkKind, prev: string, hash: string, fields: CanonValue[], label: string, at?: string): Link {
  return { position, kind, prev, hash, computed: hx(linkHash(buf(prev), kind, fields)), label, ...(at ? { at } : {}) };
}

function statementLinks(st: StatementMaterial): Link[] {
  const label = `statement #${st.seq} (${st.id})`;
  const completed = st.endLink !== null;
  const start = (seq: number) => statementStartFields({ ...st, seq, status: completed ? "pending" : st.status, errorCode: st.errorCode, error: st.error });
  const out: Link[] = [{ ...mk(st.link!, "statement", st.prevHash!, st.hash!, start(st.seq), label, st.startedAt), seq: st.seq, withSeq: (seq) => hx(linkHash(buf(st.prevHash), "statement", start(seq))) }];
  if (completed && st.endPrevHash && st.endHash) {
    out.push(mk(st.endLink!, "statement.end", st.endPrevHash, st.endHash, statementEndFields(st), `the outcome of statement #${st.seq} (${st.id})`, st.startedAt));
  }
  return out;
}
