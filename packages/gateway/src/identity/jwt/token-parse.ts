// Unverified decoding of a compact JWS, done before any key lookup so the
// verifier can pick the issuer config and reject bad algorithms without
// touching the network. Nothing decoded here is trusted: it only routes the
// token and produces precise error messages; jose re-checks everything after
// the signature.
import { AirlockError } from "@airlock/shared";

/** Longest token accepted; real access tokens (even with many groups) stay far below. */
export const MAX_TOKEN_LENGTH = 32 * 1024;

// Strict base64url (no padding, no whitespace): Buffer's decoder silently skips
// invalid characters, so the alphabet is checked first.
const B64URL = /^[A-Za-z0-9_-]*$/;

export interface UnverifiedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeJsonSegment(segment: string): unknown {
  // A JSON object needs at least "{}" (3 base64url chars); a remainder of 1 char is never valid base64.
  if (segment.length < 3 || segment.length % 4 === 1 || !B64URL.test(segment)) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Cheap syntactic check used to route a credential: three base64url segments and a JSON object header. */
export function looksLikeJwt(token: string): boolean {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return false;
  const first = token.indexOf(".");
  if (first <= 0) return false;
  const second = token.indexOf(".", first + 1);
  if (second < 0 || token.indexOf(".", second + 1) >= 0) return false;
  // The signature may be empty (alg "none"): such tokens must still reach the verifier to be
  // rejected with TOKEN_ALGORITHM_REJECTED instead of being treated as an opaque token.
  if (second === first + 1 || !B64URL.test(token.slice(first + 1, second)) || !B64URL.test(token.slice(second + 1))) return false;
  return isPlainObject(decodeJsonSegment(token.slice(0, first)));
}

function malformed(message: string): AirlockError {
  return new AirlockError("TOKEN_INVALID", `token is not a valid JWT: ${message}`);
}

/** Splits and decodes header and payload; throws TOKEN_INVALID with the exact defect. */
export function decodeUnverified(token: unknown): UnverifiedJwt {
  if (typeof token !== "string" || token === "") throw malformed("empty");
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw malformed(parts.length === 5 ? "encrypted JWTs (JWE) are not accepted" : `expected 3 dot-separated parts, got ${parts.length}`);
  }
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(s)) throw malformed("signature is not base64url");
  const header = decodeJsonSegment(h);
  if (!isPlainObject(header)) throw malformed("header is not a base64url JSON object");
  const payload = decodeJsonSegment(p);
  if (!isPlainObject(payload)) throw malformed("payload is not a base64url JSON object");
  return { header, payload };
}

/**
 * Renders an untrusted claim value for an error message: JSON, truncated, so a hostile token
 * cannot inject control characters or megabytes into the 401 reason and logs.
 */
export function describeValue(value: unknown, max = 120): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text, max);
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** RFC 7519 NumericDate (seconds) as ISO time, tolerating values no Date can hold. */
export function numericDateToIso(seconds: unknown): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return describeValue(seconds);
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString();
}
