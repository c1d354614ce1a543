// Bearer tokens: `alk_<kind>_<secret>` where the secret is 32 random bytes in
// unpadded base64url (always 43 characters).
//
// Why this shape:
// - The `alk_` prefix makes leaked tokens easy to spot by secret scanners and
//   in logs, and the kind lets us reject an agent key presented as an access
//   token before touching the store.
// - 256 bits from the CSPRNG means the token itself is the credential; no
//   salt or slow hash is needed, so the store keeps only a plain SHA-256 of
//   the whole token and a lookup is a single indexed equality query.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const TOKEN_KINDS = ["at", "enr", "ak", "key", "rt", "lc", "dc"] as const;
/**
 * `at` access token, `enr` agent enrollment token, `ak` agent key, `key` API
 * key, `rt` refresh token, `lc` one-time login code (browser sign-in → CLI),
 * `dc` device sign-in handle.
 */
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface ParsedToken {
  kind: TokenKind;
  /** The 43-character base64url secret part. */
  secret: string;
}

const SECRET_BYTES = 32;
const SECRET_CHARS = 43; // ceil(32 * 8 / 6), unpadded
const PREFIX = "alk_";
// Longest possible token: "alk_" + "enr" + "_" + 43.
const MAX_TOKEN_LENGTH = PREFIX.length + 3 + 1 + SECRET_CHARS;

// The 43rd character carries only 4 data bits (32 bytes = 256 bits = 42*6 + 4),
// so in canonical base64url its low 2 bits are zero. Requiring that means every
// secret has exactly one accepted spelling.
const TOKEN_RE = /^alk_(at|enr|ak|key|rt|lc|dc)_([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/;

export function isTokenKind(kind: string): kind is TokenKind {
  return (TOKEN_KINDS as readonly string[]).includes(kind);
}

/** A new random token of the given kind. Show it once; store only `hashToken(token)`. */
export function generateToken(kind: TokenKind): string {
  if (!isTokenKind(kind)) throw new TypeError(`unknown token kind: ${String(kind)}`);
  return `${PREFIX}${kind}_${randomBytes(SECRET_BYTES).toString("base64url")}`;
}

/**
 * Lowercase hex SHA-256 of the whole token string (prefix and kind included,
 * so the same secret under another kind hashes differently). This is what the
 * store keeps and indexes.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Splits a token into kind and secret, or returns null if it is not a
 * well-formed Airlock token. Cheap by design: it runs on every request before
 * any store lookup, so the length check comes first and guards the regex
 * against attacker-sized input.
 */
export function parseToken(s: unknown): ParsedToken | null {
  if (typeof s !== "string" || s.length > MAX_TOKEN_LENGTH || !s.startsWith(PREFIX)) return null;
  const m = TOKEN_RE.exec(s);
  if (m === null) return null;
  return { kind: m[1] as TokenKind, secret: m[2] as string };
}

/**
 * Constant-time string equality. Both sides are hashed first so that inputs of
 * different lengths neither throw (as `timingSafeEqual` would) nor reveal the
 * expected length through timing.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}

/** True when `token` hashes to `storedHash` (hex), compared in constant time. */
export function tokenMatchesHash(token: string, storedHash: string): boolean {
  return constantTimeEqual(hashToken(token), storedHash.toLowerCase());
}
