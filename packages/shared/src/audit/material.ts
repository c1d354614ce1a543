// What `airlock audit verify` checks, as the gateway's API hands it over
// (GET /api/v1/audit/material): every record of a session exactly as stored,
// with hashes and signatures as lowercase hex. The verifier recomputes every
// hash from these values itself.
import type { SessionEndRecord, SessionStartRecord, StatementEndRecord, StatementStartRecord, ChunkRecord } from "./chain.js";

type Hex = string;

export interface SessionMaterial {
  session: Omit<SessionStartRecord, "startedAt"> & Partial<Omit<SessionEndRecord, "endedAt">> & {
    startedAt: string;
    endedAt: string | null;
    chainHash: Hex | null;
    endLink: number | null;
    endPrevHash: Hex | null;
    endHash: Hex | null;
  };
  statements: StatementMaterial[];
  chunks: ChunkMaterial[];
  checkpoints: CheckpointMaterial[];
  tombstones: TombstoneMaterial[];
}

/** A statement row: its record fields, its current status/outcome fields, and both links. */
export type StatementMaterial = Omit<StatementStartRecord, "startedAt" | "status" | "errorCode" | "error"> &
  Omit<StatementEndRecord, "status"> & {
    status: string;
    startedAt: string;
    link: number | null;
    prevHash: Hex | null;
    hash: Hex | null;
    endLink: number | null;
    endPrevHash: Hex | null;
    endHash: Hex | null;
  };

export type ChunkMaterial = Omit<ChunkRecord, "digest" | "at"> & { at: string; digest: Hex; link: number; prevHash: Hex; hash: Hex };

export interface CheckpointMaterial {
  id: string;
  sessionId: string;
  links: number;
  head: Hex;
  kind: string;
  at: string;
  keyId: string;
  stream: string;
  streamSeq: number;
  prevHash: Hex | null;
  hash: Hex;
  signature: Hex;
}

export interface TombstoneMaterial {
  id: string;
  sessionId: string;
  at: string;
  reason: string;
  links: Array<[number, Hex, Hex]>;
  keyId: string;
  signature: Hex;
}

export type Severity = "error" | "warning" | "info";

/** One thing verification found. `record` names the row in words an auditor can look up. */
export interface Finding {
  severity: Severity;
  /** ALTERED | REMOVED | REORDERED | CHECKPOINT_INVALID | CHECKPOINT_MISMATCH | UNKNOWN_KEY | UNSIGNED | NO_CHAIN | TOMBSTONE | NOT_RECORDED */
  code: string;
  sessionId: string;
  record?: string;
  link?: number;
  message: string;
}
