/**
 * SQL text -> StatementFacts[], using the real Postgres 18 parser (libpg-query, WASM).
 *
 * Cache: an LRU keyed by the exact input string (the whole, possibly
 * multi-statement, text a client sent), bounded to CACHE_MAX_ENTRIES entries;
 * inputs longer than CACHE_MAX_TEXT characters are analysed but never cached,
 * so the cache holds at most ~CACHE_MAX_ENTRIES * CACHE_MAX_TEXT characters of
 * keys. Cached results are deep-frozen and returned by reference, so a hit is
 * the identical object and callers cannot corrupt it. Parse errors are not cached.
 */
import { loadModule, parseSync } from "libpg-query";
import { classify } from "./kinds.js";
import { collect } from "./walk.js";
import { SqlAnalysisError, type StatementFacts } from "./types.js";

export const CACHE_MAX_ENTRIES = 10_000;
export const CACHE_MAX_TEXT = 16 * 1024;

let loading: Promise<void> | undefined;
let ready = false;
const cache = new Map<string, readonly StatementFacts[]>();

/** Loads the parser WASM once; safe to call repeatedly and concurrently. */
export function initAnalyzer(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true;
  });
  return loading;
}

export async function analyze(sql: string): Promise<readonly StatementFacts[]> {
  await initAnalyzer();
  return analyzeSync(sql);
}

/** Synchronous variant; throws a plain Error if initAnalyzer() has not resolved yet (a programming error). */
export function analyzeSync(sql: string): readonly StatementFacts[] {
  if (!ready) throw new Error("analyzeSync called before initAnalyzer() resolved");
  const hit = cache.get(sql);
  if (hit) {
    // Map preserves insertion order: re-inserting marks the entry most recently used.
    cache.delete(sql);
    cache.set(sql, hit);
    return hit;
  }
  const facts = deepFreeze(analyzeUncached(sql));
  if (sql.length <= CACHE_MAX_TEXT) {
    cache.set(sql, facts);
    if (cache.size > CACHE_MAX_ENTRIES) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
  }
  return facts;
}

/** For tests and memory pressure. */
export function clearAnalyzerCache(): void {
  cache.clear();
}
export function analyzerCacheSize(): number {
  return cache.size;
}

interface RawStmt {
  stmt?: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

function analyzeUncached(sql: string): StatementFacts[] {
  // The WASM boundary passes a C string: an embedded NUL would silently truncate what
  // the parser sees while Postgres (or a proxy) might see more. The wire protocol
  // cannot carry NUL in query text anyway, so reject rather than analyse a prefix.
  if (sql.includes("\0")) throw new SqlAnalysisError("query text contains a NUL character", sql.indexOf("\0"));
  if (sql.trim() === "") return []; // libpg-query throws on ""; an empty query has no statements.
  let tree: { stmts?: RawStmt[] };
  try {
    tree = parseSync(sql) as { stmts?: RawStmt[] };
  } catch (err) {
    throw toAnalysisError(err);
  }
  // stmt_location/stmt_len are UTF-8 byte offsets; only pay for a Buffer when non-ASCII.
  // eslint-disable-next-line no-control-regex
  const bytes = /^[\x00-\x7f]*$/.test(sql) ? undefined : Buffer.from(sql, "utf8");
  const total = bytes ? bytes.length : sql.length;
  const out: StatementFacts[] = [];
  for (const raw of tree.stmts ?? []) {
    const entry = Object.entries(raw.stmt ?? {})[0];
    if (!entry) continue;
    const [node, body] = entry as [string, Record<string, unknown>];
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : total; // stmt_len 0/absent = to end of input
    const text = (bytes ? bytes.subarray(start, end).toString("utf8") : sql.slice(start, end)).trim();
    let collected;
    try {
      collected = collect(node, body);
    } catch (err) {
      // e.g. RangeError from a pathologically deep tree: still fail closed with our type.
      throw new SqlAnalysisError(`cannot analyse statement: ${(err as Error).message}`, start);
    }
    out.push({ ...classify(node, body), ...collected, text });
  }
  return out;
}

function toAnalysisError(err: unknown): SqlAnalysisError {
  const e = err as { message?: unknown; sqlDetails?: { message?: unknown; cursorPosition?: unknown } };
  const message = typeof e?.sqlDetails?.message === "string" ? e.sqlDetails.message : String(e?.message ?? err);
  const pos = typeof e?.sqlDetails?.cursorPosition === "number" ? e.sqlDetails.cursorPosition : -1;
  return new SqlAnalysisError(message, pos);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
