// The generic webhook body. Receivers verify it with the x-airlock-signature
// header (see signature.ts) and dedupe on x-airlock-delivery.
import type { ReviewEventType, ReviewSummary } from "./types.js";

/**
 * Copies exactly the documented fields. TypeScript lets callers pass objects
 * with extra properties (a store row, say); picking them one by one keeps
 * whatever else rides along out of the payloads that leave the gateway.
 */
export function pickSummary(r: ReviewSummary): ReviewSummary {
  const out: ReviewSummary = {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requester: r.requester,
    connection: r.connection,
    reviewerGroups: [...r.reviewerGroups],
    approvalsNeeded: r.approvalsNeeded,
    expiresAt: r.expiresAt,
    url: r.url,
    cli: r.cli,
  };
  if (r.statement !== undefined) out.statement = r.statement;
  if (r.params !== undefined) out.params = r.params === null ? null : [...r.params];
  if (r.role !== undefined) out.role = r.role;
  if (r.durationSeconds !== undefined) out.durationSeconds = r.durationSeconds;
  if (r.reason !== undefined) out.reason = r.reason;
  if (r.rule !== undefined) out.rule = r.rule;
  if (r.decidedBy !== undefined) out.decidedBy = [...r.decidedBy];
  if (r.decidedReason !== undefined) out.decidedReason = r.decidedReason;
  return out;
}

/** The generic body: { type, at (ISO), review }. */
export function genericBody(type: ReviewEventType, r: ReviewSummary, at: Date): string {
  return JSON.stringify({ type, at: at.toISOString(), review: pickSummary(r) });
}
