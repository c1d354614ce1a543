import { execAll, isWordAt, type Match, type MayMatch } from "./types.js";

export const KIND = "iban";

// ISO 13616 total lengths for common countries (SWIFT IBAN registry). Countries not
// listed are not detected: without the length we cannot tell where the IBAN ends.
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AT: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CY: 28, CZ: 24,
  DE: 22, DK: 18, EE: 20, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GI: 23, GL: 18,
  GR: 27, HR: 21, HU: 28, IE: 22, IL: 23, IS: 26, IT: 27, KW: 30, KZ: 20, LB: 28,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MT: 31, NL: 18, NO: 15, PL: 28, PT: 25,
  QA: 29, RO: 24, RS: 22, SA: 24, SE: 24, SI: 19, SK: 24, SM: 27, TR: 26, UA: 29,
};

export const MIN_IBAN_LENGTH = Math.min(...Object.values(IBAN_LENGTHS));

/** ISO 7064 mod 97-10 over the rearranged IBAN, computed piecewise to stay in int range. */
export function ibanChecksumValid(compact: string): boolean {
  const r = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of r) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? c - 55 : c - 48; // A=10 … Z=35
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

const START = /[A-Z]{2}\d{2}/g;

export function detect(text: string): Match[] {
  const out: Match[] = [];
  for (const m of execAll(START, text)) {
    const start = m.index;
    if (isWordAt(text, start - 1)) continue;
    const len = IBAN_LENGTHS[m[0].slice(0, 2)];
    if (len === undefined) continue;
    // Walk forward taking exactly `len` alphanumerics, allowing single spaces between
    // them (the printed "GB82 WEST 1234 …" form). Upper case only, as printed.
    let compact = "";
    let i = start;
    while (i < text.length && compact.length < len) {
      const ch = text.charAt(i);
      if (/[A-Z0-9]/.test(ch)) {
        compact += ch;
        i++;
      } else if (ch === " " && compact.length > 0 && /[A-Z0-9]/.test(text.charAt(i + 1))) {
        i++;
      } else break;
    }
    if (compact.length !== len || isWordAt(text, i)) continue;
    if (!ibanChecksumValid(compact)) continue;
    out.push({ start, end: i, kind: KIND });
  }
  return out;
}

/** Cannot match unless [A-Z]{2}\d{2} occurs and the value is as long as the shortest IBAN (15, Norway). */
export const mayMatch: MayMatch = (f) => f.hasUpper && f.digits >= 2 && f.length >= MIN_IBAN_LENGTH && f.groups.ibanStart;
