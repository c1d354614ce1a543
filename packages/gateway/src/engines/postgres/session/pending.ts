// What the relay expects the server to answer, in order. The server answers
// every forwarded message in sequence (protocol-flow.html), so a FIFO of
// expectations tells which request each response belongs to: which statement a
// DataRow or CommandComplete is for, which ErrorResponse replaces a denial, and
// which responses answer messages the gateway injected itself (swallowed).
// https://www.postgresql.org/docs/current/protocol-flow.html
import type { ErrorResponse } from "../protocol/index.js";
import type { ColumnMasker } from "../../../masking/masker.js";
import type { CopyFormatOptions } from "../../../masking/copy-text.js";
import type { ColumnPlan } from "./columns.js";
import type { CopyPlan } from "./copy-out.js";
import type { PortalInfo, PreparedInfo } from "./state.js";

/** One recorded statement execution. */
export interface Run {
  id: string;
  started: number;
  rows: number;
  masked: number;
  /** Completed (a run is completed once, even when a refusal and the server both report on it). */
  done: boolean;
}

/** A statement the client may not run: its slot in the stream is taken by a substitute that fails on the server. */
export interface Denial {
  error: ErrorResponse;
}

export type Expect =
  | {
      t: "query";
      /** Forwarded statements, in order; the denied one (if any) is last and has no run. */
      runs: Run[];
      /** Index of the statement whose results are arriving. */
      i: number;
      denial: Denial | null;
      plan: ColumnPlan | null;
      copyOut: CopyOutState | null;
      /** Per forwarded statement: the COPY TO STDOUT plan, if it is one (null: no COPY in the string). */
      copies?: Array<CopyPlan | null> | null;
    }
  // internal: sent by the gateway itself (copy-out.ts); its answers are swallowed.
  // silent: parsed again by the gateway (unnamed.ts): its ParseComplete is swallowed, an error is the client's.
  | { t: "parse"; denial: Denial | null; internal?: boolean; silent?: boolean }
  | { t: "bind"; denial?: Denial | null }
  // The statement/portal objects are captured when the request is sent: a pipelining client may
  // re-Bind the same (usually unnamed) portal before the server answers, and each answer
  // belongs to the portal as it was when asked.
  | { t: "describe"; kind: "S" | "P"; internal: boolean; portal: PortalInfo | null; stmt: PreparedInfo | null }
  | { t: "execute"; portal: PortalInfo | null; run: Run | null; plan: ColumnPlan | null; copyOut: CopyOutState | null }
  | { t: "close" }
  | { t: "sync"; internal?: boolean }
  | { t: "fcall"; run: Run | null };

export interface CopyOutState {
  /** 0 text, 1 binary (CopyOutResponse's overall format). */
  format: number;
  /** Why the output cannot be masked: its data is swallowed and the statement fails with this. */
  refused: string | null;
  /** The row format to parse (null: rows are forwarded as they are, nothing to mask). */
  rows: CopyFormatOptions | null;
  /** Header rows still to pass unmasked (column names). */
  header: number;
  /** Per column; empty: every column gets `fallback`. */
  columns: (ColumnMasker | null)[];
  fallback: ColumnMasker | null;
}

/** Rows from a CommandComplete tag ("SELECT 5", "INSERT 0 5", "COPY 3"); null when the tag carries none. */
export function rowsFromTag(tag: string): number | null {
  const m = /\s(\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}
