import { isIP } from "node:net";
import { execAll, isWordAt, type Match, type MayMatch } from "./types.js";

export const KIND = "ip";

// Octets with leading zeros ("010") are rejected: they are ambiguous (octal in some
// parsers) and typical of version strings or zero-padded ids rather than addresses.
const V4 = /(?<![\w.:])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)/g;
const V6_CANDIDATE = /[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/g;

function octetOk(s: string | undefined): boolean {
  if (s === undefined || (s.length > 1 && s.startsWith("0"))) return false;
  return Number(s) <= 255;
}

export function detect(text: string): Match[] {
  const out: Match[] = [];
  for (const m of execAll(V4, text)) {
    if (![m[1], m[2], m[3], m[4]].every(octetOk)) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: KIND });
  }
  if (!text.includes(":")) return out;
  for (const m of execAll(V6_CANDIDATE, text)) {
    let cand = m[0];
    const start = m.index;
    // Sentence punctuation is not part of the address.
    while (cand.endsWith(".")) cand = cand.slice(0, -1);
    if (isWordAt(text, start - 1) || isWordAt(text, start + cand.length)) continue;
    // Two colons minimum and a hex digit: avoids "::" alone and "12:30" style times.
    if ((cand.match(/:/g) ?? []).length < 2 || !/[0-9A-Fa-f]/.test(cand)) continue;
    // node:net is the authority on IPv6 syntax (compression, embedded IPv4).
    if (isIP(cand) !== 6) continue;
    out.push({ start, end: start + cand.length, kind: KIND });
  }
  return out;
}

/**
 * IPv4 cannot match unless one run of [0-9.] characters holds >= 3 dots. IPv6 cannot match unless
 * "::" occurs or there are >= 6 colons: without "::" an address has 8 groups (7 colons) or 6
 * groups and a dotted IPv4 tail (6 colons), RFC 4291 section 2.2.
 */
export const mayMatch: MayMatch = (f) =>
  (f.digits >= 4 && f.hasDot && f.groups.maxNumSpanDots >= 3) || (f.hasColon && (f.marks.doubleColon || f.marks.colons >= 6));
