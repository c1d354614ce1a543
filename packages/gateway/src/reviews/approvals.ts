import { createHash } from "node:crypto";
import type { Store } from "../store/index.js";

/** SHA-256 over the exact text and parameters a reviewer is shown: an approval covers those and nothing else. */
export function statementHash(statement: string, params: readonly unknown[] | null | undefined): string {
  return createHash("sha256").update(JSON.stringify([statement, params ?? []])).digest("hex");
}

export interface ApprovalUse {
  requester: string;
  connectionName: string;
  database?: string | null;
  sessionId: string | null;
  statement: string;
  params?: unknown[] | null;
  /** Spend this review's approval first when it covers the statement (a held statement spends its own). */
  prefer?: string;
}

/**
 * Uses an approval for this exact statement, if one covers it: same hash,
 * requester, connection and database; the same session unless approved for the
 * identity; still in its window; uses left. One atomic UPDATE (the row is
 * locked, others skipped): two runs cannot spend one use.
 */
export async function consumeApproval(store: Store, i: ApprovalUse): Promise<string | null> {
  const rows = (await store.sql(
    `UPDATE reviews SET uses_left = uses_left - 1
      WHERE id = (SELECT id FROM reviews
                   WHERE status = 'approved' AND kind = 'statement' AND statement_hash = $1 AND requester = $2 AND connection_name = $3
                     AND database IS NOT DISTINCT FROM $5
                     AND uses_left > 0 AND valid_until > (now() AT TIME ZONE 'UTC')
                     AND (scope = 'identity' OR session_id IS NOT DISTINCT FROM $4::uuid OR (scope = 'once' AND session_id IS NULL))
                   ORDER BY (id = $6::uuid) DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id`,
    [statementHash(i.statement, i.params), i.requester, i.connectionName, i.sessionId, i.database ?? null, i.prefer ?? null],
  )) as Array<{ id: string }>;
  return rows[0]?.id ?? null;
}
