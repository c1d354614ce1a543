import { execAll, type Match, type MayMatch } from "./types.js";

// Deliberately narrower than RFC 5322 (no quoted local parts, no IP literals): those
// forms are rare in data and a looser pattern produces false positives in free text.
const EMAIL = /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]{1,64})@((?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63})(?![A-Za-z0-9-])/g;

export const KIND = "email";

function validLocal(local: string): boolean {
  // Dots may not lead, trail or repeat in an unquoted local part.
  return !local.startsWith(".") && !local.endsWith(".") && !local.includes("..");
}

function validDomain(domain: string): boolean {
  if (domain.length > 253) return false;
  // Labels may not start or end with a hyphen (RFC 1035 host names). The pattern already makes
  // every label non-empty, so checking the label boundaries is enough (and allocates nothing).
  return !domain.startsWith("-") && !domain.endsWith("-") && !domain.includes("-.") && !domain.includes(".-");
}

export function detect(text: string): Match[] {
  if (!text.includes("@")) return [];
  const out: Match[] = [];
  for (const m of execAll(EMAIL, text)) {
    const local = m[1] ?? "";
    const domain = m[2] ?? "";
    if (m[0].length > 254 || !validLocal(local) || !validDomain(domain)) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: KIND });
  }
  return out;
}

/** Cannot match unless the value has an "@" and a "." (the domain needs at least one dot). */
export const mayMatch: MayMatch = (f) => f.hasAt && f.hasDot;
