// One hash chain per session (tamper evidence). Every record that makes up
// the session is a link, numbered from 1 in the order the gateway produced
// them: the session's start (1), each statement's record and its completion,
// each recording chunk, and the session's end.
//
//   genesis    = SHA-256("airlock.audit.v1\0" + sessionId)
//   link.hash  = SHA-256(prev.hash ‖ kind ‖ 0x00 ‖ canonical(fields))
//
// Each stored link keeps its position, its prev hash and its hash, so a
// verifier can tell an altered record (its own hash no longer matches its
// content), a removed one (a position is missing) and a reordered one (its
// prev hash is another link's hash). The newest head is signed in
// checkpoints (checkpoint.ts); whoever rewrites a whole tail of links still
// has to forge a signature.
import { createHash } from "node:crypto";
import { canonical, isoMs, type CanonValue } from "./canon.js";

export type LinkKind = "session.start" | "session.end" | "statement" | "statement.end" | "chunk";

export function genesis(sessionId: string): Buffer {
  return createHash("sha256").update(`airlock.audit.v1\0${sessionId}`).digest();
}

export function linkHash(prev: Uint8Array, kind: LinkKind, fields: readonly CanonValue[]): Buffer {
  return createHash("sha256").update(prev).update(kind).update("\0").update(canonical(fields)).digest();
}

type Ts = Date | string;
type Big = bigint | number | string | null;
const big = (v: Big | undefined): string | null => (v === null || v === undefined ? null : BigInt(v).toString());

/** The fields of a session's start link, as written to (and read from) the sessions row. */
export interface SessionStartRecord {
  id: string;
  subject: string;
  subjectKind: string;
  authMethod: string | null;
  tokenId: string | null;
  connectionName: string;
  protocol: string;
  clientAddr: string | null;
  startedAt: Ts;
  groups: readonly string[];
  recordMode: string;
}

export function sessionStartFields(r: SessionStartRecord): CanonValue[] {
  return [r.id, r.subject, r.subjectKind, r.authMethod, r.tokenId, r.connectionName, r.protocol, r.clientAddr, isoMs(r.startedAt), [...r.groups], r.recordMode];
}

export interface SessionEndRecord {
  endedAt: Ts;
  bytesUp: Big;
  bytesDown: Big;
  outcome: string;
  errorCode: string | null;
  error: string | null;
  unrecorded: number;
  recordingChunks: number;
  recordingBytes: Big;
}

export function sessionEndFields(r: SessionEndRecord): CanonValue[] {
  return [isoMs(r.endedAt), big(r.bytesUp), big(r.bytesDown), r.outcome, r.errorCode, r.error, r.unrecorded, r.recordingChunks, big(r.recordingBytes)];
}

/**
 * A statement's record as written before it is forwarded. `status` is the
 * status at that moment: "pending" for statements about to run (their
 * completion is its own link), else final ("denied", "skipped") with the
 * error fields it was recorded with.
 */
export interface StatementStartRecord {
  id: string;
  seq: number;
  subject: string;
  text: string;
  kind: string;
  command: string | null;
  objects: readonly string[];
  decision: string;
  rule: string | null;
  reason: string | null;
  status: string;
  startedAt: Ts;
  errorCode: string | null;
  error: string | null;
}

export function statementStartFields(r: StatementStartRecord): CanonValue[] {
  const pending = r.status === "pending";
  return [r.id, r.seq, r.subject, r.text, r.kind, r.command, [...r.objects], r.decision, r.rule, r.reason, r.status, isoMs(r.startedAt), pending ? null : r.errorCode, pending ? null : r.error];
}

export interface StatementEndRecord {
  status: string;
  durationMs: number | null;
  rows: Big;
  commandTag: string | null;
  masked: number;
  errorCode: string | null;
  error: string | null;
}

export function statementEndFields(r: StatementEndRecord): CanonValue[] {
  return [r.status, r.durationMs, big(r.rows), r.commandTag, r.masked, r.errorCode, r.error];
}

/** A recording chunk: its place in the recording, its time, and the digest of its uncompressed frames. */
export interface ChunkRecord {
  idx: number;
  at: Ts;
  frames: number;
  rawBytes: number;
  digest: Uint8Array;
}

export function chunkFields(r: ChunkRecord): CanonValue[] {
  return [r.idx, isoMs(r.at), r.frames, r.rawBytes, Buffer.from(r.digest).toString("hex")];
}

/** Where a session's chain stands: the writer side (gateway) keeps one per open session. */
export class ChainHead {
  links = 0;
  head: Buffer;

  constructor(readonly sessionId: string) {
    this.head = genesis(sessionId);
  }

  /** Appends a link; returns its position, prev and hash (what the row stores). */
  append(kind: LinkKind, fields: readonly CanonValue[]): { link: number; prev: Buffer; hash: Buffer } {
    const prev = this.head;
    const hash = linkHash(prev, kind, fields);
    this.head = hash;
    this.links++;
    return { link: this.links, prev, hash };
  }
}
