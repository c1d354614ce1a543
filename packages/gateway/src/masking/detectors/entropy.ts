import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND = "secret";

/**
 * Generic high-entropy token heuristic. A token (run of base64/base64url characters)
 * is reported when ALL of:
 * - length >= MIN_LENGTH (20): shorter strings have too little room for entropy to
 *   separate random from natural text;
 * - Shannon entropy >= ENTROPY_THRESHOLD (3.5 bits/char). English words sit near
 *   2.5–3.3; random base62 strings of 20+ chars sit near 4.0–4.3 (the ceiling for 20
 *   chars is log2(20) ≈ 4.32), so 3.5 leaves margin on both sides;
 * - lower case, upper case AND digits all present: hex digests and UUIDs (lower+digit)
 *   are identifiers, not secrets, and are left alone on purpose;
 * - class changes between neighbouring characters in >= 45% of positions: random
 *   base62 strings switch class ~60% of the time, camelCase identifiers like
 *   "getUserAccountById2024Version" ~40% (each capital costs two changes). The price is
 *   that a few percent of short (20–24 char) random tokens fall under 45% and are missed.
 */
export const MIN_LENGTH = 20;
export const ENTROPY_THRESHOLD = 3.5;
export const MIN_TRANSITION_RATIO = 0.45;

const TOKEN = /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{20,}(?![A-Za-z0-9+/=_-])/g;

export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function cls(c: number): number {
  if (c >= 97 && c <= 122) return 1;
  if (c >= 65 && c <= 90) return 2;
  if (c >= 48 && c <= 57) return 3;
  return 4;
}

export function looksSecret(tok: string): boolean {
  if (tok.length < MIN_LENGTH) return false;
  const seen = new Set<number>();
  let transitions = 0;
  for (let i = 0; i < tok.length; i++) {
    const c = cls(tok.charCodeAt(i));
    seen.add(c);
    if (i > 0 && c !== cls(tok.charCodeAt(i - 1))) transitions++;
  }
  if (!seen.has(1) || !seen.has(2) || !seen.has(3)) return false;
  if (transitions / (tok.length - 1) < MIN_TRANSITION_RATIO) return false;
  return shannonEntropy(tok) >= ENTROPY_THRESHOLD;
}

export function detect(text: string): Match[] {
  const out: Match[] = [];
  for (const m of execAll(TOKEN, text)) {
    if (looksSecret(m[0])) out.push({ start: m.index, end: m.index + m[0].length, kind: KIND });
  }
  return out;
}

/** Cannot match unless a maximal token run is >= MIN_LENGTH and mixes lower case, upper case and digits. */
export const mayMatch: MayMatch = (f) => f.length >= MIN_LENGTH && f.digits > 0 && f.hasUpper && f.hasLower && f.tokens.mixedToken20;
