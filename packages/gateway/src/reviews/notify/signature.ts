// Webhook signatures, both directions.
//
// Outbound (generic format), header x-airlock-signature, Stripe-style:
//
//   x-airlock-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// The timestamp is inside the signed string so a captured delivery cannot be
// replayed later with a fresh `t`; receivers reject timestamps outside a
// tolerance. Several v1= entries may appear (during a secret rotation a sender
// signs with old and new secret); a receiver accepts the header if any v1
// matches any of its secrets. Unknown keys (a future v2=) are ignored so the
// scheme can grow without breaking receivers.
//
// Inbound from Slack (interactive callbacks): X-Slack-Signature is
// `v0=<hex HMAC-SHA256(signing secret, "v0:<ts>:<raw body>")>` with the
// timestamp in X-Slack-Request-Timestamp.
//
// Every check runs on the raw body bytes as received: re-serialised JSON or
// re-encoded form data would not match.
import { createHmac, timingSafeEqual } from "node:crypto";
import { AirlockError } from "@airlock/shared";

export const SIGNATURE_HEADER = "x-airlock-signature";
export const EVENT_HEADER = "x-airlock-event";
export const DELIVERY_HEADER = "x-airlock-delivery";
export const SLACK_SIGNATURE_HEADER = "x-slack-signature";
export const SLACK_TIMESTAMP_HEADER = "x-slack-request-timestamp";

/** Five minutes, as Stripe and Slack recommend: covers clock skew and retries, keeps the replay window short. */
export const DEFAULT_TOLERANCE_SEC = 300;

// Bounds the work an unauthenticated caller can make us do per request.
const MAX_HEADER_LENGTH = 4096;
const MAX_SIGNATURES = 8;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const UNIX_SECONDS = /^[0-9]{1,12}$/;

export type SignatureFailure = "missing" | "malformed" | "expired" | "future" | "mismatch";

function invalid(reason: SignatureFailure, message: string): AirlockError {
  return new AirlockError("WEBHOOK_SIGNATURE_INVALID", `webhook signature is invalid: ${message}`, { details: { reason } });
}

function hmacHex(secret: string, data: string): string {
  return createHmac("sha256", secret).update(data, "utf8").digest("hex");
}

/** Constant-time comparison of two hex SHA-256 digests (both already checked to be 64 hex chars). */
function digestsEqual(aHex: string, bHex: string): boolean {
  return timingSafeEqual(Buffer.from(aHex, "hex"), Buffer.from(bHex, "hex"));
}

function checkSecret(secret: unknown, what: string): asserts secret is string {
  // An empty key makes the HMAC forgeable by anyone who guesses that it is empty.
  if (typeof secret !== "string" || secret.length === 0) throw new AirlockError("CONFIG_INVALID", `${what} must be a non-empty string`);
}

function checkTolerance(toleranceSec: number): void {
  if (!Number.isFinite(toleranceSec) || toleranceSec < 0) throw new AirlockError("INVALID_ARGUMENT", "signature tolerance must be a non-negative number of seconds");
}

/** Rejects timestamps too far from now either way: old ones are replays, future ones would stay replayable. */
function checkTimestamp(t: number, nowSec: number, toleranceSec: number): void {
  if (nowSec - t > toleranceSec) throw invalid("expired", `timestamp is ${Math.floor(nowSec - t)} s old (tolerance ${toleranceSec} s)`);
  if (t - nowSec > toleranceSec) throw invalid("future", `timestamp is ${Math.ceil(t - nowSec)} s in the future (tolerance ${toleranceSec} s)`);
}

/** The x-airlock-signature value for a body sent at `timestampSec`. */
export function signWebhook(secret: string, rawBody: string, timestampSec: number): string {
  checkSecret(secret, "webhook secret");
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) throw new AirlockError("INVALID_ARGUMENT", "signature timestamp must be whole unix seconds");
  return `t=${timestampSec},v1=${hmacHex(secret, `${timestampSec}.${rawBody}`)}`;
}

function parseSignatureHeader(header: string): { t: number; v1: string[] } {
  if (header.length > MAX_HEADER_LENGTH) throw invalid("malformed", "header is too long");
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw invalid("malformed", "expected t=<unix seconds>,v1=<hex>");
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") {
      if (t !== undefined) throw invalid("malformed", "t= appears more than once");
      if (!UNIX_SECONDS.test(value)) throw invalid("malformed", "t= is not unix seconds");
      t = Number(value);
    } else if (key === "v1") {
      if (!HEX_SHA256.test(value)) throw invalid("malformed", "v1= is not a hex SHA-256 digest");
      if (v1.length === MAX_SIGNATURES) throw invalid("malformed", `more than ${MAX_SIGNATURES} v1= signatures`);
      v1.push(value);
    }
  }
  if (t === undefined) throw invalid("malformed", "t= is missing");
  if (!v1.length) throw invalid("malformed", "v1= is missing");
  return { t, v1 };
}

/**
 * Checks an x-airlock-signature header against the raw body. `secret` may list
 * several secrets (the current and the previous one during a rotation).
 * Throws WEBHOOK_SIGNATURE_INVALID (details.reason says which check failed).
 */
export function verifyWebhookSignature(
  secret: string | string[],
  header: string | undefined,
  rawBody: string,
  nowSec: number,
  toleranceSec: number = DEFAULT_TOLERANCE_SEC,
): void {
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (!secrets.length) throw new AirlockError("CONFIG_INVALID", "no webhook secret is configured");
  for (const s of secrets) checkSecret(s, "webhook secret");
  checkTolerance(toleranceSec);
  if (header === undefined || header.trim() === "") throw invalid("missing", `${SIGNATURE_HEADER} header is missing`);
  const { t, v1 } = parseSignatureHeader(header);
  // Signature before timestamp: a stale-but-authentic delivery then reports
  // "expired" (a replay or a slow retry), a forged one always "mismatch".
  const expected = secrets.map((s) => hmacHex(s, `${t}.${rawBody}`));
  if (!expected.some((e) => v1.some((v) => digestsEqual(e, v)))) throw invalid("mismatch", "no v1 signature matches the body");
  checkTimestamp(t, nowSec, toleranceSec);
}

/**
 * Checks Slack's X-Slack-Signature / X-Slack-Request-Timestamp headers
 * against the raw request body. Same errors as verifyWebhookSignature.
 */
export function verifySlackSignature(
  signingSecret: string,
  signature: string | undefined,
  timestamp: string | undefined,
  rawBody: string,
  nowSec: number,
  toleranceSec: number = DEFAULT_TOLERANCE_SEC,
): void {
  checkSecret(signingSecret, "Slack signing secret");
  checkTolerance(toleranceSec);
  if (signature === undefined || signature.trim() === "") throw invalid("missing", "X-Slack-Signature header is missing");
  if (timestamp === undefined || timestamp.trim() === "") throw invalid("missing", "X-Slack-Request-Timestamp header is missing");
  const ts = timestamp.trim();
  if (!UNIX_SECONDS.test(ts)) throw invalid("malformed", "X-Slack-Request-Timestamp is not unix seconds");
  const m = /^v0=([0-9a-fA-F]{64})$/.exec(signature.trim());
  if (!m) throw invalid("malformed", "X-Slack-Signature is not v0=<hex SHA-256>");
  if (!digestsEqual(hmacHex(signingSecret, `v0:${ts}:${rawBody}`), m[1]!)) throw invalid("mismatch", "X-Slack-Signature does not match the body");
  checkTimestamp(Number(ts), nowSec, toleranceSec);
}
