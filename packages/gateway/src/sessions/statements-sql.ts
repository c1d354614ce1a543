// The SQL behind StatementLog and the encoding of its parameters. Both batch
// statements pass one array per column and unnest them server-side, so the
// SQL text (and the server's plan) is the same for 1 row and for 500, and the
// parameter count stays at 14 / 8 instead of rows × columns.
// unnest of several arrays: https://www.postgresql.org/docs/current/functions-array.html

/** Bytes kept of a statement text by default (UTF-8); the rest is cut, see truncateUtf8. */
export const DEFAULT_MAX_TEXT_BYTES = 64 * 1024;
/** Error and reason texts are diagnostics, not evidence: a smaller cap is enough. */
export const MAX_MESSAGE_BYTES = 4 * 1024;

/**
 * One INSERT per batch. started_at is the time record() was called (sent as
 * ISO 8601 in UTC); the column is timestamp(3) without zone holding UTC, as
 * Prisma writes it. `objects` arrives as one array literal per row because
 * PostgreSQL arrays can't be ragged (see arrayLiteral).
 */
export const INSERT_SQL = `INSERT INTO statements
  (id, session_id, seq, text, kind, command, objects, decision, rule, reason, status, started_at, error_code, error,
   subject, link, prev_hash, hash)
SELECT u.id, u.sid, u.seq, u.text, u.kind, u.command, u.objects::text[], u.decision, u.rule, u.reason, u.status,
       (u.started::timestamptz AT TIME ZONE 'UTC'), u.error_code, u.error, u.subject, u.link, u.prev_hash, u.hash
  FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
              $15::text[], $16::int[], $17::bytea[], $18::bytea[])
    AS u(id, sid, seq, text, kind, command, objects, decision, rule, reason, status, started, error_code, error,
         subject, link, prev_hash, hash)`;

/**
 * One UPDATE per batch of completions (ids are unique within a batch: the
 * caller keeps the latest completion per id). The values written are exactly
 * the ones the completion's chain link hashed (statements.ts), so a verifier
 * can recompute it from the row.
 */
export const UPDATE_SQL = `UPDATE statements s
   SET status = v.status, duration_ms = v.duration_ms, rows = v.rows, command_tag = v.command_tag,
       masked = v.masked, error_code = v.error_code, error = v.error,
       end_link = v.end_link, end_prev_hash = v.end_prev_hash, end_hash = v.end_hash
  FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[],
              $9::int[], $10::bytea[], $11::bytea[])
    AS v(id, status, duration_ms, rows, command_tag, masked, error_code, error, end_link, end_prev_hash, end_hash)
 WHERE s.id = v.id`;

export const INSERT_COLUMNS = 18;
export const UPDATE_COLUMNS = 11;

/** Turns rows of column values into one array per column (the unnest parameters). */
export function columns(rows: readonly unknown[][], width: number): unknown[][] {
  const cols: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    for (let c = 0; c < width; c++) cols[c]![i] = row[c];
  }
  return cols;
}

/**
 * A PostgreSQL array literal of strings, every element double-quoted with `\`
 * and `"` escaped, so names with commas, braces or quotes survive.
 * https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
 */
export function arrayLiteral(items: readonly string[]): string {
  if (items.length === 0) return "{}";
  return `{${items.map((s) => `"${clean(s).replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}

/** PostgreSQL text can't hold NUL; one would fail the whole batch, so it becomes U+FFFD. */
export function clean(s: string): string {
  return s.includes("\0") ? s.replace(/\0/g, "\uFFFD") : s;
}

export function cleanOrNull(s: string | null | undefined, maxBytes = MAX_MESSAGE_BYTES): string | null {
  return s === null || s === undefined ? null : truncateUtf8(clean(s), maxBytes);
}

/**
 * Keeps at most `maxBytes` of UTF-8 (cut on a character boundary) and appends
 * `…[truncated N bytes]`, N being the bytes left out, so a reader knows the
 * text is partial and by how much. The stored text is thus a little longer
 * than maxBytes.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  // A UTF-16 code unit never takes more than 3 bytes of UTF-8: most texts skip the encoding.
  if (text.length * 3 <= maxBytes) return text;
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  let cut = maxBytes;
  while (cut > 0 && (buf[cut]! & 0xc0) === 0x80) cut--; // back off continuation bytes
  return `${buf.toString("utf8", 0, cut)}…[truncated ${buf.length - cut} bytes]`;
}

/** bigint column value as text (exact past 2^53); non-integral or non-finite numbers become null. */
export function bigintText(v: number | bigint | null | undefined): string | null {
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number" && Number.isFinite(v)) return Math.trunc(v).toString();
  return null;
}

/** The SQLSTATE of a failed query: from Prisma's driver adapter error, or node-postgres's/PGlite's `code`. */
export function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } } | null;
  if (e?.meta) {
    const code = e.meta.driverAdapterError?.cause?.originalCode;
    return typeof code === "string" ? code : undefined;
  }
  // Prisma's own codes (P2010…) only come with `meta`; a bare 5-character code is a SQLSTATE.
  return typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
}

/**
 * Data exceptions (22xxx) and integrity violations (23xxx: duplicate seq,
 * unknown session) are caused by one row, not by the store: worth retrying the
 * batch's members one by one so only the culprit fails.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export function isRowError(err: unknown): boolean {
  const s = sqlState(err);
  return s !== undefined && (s.startsWith("22") || s.startsWith("23"));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string): boolean => UUID.test(s);
