import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND = "ssn";

// Dashed form only: an undelimited 9-digit number is far more often an id or amount
// than an SSN, so matching it would mask too much.
const SSN = /(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])/g;

/** SSA rules: area 000, 666 and 900–999 are never issued; group 00 and serial 0000 neither. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === "000" || area === "666" || area.startsWith("9")) return false;
  return group !== "00" && serial !== "0000";
}

export function detect(text: string): Match[] {
  const out: Match[] = [];
  for (const m of execAll(SSN, text)) {
    if (!ssnValid(m[1] ?? "", m[2] ?? "", m[3] ?? "")) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: KIND });
  }
  return out;
}

/** Cannot match unless digit groups of exactly 3, 2 and 4 are joined by single dashes. */
export const mayMatch: MayMatch = (f) => f.digits >= 9 && f.hasDash && f.groups.ssnShape;
