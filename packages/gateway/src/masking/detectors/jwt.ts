import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND = "jwt";

// A JWS compact serialization: header.payload.signature, base64url without padding.
// The header of any JSON JWT starts with `{"` which base64url-encodes to "eyJ".
// The signature may be empty (alg "none"), hence `*`.
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?![A-Za-z0-9_-])/g;

/** Validation beyond the shape: the header must decode to a JSON object with a string "alg". */
export function headerValid(segment: string): boolean {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof parsed === "object" && parsed !== null && typeof (parsed as { alg?: unknown }).alg === "string";
  } catch {
    return false;
  }
}

export function detect(text: string): Match[] {
  if (!text.includes("eyJ")) return [];
  const out: Match[] = [];
  for (const m of execAll(JWT, text)) {
    const header = m[0].slice(0, m[0].indexOf("."));
    if (!headerValid(header)) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: KIND });
  }
  return out;
}

/** Cannot match unless "eyJ" occurs (detect bails out without it) and there are two dots. */
export const mayMatch: MayMatch = (f) => f.hasJ && f.hasDot && f.marks.eyJ && f.marks.dots >= 2;
