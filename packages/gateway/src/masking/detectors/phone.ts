import { isCardNumber } from "./luhn.js";
import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND = "phone";

// International: "+" country code then digit groups with optional single separators,
// an optional "(0)" trunk marker or parenthesised area code. E.164 allows at most
// 15 digits, which is checked after matching.
const INTL = /(?<![\w+])\+[1-9]\d{0,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}(?![\w])/g;
// North American: (415) 555-2671, 415-555-2671, 415.555.2671. A separator is required
// so that bare 10-digit ids are not taken for phone numbers.
const NANP = /(?:(?<![\w+(])\(\d{3}\) ?|(?<![\w+]|\d[ .-])\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w]|[.-]\d)/g;
// Trunk-prefix national formats (UK/EU style): 020 7946 0958, 030-123 456 78. Not inside a
// hyphenated token: UUIDs such as 7c201c1d-0921-4950-bc78-… hold this shape (about 3 in 10,000),
// and masking part of a UUID breaks clients that parse it.
const TRUNK = /(?<![\w+]|\d[ .-]|[A-Za-z_]-)0\d{1,4}[ -]\d{3,4}(?:[ -]\d{2,4}){0,2}(?![\w]|[.-]\d|-[A-Za-z_])/g;

function digitsOf(s: string): string {
  return s.replace(/\D/g, "");
}

export function detect(text: string): Match[] {
  const out: Match[] = [];
  // INTL needs a "+" and TRUNK a "0": skip their scans when the anchor is absent.
  const patterns = [text.includes("+") ? INTL : null, NANP, text.includes("0") ? TRUNK : null];
  for (const re of patterns) {
    if (!re) continue;
    for (const m of execAll(re, text)) {
      let s = m[0];
      // The greedy international pattern can swallow a following number ("+44 20 7946
      // 0958 192.168.1.10"): drop trailing groups until the E.164 limit holds.
      const cutsNumber = (t: string): boolean => /^[.-]\d/.test(text.slice(m.index + t.length, m.index + t.length + 2));
      while (re === INTL && (digitsOf(s).length > 15 || cutsNumber(s)) && /[ .-]\d+$/.test(s)) s = s.replace(/[ .-]\d+$/, "");
      if (cutsNumber(s)) continue;
      const d = digitsOf(s);
      if (d.length < 7 || d.length > 15) continue;
      // A separated digit string that is a valid card number belongs to the card detector.
      if (isCardNumber(d)) continue;
      // NANP area code and exchange cannot start with 0 or 1.
      if (re === NANP && (d[0] === "0" || d[0] === "1" || d[3] === "0" || d[3] === "1")) continue;
      out.push({ start: m.index, end: m.index + s.length, kind: KIND });
    }
  }
  return out;
}

/**
 * Cannot match unless there are >= 7 digits (checked after matching) and one of the three
 * patterns has its anchor:
 * INTL needs "+" then 1-9; NANP ends in \d{3}[ .-]\d{4} where the 3 digits are a whole group
 * right after "(ddd)", "(ddd) " or "ddd" + [ .-] (DigitGroups.nanpPair); TRUNK starts with a whole
 * group 0\d{1,4} then [ -] then >= 3 digits.
 */
export const mayMatch: MayMatch = (f) => f.digits >= 7 && (f.groups.plusDigit || f.groups.nanpPair || f.groups.trunkPair);
