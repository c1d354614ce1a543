// Holding an extended-protocol statement (Parse / Bind / Execute, what drivers
// send for parameterised queries) for review. Parse and Bind run nothing, so
// they are forwarded (into the server's unnamed statement and portal, see
// unnamed.ts); Bind's parameter values are kept, because the approval covers the
// text AND the values ("DELETE … WHERE id = $1" approved for 7 does not run for
// 8); Execute is where the statement would run, so that is where it waits
// (hold.ts), with the client's later messages queued behind it as for a simple
// Query. Refused, the Execute's slot is taken by a message that fails on the
// server, so the server skips to Sync and aborts the transaction exactly as
// after an error of the statement itself; the client sees our error instead.
import type { Verdict } from "../guard.js";
import { buildErrorResponse, writeFrontend, type Bind, type ErrorResponse } from "../protocol/index.js";
import type { ClientIo } from "./client-side.js";
import { holdForReview } from "./hold.js";
import { DENIED_STATEMENT, DENIED_SUBSTITUTE, startOf, type PortalInfo, type SessionState } from "./state.js";

/**
 * A bound value as the reviewer sees it and as the approval's hash covers it: text as a string,
 * NULL as null; binary values (and text that is not valid UTF-8, or holds a NUL, which JSON in
 * PostgreSQL cannot store) as base64 with their format, so no two different values look alike.
 */
export type ReviewParam = string | null | { format: "text" | "binary"; base64: string };

export interface PortalReview {
  /** null once the portal can no longer run (pushed out of the unnamed slot). */
  params: ReviewParam[] | null;
  /** The review whose approval this portal runs under, once approved. */
  approved: string | null;
}

/** Parameters kept per held portal, counted as sent (4 length bytes + value): reviews show them whole. */
export const MAX_REVIEW_PARAM_BYTES = 64 * 1024;

/** The Bind's values as kept for a review, or why they are not (too large). */
export function reviewParams(m: Pick<Bind, "paramFormats" | "params">): ReviewParam[] | { refused: string } {
  let bytes = 0;
  for (const p of m.params) bytes += 4 + (p?.length ?? 0);
  if (bytes > MAX_REVIEW_PARAM_BYTES) {
    return { refused: `airlock: statement not held for review: its parameters take ${bytes} bytes, more than the ${MAX_REVIEW_PARAM_BYTES} a review shows` };
  }
  return m.params.map((p, i) => {
    if (p === null) return null;
    // Bind's rule: no format codes = all text, one = for every parameter, else one each.
    const format = m.paramFormats.length === 0 ? 0 : m.paramFormats.length === 1 ? m.paramFormats[0] : m.paramFormats[i];
    if (format === 0) {
      const text = p.toString("utf8");
      if (!text.includes("\u0000") && Buffer.from(text, "utf8").equals(p)) return text;
    }
    return { format: format === 0 ? "text" : "binary", base64: p.toString("base64") };
  });
}

/**
 * Queues, in place of a refused request, a Parse that fails on every server: a named statement
 * (a Parse of an existing name fails too) whose text fails at parse analysis. Unlike an Execute of
 * a portal that should not exist, no portal or statement the client made can turn it into a run.
 * The server's error is replaced by `error` (server-side.ts, as for a denied Parse).
 */
export function failInPlace(s: SessionState, io: ClientIo, error: ErrorResponse): void {
  io.toServer(writeFrontend({ type: "Parse", name: DENIED_STATEMENT, query: DENIED_SUBSTITUTE, paramTypes: [] }));
  s.expect({ t: "parse", denial: { error } });
}

/** The answer for a portal pushed out of the server's unnamed slot (unnamed.ts), as PostgreSQL words a missing one. */
export function portalGoneError(name: string): ErrorResponse {
  return buildErrorResponse("ERROR", "34000", `portal "${name}" does not exist`, "airlock: a statement that needs a review runs in the unnamed portal; a later Bind or query replaced it", "Bind it again.");
}

export function approvedVerdict(v: Verdict, reviewId: string): Verdict {
  return { ...v, reasons: [...v.reasons, `approved in review ${reviewId}`], approved: true };
}

/**
 * At Execute of a portal whose statement needs a review (and has no approval yet): holds it.
 * Returns the verdict to record the run under (approved), or null when it was refused: then the
 * refusal is recorded and queued in the Execute's place.
 */
export async function holdPortal(s: SessionState, portal: PortalInfo, io: ClientIo): Promise<Verdict | null> {
  const v = portal.stmt!.verdict!;
  const review = (portal.review ??= { params: [], approved: null });
  // What was forwarded before (Parse, Bind, Describe) goes out now; only this Execute waits.
  io.flush();
  const held = await holdForReview(s, portal.stmt!.text, [v], io.toClient, review.params ?? []);
  if (held.approved) {
    review.approved = held.reviewId;
    return approvedVerdict(v, held.reviewId);
  }
  s.denied++;
  await s.sink.record([startOf(s.sessionId, ++s.seq, { ...v, reasons: [...v.reasons, held.reason] }, "denied")]);
  failInPlace(s, io, held.denial.error);
  return null;
}
