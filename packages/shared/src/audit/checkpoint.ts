// Signed checkpoints and tombstones (Ed25519, RFC 8032, via node:crypto).
//
// A checkpoint says "session S's chain had N links ending in HEAD" and is
// signed by the gateway's audit key. Checkpoints of one signer process form
// their own chain (stream id, seq, prev hash), so removing a checkpoint, or a
// whole session with its checkpoints, leaves a gap a verifier can name.
// A tombstone is a signed list of links that were deliberately removed
// (retention, or records the store refused): verification uses their hashes in
// place of the missing rows and reports why they are gone.
import { createHash, createPublicKey, verify as edVerify, type KeyObject } from "node:crypto";
import { canonical, isoMs } from "./canon.js";

export type CheckpointKind = "periodic" | "final" | "recovered";

export interface CheckpointRecord {
  sessionId: string;
  links: number;
  head: Uint8Array;
  kind: string;
  at: Date | string;
  keyId: string;
  stream: string;
  streamSeq: number;
  prevHash: Uint8Array | null;
}

/** The bytes a checkpoint's signature covers. */
export function checkpointPayload(c: CheckpointRecord): Buffer {
  return canonical(["airlock.checkpoint.v1", c.sessionId, c.links, c.head, c.kind, isoMs(c.at), c.keyId, c.stream, c.streamSeq, c.prevHash]);
}

/** A checkpoint's own hash: the next checkpoint of its stream points at it. */
export function checkpointHash(c: CheckpointRecord): Buffer {
  return createHash("sha256").update(checkpointPayload(c)).digest();
}

export interface TombstoneRecord {
  sessionId: string;
  at: Date | string;
  reason: string;
  /** [link, prevHex, hashHex] of each removed link. */
  links: ReadonlyArray<readonly [number, string, string]>;
  keyId: string;
}

export function tombstonePayload(t: TombstoneRecord): Buffer {
  return canonical(["airlock.tombstone.v1", t.sessionId, isoMs(t.at), t.reason, t.links.map((l) => [...l]), t.keyId]);
}

/** Public keys by id: PEM (SPKI) strings or key objects. */
export type PublicKeys = ReadonlyMap<string, string | KeyObject>;

export function verifySignature(keys: PublicKeys, keyId: string, payload: Buffer, signature: Uint8Array): "ok" | "unknown-key" | "bad" {
  const k = keys.get(keyId);
  if (!k) return "unknown-key";
  try {
    return edVerify(null, payload, typeof k === "string" ? createPublicKey(k) : k, signature) ? "ok" : "bad";
  } catch {
    return "bad";
  }
}
