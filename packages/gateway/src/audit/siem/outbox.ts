// The durable SIEM outbox (table audit_outbox, filled by the audit triggers in
// prisma/raw-objects.sql): lease a batch, delete it once the sink acknowledged
// it, or put it back with a later next_attempt_at. Everything is one SQL
// statement, so several gateway processes can forward from one store: a row is
// leased by at most one of them at a time (FOR UPDATE SKIP LOCKED), and a
// process that dies mid-delivery only delays its rows until the lease runs out.
//
// Columns are timestamp without time zone; every comparison is made in SQL
// against now() in the same session, so the database's TimeZone setting never
// matters. Values cross to JS as text/int/float8, and lists go in as one
// comma-separated text parameter (ids are digits, sink names match
// [a-z0-9_-]), so both stores (PostgreSQL and PGlite, through Prisma's raw
// queries) take and hand back the same types.

/** Parameterised SQL returning rows; `store.prisma.$queryRawUnsafe` in the gateway. */
export type SqlQuery = (text: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

export interface OutboxRow {
  /** bigserial, as text (beyond 2^53 one day). */
  id: string;
  eventId: string;
  type: string;
  /** The record as the trigger captured it (to_jsonb of the row, hashes removed). */
  payload: Record<string, unknown>;
  createdAt: Date;
  /** Including the lease that returned this row. */
  attempts: number;
}

export interface OutboxStatus {
  sink: string;
  enabled: boolean;
  pending: number;
  /** Seconds since the oldest pending event was queued; null when nothing waits. */
  oldestPendingSeconds: number | null;
  /** The error that keeps the oldest failing event from being delivered. */
  lastError: string | null;
}

// Rows backing off (next_attempt_at in the future) hold back every newer row of
// the sink: otherwise fresh events would overtake a failed batch and a receiver
// would see the stream out of order. There are never many such rows (one batch
// per forwarder), so the min() is one short index range scan.
const LEASE_SQL = `
WITH held AS (
  SELECT min(id) AS id FROM audit_outbox WHERE sink = $1 AND next_attempt_at > now()
)
UPDATE audit_outbox o
   SET leased_until = now() + make_interval(secs => $3::float8), attempts = o.attempts + 1
 WHERE o.id IN (
   SELECT c.id FROM audit_outbox c, held
    WHERE c.sink = $1 AND c.next_attempt_at <= now()
      AND (c.leased_until IS NULL OR c.leased_until < now())
      AND (held.id IS NULL OR c.id < held.id)
    ORDER BY c.id
    LIMIT $2
    FOR UPDATE OF c SKIP LOCKED)
RETURNING o.id::text AS id, o.event_id, o.type, o.payload::text AS payload,
          (extract(epoch FROM o.created_at::timestamptz) * 1000)::float8 AS created_ms, o.attempts::int AS attempts`;

const ACK_SQL = `DELETE FROM audit_outbox WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

const RETRY_SQL = `
UPDATE audit_outbox
   SET next_attempt_at = now() + make_interval(secs => $2::float8), leased_until = NULL, last_error = $3
 WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

const STATUS_SQL = `
SELECT s.name, s.enabled,
       (SELECT count(*)::int FROM audit_outbox o WHERE o.sink = s.name) AS pending,
       (SELECT extract(epoch FROM now() - min(o.created_at)::timestamptz)::float8 FROM audit_outbox o WHERE o.sink = s.name) AS oldest,
       (SELECT o.last_error FROM audit_outbox o WHERE o.sink = s.name AND o.last_error IS NOT NULL ORDER BY o.id LIMIT 1) AS last_error
  FROM audit_sinks s ORDER BY s.name`;

/** Error text kept per row: enough to explain, bounded so a chatty receiver can't bloat the table. */
const MAX_ERROR_CHARS = 500;

export class Outbox {
  constructor(private readonly sql: SqlQuery) {}

  /**
   * Makes exactly `names` the enabled sinks: configured ones are (re-)enabled,
   * others disabled so the triggers stop queueing for them. Their queued
   * rows stay (a sink configured again picks up where it stopped).
   */
  async syncSinks(names: string[]): Promise<void> {
    await this.sql(`INSERT INTO audit_sinks (name, enabled) SELECT unnest(string_to_array($1::text, ',')), true ON CONFLICT (name) DO UPDATE SET enabled = true`, [names.join(",")]);
    await this.sql(`UPDATE audit_sinks SET enabled = false WHERE enabled AND NOT (name = ANY(string_to_array($1::text, ',')))`, [names.join(",")]);
  }

  /** Leases up to `limit` due rows of `sink` for `leaseMs`, oldest first. */
  async lease(sink: string, limit: number, leaseMs: number): Promise<OutboxRow[]> {
    const rows = await this.sql(LEASE_SQL, [sink, limit, leaseMs / 1000]);
    const out = rows.map((r) => ({
      id: String(r.id),
      eventId: String(r.event_id),
      type: String(r.type),
      payload: JSON.parse(String(r.payload)) as Record<string, unknown>,
      createdAt: new Date(Number(r.created_ms)),
      attempts: Number(r.attempts),
    }));
    // RETURNING follows no ORDER BY: sort here so delivery is in id (queue) order.
    return out.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
  }

  /** Delivered: the rows are gone. */
  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.sql(ACK_SQL, [ids.join(",")]);
  }

  /** Not delivered: released, due again in `delayMs`, with the reason kept for `airlock audit sinks`. */
  async retry(ids: string[], delayMs: number, error: string): Promise<void> {
    if (ids.length) await this.sql(RETRY_SQL, [ids.join(","), Math.max(0, delayMs) / 1000, error.slice(0, MAX_ERROR_CHARS)]);
  }

  /** Every sink row (configured or not) with what waits for it. */
  async status(): Promise<OutboxStatus[]> {
    const rows = await this.sql(STATUS_SQL, []);
    return rows.map((r) => ({
      sink: String(r.name),
      enabled: Boolean(r.enabled),
      pending: Number(r.pending),
      oldestPendingSeconds: r.oldest === null || r.oldest === undefined ? null : Math.max(0, Number(r.oldest)),
      lastError: r.last_error === null || r.last_error === undefined ? null : String(r.last_error),
    }));
  }
}
