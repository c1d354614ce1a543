import { createHmac } from "node:crypto";

/**
 * How a matched value is replaced.
 * - redact: "****", or one "*" per character with sameLength (keeps layout/width).
 * - partial: keep the last `keep` (default 4) alphanumerics, e.g. "****1234"; emails
 *   keep the domain ("****@example.com") because the domain is usually what analysts need.
 * - hash: keyed HMAC-SHA256, base64url, truncated. Deterministic, so masked columns can
 *   still be joined/grouped; keyed, so it cannot be reversed by hashing guesses (card
 *   numbers and SSNs have small spaces that a plain hash would not protect).
 */
export type Strategy =
  | { type: "redact"; sameLength?: boolean }
  | { type: "partial"; keep?: number }
  | { type: "hash"; key: string | Buffer; prefix?: string; length?: number };

export const REDACTED = "****";

export function redact(value: string, sameLength = false): string {
  return sameLength ? "*".repeat(value.length) : REDACTED;
}

const EMAIL_SHAPE = /^[^@\s]+@([^@\s]+)$/;

export function partial(value: string, kind: string, keep = 4): string {
  const email = EMAIL_SHAPE.exec(value);
  if (email && (kind === "email" || kind === "column")) return `${REDACTED}@${email[1] ?? ""}`;
  const alnum = value.replace(/[^A-Za-z0-9]/g, "");
  // Revealing `keep` chars of a short value reveals most of it: require twice as many.
  if (keep <= 0 || alnum.length < keep * 2) return REDACTED;
  return REDACTED + alnum.slice(-keep);
}

export const DEFAULT_HASH_PREFIX = "h:";
/** 22 base64url chars = 132 bits: collisions are negligible at table scale. */
export const DEFAULT_HASH_LENGTH = 22;

export function hash(value: string, key: string | Buffer, prefix = DEFAULT_HASH_PREFIX, length = DEFAULT_HASH_LENGTH): string {
  if (key.length === 0) throw new Error("hash strategy needs a non-empty key");
  const mac = createHmac("sha256", key).update(value, "utf8").digest("base64url");
  return prefix + mac.slice(0, Math.max(8, Math.min(length, mac.length)));
}

export function applyStrategy(strategy: Strategy, value: string, kind: string): string {
  switch (strategy.type) {
    case "redact":
      return redact(value, strategy.sameLength ?? false);
    case "partial":
      return partial(value, kind, strategy.keep ?? 4);
    case "hash":
      return hash(value, strategy.key, strategy.prefix, strategy.length);
  }
}

/** Fails at configuration time rather than on the first row. */
export function validateStrategy(strategy: Strategy): void {
  if (strategy.type === "hash" && strategy.key.length === 0) throw new Error("hash strategy needs a non-empty key");
  if (strategy.type === "partial" && strategy.keep !== undefined && (!Number.isInteger(strategy.keep) || strategy.keep < 0)) {
    throw new Error("partial.keep must be a non-negative integer");
  }
}
