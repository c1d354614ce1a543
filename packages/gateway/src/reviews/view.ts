import type { Prisma } from "../store/generated/client.js";
import type { ReviewSummary } from "./notify/index.js";

export type ReviewRow = Prisma.ReviewGetPayload<{ include: { decisions: true } }>;

/** A review as the API, the CLI and notifications show it. */
export interface ReviewView {
  id: string;
  kind: "statement" | "access";
  status: string;
  requester: string;
  requesterKind: string;
  connection: string;
  database: string | null;
  sessionId: string | null;
  statement: string | null;
  params: unknown[] | null;
  statementHash: string | null;
  role: string | null;
  durationSeconds: number | null;
  reason: string | null;
  rule: string | null;
  ruleReason: string | null;
  reviewerGroups: string[];
  approvalsNeeded: number;
  allGroups: boolean;
  scope: string;
  usesLeft: number;
  validUntil: string | null;
  expiresAt: string;
  decidedAt: string | null;
  decidedReason: string | null;
  createdAt: string;
  decisions: Array<{ reviewer: string; groups: string[]; decision: string; reason: string | null; at: string; scope: string | null; uses: number | null; windowSeconds: number | null }>;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** What a notification carries: enough to decide from Slack or a webhook, with where to act. */
export function reviewSummary(r: ReviewView, publicUrl: string): ReviewSummary {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requester: r.requester,
    connection: r.connection,
    statement: r.statement,
    params: r.params,
    role: r.role,
    durationSeconds: r.durationSeconds,
    reason: r.reason,
    rule: r.rule,
    reviewerGroups: r.reviewerGroups,
    approvalsNeeded: r.approvalsNeeded,
    expiresAt: r.expiresAt,
    decidedBy: r.decisions.map((d) => d.reviewer),
    decidedReason: r.decidedReason,
    url: `${publicUrl}/api/v1/reviews/${r.id}`,
    cli: "airlock reviews",
  };
}

export function toView(r: ReviewRow): ReviewView {
  return {
    id: r.id,
    kind: r.kind as ReviewView["kind"],
    status: r.status,
    requester: r.requester,
    requesterKind: r.requesterKind,
    connection: r.connectionName,
    database: r.database,
    sessionId: r.sessionId,
    statement: r.statement,
    params: (r.params as unknown[] | null) ?? null,
    statementHash: r.statementHash,
    role: r.role,
    durationSeconds: r.durationSeconds,
    reason: r.reason,
    rule: r.rule,
    ruleReason: r.ruleReason,
    reviewerGroups: r.reviewerGroups,
    approvalsNeeded: r.approvalsNeeded,
    allGroups: r.allGroups,
    scope: r.scope,
    usesLeft: r.usesLeft,
    validUntil: iso(r.validUntil),
    expiresAt: r.expiresAt.toISOString(),
    decidedAt: iso(r.decidedAt),
    decidedReason: r.decidedReason,
    createdAt: r.createdAt.toISOString(),
    decisions: r.decisions.map((d) => ({ reviewer: d.reviewer, groups: d.groups, decision: d.decision, reason: d.reason, at: d.at.toISOString(), scope: d.scope, uses: d.uses, windowSeconds: d.windowSeconds })),
  };
}
