// The durable SIEM outbox (table audit_outbox, filled by the audit triggers in
// prisma/raw-objects.sql): lease a batch, delete it once the sink acknowledged
// it, or put it back with a later next_attempt_at. Everything is one SQL
// statement, so several gateway processes can forward from one store: a row is
// leased by at most one of them at a time (FOR UPDATE SKIP LOCKED), and a
// process that dies mid-delivery only delays its rows until the lease runs out.
//
// A row's state lives in the columns the table has:
//   waiting        next_attempt_at <= now(), not leased
//   leased         leased_until > now() (one gateway is delivering it)
//   backing off    next_attempt_at in the future after a transport failure;
//                  it holds back newer rows of its sink (best-effort order)
//   refused        last_error 'rejected <k>/<n>: …' — the receiver refused it
//                  k times; it is sent alone and holds nothing back
//   dead-lettered  next_attempt_at = 'infinity', last_error 'dead-letter: …' —
//                  never leased again until `airlock audit sinks retry`
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
  /** Why the last attempt failed; `rejected <k>/<n>: …` after the receiver refused it. */
  lastError: string | null;
}

export interface OutboxStatus {
  sink: string;
  enabled: boolean;
  /** Events waiting for delivery (dead letters not counted). */
  pending: number;
  /** Seconds since the oldest pending event was queued; null when nothing waits. */
  oldestPendingSeconds: number | null;
  /** The error that keeps the oldest failing event from being delivered. */
  lastError: string | null;
  /** Events the receiver kept refusing, parked until `airlock audit sinks retry`. */
  deadLettered: number;
  /** Why the newest dead letter was refused. */
  deadLetterError: string | null;
}

/** last_error of a row its receiver refused: `rejected <times>/<limit>: <answer>`. */
export const REJECTED_PREFIX = "rejected ";
/** last_error of a dead-lettered row. */
export const DEAD_LETTER_PREFIX = "dead-letter: ";

/** How often the receiver has refused a row, from its last_error. */
export function refusalsOf(lastError: string | null): number {
  const m = lastError ? /^rejected (\d+)\//.exec(lastError) : null;
  return m ? Number(m[1]) : 0;
}

// Rows backing off after a transport failure (next_attempt_at in the future)
// hold back every newer row of the sink, so that a retry does not let fresh
// events overtake a failed batch on this gateway. There are never many such
// rows (one batch per forwarder), so the min() is one short index range scan.
// Refused rows ('rejected …') and dead letters ('infinity') hold nothing back:
// the receiver's answer is about them, not about the rows behind them.
// Leased rows do not hold back either: with several gateways, order is best
// effort (docs/siem.md).
const LEASE_SQL = `
WITH held AS (
  SELECT min(id) AS id FROM audit_outbox
   WHERE sink = $1 AND next_attempt_at > now() AND next_attempt_at < 'infinity'::timestamp
     AND (last_error IS NULL OR last_error NOT LIKE 'rejected %')
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
          (extract(epoch FROM o.created_at::timestamptz) * 1000)::float8 AS created_ms, o.attempts::int AS attempts, o.last_error`;

const ACK_SQL = `DELETE FROM audit_outbox WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

// A transport failure keeps a row's refusal count: an outage between two
// refusals neither resets nor advances it.
const RETRY_SQL = `
UPDATE audit_outbox
   SET next_attempt_at = now() + make_interval(secs => $2::float8), leased_until = NULL,
       last_error = CASE WHEN last_error LIKE 'rejected %' THEN last_error ELSE $3 END
 WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

const REFUSE_SQL = `
UPDATE audit_outbox
   SET next_attempt_at = now() + make_interval(secs => $2::float8), leased_until = NULL, last_error = $3
 WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

const DEAD_LETTER_SQL = `
UPDATE audit_outbox
   SET next_attempt_at = 'infinity'::timestamp, leased_until = NULL, last_error = $2
 WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

const RELEASE_SQL = `
UPDATE audit_outbox SET next_attempt_at = now(), leased_until = NULL
 WHERE id = ANY(string_to_array($1::text, ',')::bigint[])`;

// Due now, with a fresh count of refusals.
const REDELIVER_SQL = `
WITH u AS (
  UPDATE audit_outbox SET next_attempt_at = now(), leased_until = NULL, last_error = NULL, attempts = 0
   WHERE sink = $1 AND next_attempt_at = 'infinity'::timestamp
  RETURNING 1)
SELECT count(*)::int AS n FROM u`;

