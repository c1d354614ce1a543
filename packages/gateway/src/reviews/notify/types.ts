// Shapes shared by the review notifications: what happened, what the review
// looks like to a reviewer, and where to send it.

export const REVIEW_EVENT_TYPES = [
  "review.created",
  "review.approved",
  "review.rejected",
  "review.expired",
  "review.cancelled",
] as const;

export type ReviewEventType = (typeof REVIEW_EVENT_TYPES)[number];

/** What receivers learn about a review. Never carries credentials or secrets. */
export interface ReviewSummary {
  id: string;
  kind: "statement" | "access";
  status: string;
  requester: string;
  connection: string;
  statement?: string | null;
  /** Values bound to the statement's parameters (extended protocol): part of what the approval covers. */
  params?: unknown[] | null;
  role?: string | null;
  durationSeconds?: number | null;
  reason?: string | null;
  rule?: string | null;
  reviewerGroups: string[];
  approvalsNeeded: number;
  /** ISO 8601. */
  expiresAt: string;
  decidedBy?: string[];
  decidedReason?: string | null;
  /** Where reviewers act: e.g. `${publicUrl}/api/v1/reviews/${id}`. */
  url: string;
  /**
   * The CLI command prefix reviewers run, e.g. `airlock review`; messages
   * append `approve <id>` / `reject <id>` to it.
   */
  cli: string;
}

export interface WebhookTarget {
  url: string;
  format: "generic" | "slack";
  /** HMAC secret (generic format; required for it). */
  secret?: string;
}
