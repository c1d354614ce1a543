import type { Store } from "../store/index.js";

// Store reads on the hot paths of sessions and the sweeps: raw SQL, one round trip each.

/** Approved, unexpired access grants of a subject on a connection (read at every session start). */
export async function activeGrants(store: Store, subject: string, connectionName: string): Promise<Array<{ id: string; role: string }>> {
  return (await store.sql(
    `SELECT id, role FROM reviews WHERE kind = 'access' AND status = 'approved' AND requester = $1 AND connection_name = $2 AND valid_until > (now() AT TIME ZONE 'UTC')`,
    [subject, connectionName],
  )) as Array<{ id: string; role: string }>;
}

/** Of these grant ids, those no longer in force (revoked or past their window). */
export async function endedGrants(store: Store, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const live = (await store.sql(`SELECT id FROM reviews WHERE id = ANY($1::uuid[]) AND status = 'approved' AND valid_until > (now() AT TIME ZONE 'UTC')`, [ids])) as Array<{ id: string }>;
  const ok = new Set(live.map((r) => r.id));
  return ids.filter((id) => !ok.has(id));
}

/** Of these review ids, those decided (no longer pending): the waiters' shared poll. */
export async function decidedAmong(store: Store, ids: string[]): Promise<string[]> {
  const rows = (await store.sql("SELECT id FROM reviews WHERE id = ANY($1::uuid[]) AND status <> 'pending'", [ids])) as Array<{ id: string }>;
  return rows.map((r) => r.id);
}
