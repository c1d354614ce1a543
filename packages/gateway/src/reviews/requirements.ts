import type { PolicyMeta } from "../policy/types.js";

/** What a review needs, from the annotations of the policies that asked for it. */
export interface ReviewRequirements {
  reviewerGroups: string[];
  /** Approvals from distinct reviewers (ignored when allGroups). */
  approvalsNeeded: number;
  /** One approval from every reviewer group. */
  allGroups: boolean;
  /** A pending review expires after this long. */
  timeoutSeconds: number;
}

export const DEFAULT_REVIEWERS = "reviewers";
export const DEFAULT_TIMEOUT_SECONDS = 600;
const MAX_TIMEOUT_SECONDS = 7 * 86400;

/**
 * Annotations on an @effect("review") policy:
 *   @reviewers("dba,security")   groups whose members may decide (default "reviewers")
 *   @approvals("2") | ("all")    distinct approvers needed, or one from every group (default 1)
 *   @timeout("10m")              how long the review waits (default 10m; s, m, h, d)
 * Returns the problem with a value, or the parsed requirement.
 */
export function parseReviewAnnotations(a: Record<string, string>): ReviewRequirements | string {
  const groups = (a.reviewers ?? DEFAULT_REVIEWERS).split(",").map((g) => g.trim()).filter(Boolean);
  if (!groups.length || groups.some((g) => !/^[A-Za-z0-9@._:/-]{1,128}$/.test(g))) return `@reviewers("${a.reviewers}"): a comma-separated list of group names`;
  let approvalsNeeded = 1;
  let allGroups = false;
  if (a.approvals !== undefined) {
    if (a.approvals === "all") allGroups = true;
    else if (/^[1-9][0-9]?$/.test(a.approvals)) approvalsNeeded = Number(a.approvals);
    else return `@approvals("${a.approvals}"): a number of approvers (1-99) or "all" (one from every reviewer group)`;
  }
  let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  if (a.timeout !== undefined) {
    const m = /^(\d+)(s|m|h|d)$/.exec(a.timeout);
    const secs = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s"] : NaN;
    if (!(secs >= 10 && secs <= MAX_TIMEOUT_SECONDS)) return `@timeout("${a.timeout}"): a duration like 30s, 10m, 2h (10 s to 7 d)`;
    timeoutSeconds = secs;
  }
  return { reviewerGroups: groups, approvalsNeeded, allGroups, timeoutSeconds };
}

/**
 * Several review policies may match one statement: every one's reviewers are
 * asked, the strictest count and the shortest timeout apply.
 */
export function combineRequirements(metas: Array<Pick<PolicyMeta, "annotations">>): ReviewRequirements {
  const parsed = metas.map((m) => parseReviewAnnotations(m.annotations)).filter((r): r is ReviewRequirements => typeof r !== "string");
  if (!parsed.length) return { reviewerGroups: [DEFAULT_REVIEWERS], approvalsNeeded: 1, allGroups: false, timeoutSeconds: DEFAULT_TIMEOUT_SECONDS };
  return {
    reviewerGroups: [...new Set(parsed.flatMap((p) => p.reviewerGroups))],
    approvalsNeeded: Math.max(...parsed.map((p) => p.approvalsNeeded)),
    allGroups: parsed.some((p) => p.allGroups),
    timeoutSeconds: Math.min(...parsed.map((p) => p.timeoutSeconds)),
  };
}