// Last error: the oldest waiting row's that is not just a refusal (an outage explains
// more), else the oldest refusal.
const STATUS_SQL = `
SELECT s.name, s.enabled,
       (SELECT count(*)::int FROM audit_outbox o WHERE o.sink = s.name AND o.next_attempt_at < 'infinity'::timestamp) AS pending,
       (SELECT extract(epoch FROM now() - min(o.created_at)::timestamptz)::float8 FROM audit_outbox o
         WHERE o.sink = s.name AND o.next_attempt_at < 'infinity'::timestamp) AS oldest,
       (SELECT o.last_error FROM audit_outbox o
         WHERE o.sink = s.name AND o.next_attempt_at < 'infinity'::timestamp AND o.last_error IS NOT NULL
         ORDER BY (o.last_error LIKE 'rejected %'), o.id LIMIT 1) AS last_error,
       (SELECT count(*)::int FROM audit_outbox o WHERE o.sink = s.name AND o.next_attempt_at = 'infinity'::timestamp) AS dead,
       (SELECT o.last_error FROM audit_outbox o WHERE o.sink = s.name AND o.next_attempt_at = 'infinity'::timestamp
         ORDER BY o.id DESC LIMIT 1) AS dead_error
  FROM audit_sinks s ORDER BY s.name`;

/** Error text kept per row: enough to explain, bounded so a chatty receiver can't bloat the table. */
const MAX_ERROR_CHARS = 500;

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export class Outbox {
  constructor(private readonly sql: SqlQuery) {}

  /**
   * Adds the configured sinks that are new to the store (enabled: the
   * triggers start queueing for them) and returns every sink row. Existing
   * rows keep their state: whether a sink is enabled is the admins' call
   * (`airlock audit sinks enable|disable`), never a side effect of one
   * gateway's configuration, which may be stale.
   */
  async registerSinks(names: string[]): Promise<Array<{ name: string; enabled: boolean }>> {
    if (names.length) await this.sql(`INSERT INTO audit_sinks (name, enabled) SELECT unnest(string_to_array($1::text, ',')), true ON CONFLICT (name) DO NOTHING`, [names.join(",")]);
    const rows = await this.sql(`SELECT name, enabled FROM audit_sinks ORDER BY name`, []);
    return rows.map((r) => ({ name: String(r.name), enabled: Boolean(r.enabled) }));
  }

  /** Starts or stops the triggers queueing for `sink`; false when there is no such sink. What is queued stays. */
  async setEnabled(sink: string, enabled: boolean): Promise<boolean> {
    const rows = await this.sql(`UPDATE audit_sinks SET enabled = $2::boolean WHERE name = $1 RETURNING name`, [sink, enabled]);
    return rows.length > 0;
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
      lastError: str(r.last_error),
    }));
    // RETURNING follows no ORDER BY: sort here so delivery is in id (queue) order.
    return out.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
  }

  /** Delivered: the rows are gone. */
  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.sql(ACK_SQL, [ids.join(",")]);
  }

  /**
   * Not delivered (transport failure): released, due again in `delayMs`, with
   * the reason kept for `airlock audit sinks` (a refused row keeps its refusal note).
   */
  async retry(ids: string[], delayMs: number, error: string): Promise<void> {
    if (ids.length) await this.sql(RETRY_SQL, [ids.join(","), Math.max(0, delayMs) / 1000, error.slice(0, MAX_ERROR_CHARS)]);
  }

  /** Refused by the receiver: due again in `delayMs` with `note` (`rejected <k>/<n>: …`); holds nothing back meanwhile. */
  async refuse(ids: string[], delayMs: number, note: string): Promise<void> {
    if (ids.length) await this.sql(REFUSE_SQL, [ids.join(","), Math.max(0, delayMs) / 1000, note.slice(0, MAX_ERROR_CHARS)]);
  }

  /** Never delivered automatically again (next_attempt_at = infinity); `note` starts with `dead-letter: `. */
  async deadLetter(ids: string[], note: string): Promise<void> {
    if (ids.length) await this.sql(DEAD_LETTER_SQL, [ids.join(","), note.slice(0, MAX_ERROR_CHARS)]);
  }

  /** Not tried (the gateway is stopping): due again at once, error and counts unchanged. */
  async release(ids: string[]): Promise<void> {
    if (ids.length) await this.sql(RELEASE_SQL, [ids.join(",")]);
  }

  /** Makes `sink`'s dead letters due again with a fresh refusal count; returns how many. */
  async redeliverDeadLetters(sink: string): Promise<number> {
    const rows = await this.sql(REDELIVER_SQL, [sink]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Every sink row (configured or not) with what waits for it. */
  async status(): Promise<OutboxStatus[]> {
    const rows = await this.sql(STATUS_SQL, []);
    return rows.map((r) => ({
      sink: String(r.name),
      enabled: Boolean(r.enabled),
      pending: Number(r.pending),
      oldestPendingSeconds: r.oldest === null || r.oldest === undefined ? null : Math.max(0, Number(r.oldest)),
      lastError: str(r.last_error),
      deadLettered: Number(r.dead),
      deadLetterError: str(r.dead_error),
    }));
  }
}
