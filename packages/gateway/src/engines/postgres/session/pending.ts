// What the relay expects the server to answer, in order. The server answers
// every forwarded message in sequence (protocol-flow.html), so a FIFO of
// expectations tells which request each response belongs to: which statement a
// DataRow or CommandComplete is for, which ErrorResponse replaces a denial, and
// which responses answer messages the gateway injected itself (swallowed).
// https://www.postgresql.org/docs/current/protocol-flow.html
import type { ErrorResponse } from "../protocol/index.js";
import type { ColumnPlan } from "./columns.js";

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
    }
  | { t: "parse"; denial: Denial | null }
  | { t: "bind" }
  | { t: "describe"; kind: "S" | "P"; name: string; internal: boolean }
  | { t: "execute"; portal: string; run: Run | null; plan: ColumnPlan | null; copyOut: CopyOutState | null }
  | { t: "close" }
  | { t: "sync" }
  | { t: "fcall"; run: Run | null };

export interface CopyOutState {
  /** 0 text, 1 binary. */
  format: number;
  /** Binary COPY cannot be masked: its data is swallowed and the statement fails. */
  refused: boolean;
}

/** Rows from a CommandComplete tag ("SELECT 5", "INSERT 0 5", "COPY 3"); null when the tag carries none. */
export function rowsFromTag(tag: string): number | null {
  const m = /\s(\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}
