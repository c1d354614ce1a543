import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND = "private_key";

// Any "… PRIVATE KEY" label: PKCS#8, RSA, EC, DSA, OPENSSH, ENCRYPTED.
const BEGIN = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----/g;

export function detect(text: string): Match[] {
  if (!text.includes("-----BEGIN ")) return [];
  const out: Match[] = [];
  for (const m of execAll(BEGIN, text)) {
    if (out.some((o) => m.index < o.end)) continue; // inside a block already taken
    const endMarker = `-----END ${m[1] ?? ""}-----`;
    const endAt = text.indexOf(endMarker, m.index + m[0].length);
    // A value truncated mid-key (column width limits, paging) still leaks key material:
    // without an END line we mask through the end of the text, failing safe.
    const end = endAt < 0 ? text.length : endAt + endMarker.length;
    out.push({ start: m.index, end, kind: KIND });
  }
  return out;
}

/** Cannot match unless there is a run of 5 dashes and room for "-----BEGIN PRIVATE KEY-----" (27 chars). */
export const mayMatch: MayMatch = (f) => f.hasDash && f.length >= 27 && f.marks.maxDashRun >= 5;
