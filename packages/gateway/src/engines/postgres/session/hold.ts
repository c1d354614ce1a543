// Holding a statement for review: when every statement a policy did not allow
// outright needs a review (none is denied), the query is not forwarded; the
// client gets a NoticeResponse naming the review and who must approve it, and
// this session's handling of client messages waits (its socket is paused by
// the relay's bounded inbox) until a reviewer decides, the review expires or
// the client goes away. Nothing else waits: other sessions and the gateway go
// on, and a held statement costs a promise and a timer, no thread or buffer.
//
// An approval covers exactly the query text the reviewers saw and, for an
// extended-protocol statement (hold-extended.ts), its bound parameters: once
// unless the reviewer said otherwise; a run of that exact text with those
// parameters by the same identity (in the same session, unless approved for the
// identity) spends it.
import { AirlockError } from "@airlock/shared";
import type { Verdict } from "../guard.js";
import { buildErrorResponse, buildNoticeResponse, writeBackend } from "../protocol/index.js";
import { combineRequirements } from "../../../reviews/requirements.js";
import type { Denial } from "./pending.js";
import type { SessionState } from "./state.js";

export type HoldOutcome = { approved: true; reviewId: string } | { approved: false; denial: Denial; reason: string };

/** True when the statements' only objections are reviews (a plain denial wins over any review). */
export function onlyReviews(verdicts: Verdict[]): boolean {
  // A SQL PREPARE of a statement that needs review is not held: once approved, its EXECUTEs would run
  // again and again without one. It is refused ("requires approval"); run the statement itself instead.
  const prepared = verdicts.some((v) => v.decision === "review" && v.facts?.kind === "prepare");
  return !prepared && verdicts.some((v) => v.decision === "review") && verdicts.every((v) => v.decision !== "deny");
}

/** A NoticeResponse, severity NOTICE, SQLSTATE 01000 ("warning"). */
function notice(message: string, detail: string, hint: string): Buffer {
  return writeBackend(buildNoticeResponse("NOTICE", "01000", message, detail, hint));
}

/**
 * Holds one request: `sql` is the text as the client sent it (a simple Query's string, an
 * extended statement's Parse text), `params` the values bound to it (null for a simple Query).
 */
export async function holdForReview(s: SessionState, sql: string, verdicts: Verdict[], toClient: (b: Buffer) => void, params: unknown[] | null = null): Promise<HoldOutcome> {
  const reviews = s.reviews!;
  const principal = s.scope.principal;
  const connectionName = s.scope.connection.name;
  // An approval given earlier (for this session or this identity) may already cover this exact text and these parameters.
  const database = s.scope.database;
  const earlier = await reviews.consumeApproval({ requester: principal.subject, connectionName, database, sessionId: s.sessionId, statement: sql, params });
  if (earlier) return { approved: true, reviewId: earlier };

  const held = verdicts.filter((v) => v.decision === "review");
  const policyIds = [...new Set(held.flatMap((v) => v.policyIds))];
  const requirements = combineRequirements(s.policy.current().engine.annotationsOf(policyIds).map((annotations) => ({ annotations })));
  let review;
  try {
    review = await reviews.createStatementReview({
      principal,
      connectionName,
      database,
      // Async (airlock exec): the asking session ends now; the approval is for this identity to run it later, once.
      sessionId: s.reviewMode === "async" ? null : s.sessionId,
      statement: sql,
      params,
      rule: policyIds.join(",") || null,
      ruleReason: [...new Set(held.flatMap((v) => v.reasons))].join("; ") || null,
      requirements,
    });
  } catch (err) {
    // Too large to review, or too many waiting: the statement is refused with the reason (the session goes on).
    if (!AirlockError.is(err, "INVALID_ARGUMENT") && !AirlockError.is(err, "RATE_LIMITED")) throw err;
    const reason = (err as AirlockError).message;
    return { approved: false, reason, denial: { error: buildErrorResponse("ERROR", "42501", `airlock: statement not run: ${reason}`) } };
  }
  const who = requirements.allGroups ? `one reviewer from each of ${requirements.reviewerGroups.join(", ")}` : `${requirements.approvalsNeeded} reviewer(s) in ${requirements.reviewerGroups.join(", ")}`;
  if (s.reviewMode === "async") {
    // Nobody waits: the review stays open, the statement does not run, the client learns the id.
    s.log.info({ review: review.id, rule: review.rule, text: sql.slice(0, 200) }, "statement needs a review (async)");
    const message = `airlock: review required: ${review.id}: waiting for ${who}`;
    const error = buildErrorResponse("ERROR", "42501", message, `policy ${review.rule ?? "?"}: ${review.ruleReason ?? "needs a review"}; expires ${review.expiresAt}`, `Once approved: airlock reviews run ${review.id}`);
    return { approved: false, reason: `review required: ${review.id}`, denial: { error } };
  }
  toClient(notice(`airlock: statement held for review ${review.id}: waiting for ${who}`, `policy ${review.rule ?? "?"}: ${review.ruleReason ?? "needs a review"}; expires ${review.expiresAt}`, `A reviewer runs: airlock reviews approve ${review.id}`));
  s.log.info({ review: review.id, rule: review.rule, text: sql.slice(0, 200), params: params?.length ?? null }, "statement held for review");

  let decided;
  try {
    decided = await reviews.waitForDecision(review.id, s.closed.signal);
  } catch (err) {
    // The client went away: nobody is waiting for the answer any more.
    await reviews.cancel(review.id, null, "the client disconnected while the statement was held").catch(() => {});
    throw AirlockError.from(err);
  }
  if (decided.status === "approved") {
    // Spend the approval now, so the same approval cannot also run this text elsewhere.
    const spent = await reviews.consumeApproval({ requester: principal.subject, connectionName, database, sessionId: s.sessionId, statement: sql, params, prefer: review.id });
    if (spent) return { approved: true, reviewId: review.id };
  }
  const last = decided.decisions.at(-1);
  const reason =
    decided.status === "rejected"
      ? `rejected by ${last?.reviewer ?? "a reviewer"}${decided.decidedReason ? `: ${decided.decidedReason}` : ""}`
      : decided.status === "expired"
        ? `nobody approved it before ${decided.expiresAt}`
        : decided.status === "approved"
          ? "its approval was already used"
          : `the review was ${decided.status}`;
  const message = `airlock: statement not run: review ${review.id} ${decided.status === "rejected" ? "was " : ""}${reason}`;
  return { approved: false, reason, denial: { error: buildErrorResponse("ERROR", "42501", message, `policy ${review.rule ?? "?"}`) } };
}
