// Where an extended-protocol statement that needs a review lives on the server
// until it is approved: always as the UNNAMED prepared statement and portal,
// whatever names the client gave them (hold-extended.ts holds its Execute).
//
// Why not under the client's names:
// - SQL would reach them without passing the hold: a named prepared statement
//   runs with `EXECUTE name(…)`, and a named portal runs with `FETCH ALL FROM
//   name` (which executes a DELETE … RETURNING). The unnamed ones have no SQL
//   name.
// - Names could get out of step: PostgreSQL refuses a Parse of a statement name
//   that exists, but the gateway takes the new text for that name before the
//   server answers, and a prepared statement outlives the error; a later Bind
//   would then run the held text under the checked one's name. A Parse of the
//   unnamed statement always drops the old one first, even when it fails.
//
// The server's unnamed statement and portal are shared with the client's own
// unnamed ones, so the gateway tracks which of its PreparedInfo / PortalInfo
// each holds (SessionState.unnamed):
// - a statement is parsed again (the same checked text and types) before a Bind
//   or Describe of it, unless it was parsed into the unnamed slot in this same
//   Sync cycle. A Parse in an earlier cycle may have been skipped by the server
//   (after an error it ignores everything until Sync), leaving a held statement
//   in the slot; within one cycle, a skipped Parse means a skipped Bind too.
// - a portal pushed out of the slot by another Bind is gone: its Describe and
//   Execute fail with "does not exist". Portals need no more care: a Bind the
//   server refused or skipped means an error, which aborts the transaction, and
//   portals do not outlive the transaction.
// Until a held statement is put there, nothing of this changes how a session's
// own unnamed statement and portal are forwarded.
import { writeFrontend } from "../protocol/index.js";
import type { ClientIo } from "./client-side.js";
import type { PortalInfo, PreparedInfo, SessionState } from "./state.js";

/** After a Parse forwarded into the server's unnamed statement (null: the slot is now empty or unknown). */
export function parsedUnnamed(s: SessionState, info: PreparedInfo | null): void {
  const u = s.unnamed;
  u.stmt = info;
  u.stmtCycle = u.cycle;
  if (info?.verdict?.decision === "review") u.used = true;
}

/** After a Bind forwarded into the server's unnamed portal (null: closed or unknown). */
export function boundUnnamed(s: SessionState, info: PortalInfo | null): void {
  const old = s.unnamed.portal;
  // A portal pushed out can never run again (portalGone): its parameters need not be kept.
  if (old && old !== info && old.review) old.review.params = null;
  s.unnamed.portal = info;
}

/** A simple Query (or the substitute of one) drops the server's unnamed statement and portal. */
export function queryForgetsUnnamed(s: SessionState): void {
  parsedUnnamed(s, null);
  boundUnnamed(s, null);
}

/**
 * The server-side name of a statement the client names `name`; when that is the unnamed slot
 * and the slot may hold something else, queues a Parse of the statement's text into it first.
 */
export function serverStatement(s: SessionState, io: ClientIo, name: string, info: PreparedInfo): string {
  if (!info.unnamed) return name;
  const u = s.unnamed;
  if (u.used && (u.stmt !== info || u.stmtCycle !== u.cycle)) {
    io.toServer(writeFrontend({ type: "Parse", name: "", query: info.text, paramTypes: info.unnamed.paramTypes }));
    s.expect({ t: "parse", denial: null, silent: true });
    parsedUnnamed(s, info);
  }
  return "";
}

/** The server-side name of a portal the client names `name`. */
export function serverPortal(name: string, info: PortalInfo | null): string {
  return info?.unnamed ? "" : name;
}

/** True when the portal was pushed out of the server's unnamed slot (so it no longer exists there). */
export function portalGone(s: SessionState, info: PortalInfo): boolean {
  return !!info.unnamed && s.unnamed.used && s.unnamed.portal !== info;
}
