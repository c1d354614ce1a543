// Sample data for the notification tests (left out of the build).
import type { ReviewSummary } from "./types.js";

export const review: ReviewSummary = {
  id: "3f2b6a9e-1c1d-4e4f-9a55-0d6c1b7f2e10",
  kind: "statement",
  status: "pending",
  requester: "alice@example.com",
  connection: "prod-db",
  statement: "DELETE FROM orders WHERE created_at < now() - interval '1 year'",
  reason: "yearly cleanup",
  rule: "deletes-need-review",
  reviewerGroups: ["dba", "security"],
  approvalsNeeded: 2,
  expiresAt: "2030-01-02T03:04:05.000Z",
  url: "https://airlock.example.com/api/v1/reviews/3f2b6a9e-1c1d-4e4f-9a55-0d6c1b7f2e10",
  cli: "airlock review",
};
