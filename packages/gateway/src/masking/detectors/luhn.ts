import { isWordAt, type Match, type MayMatch } from "./types.js";

export const KIND = "card";

/** Luhn (mod 10) checksum over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

// Known issuer (IIN) ranges and their lengths. A Luhn check alone accepts 1 in 10
// random digit strings, so requiring a real brand prefix cuts false positives a lot.
const BRANDS: Array<{ test: (d: string) => boolean; lengths: number[] }> = [
  { test: (d) => d.startsWith("4"), lengths: [13, 16, 19] }, // Visa
  { test: (d) => inRange(d, 2, 51, 55) || inRange(d, 4, 2221, 2720), lengths: [16] }, // Mastercard
  { test: (d) => d.startsWith("34") || d.startsWith("37"), lengths: [15] }, // Amex
  { test: (d) => d.startsWith("6011") || d.startsWith("65") || inRange(d, 3, 644, 649), lengths: [16, 17, 18, 19] }, // Discover
  { test: (d) => inRange(d, 4, 3528, 3589), lengths: [16, 17, 18, 19] }, // JCB
  { test: (d) => inRange(d, 3, 300, 305) || d.startsWith("36") || d.startsWith("38") || d.startsWith("39"), lengths: [14, 15, 16, 17, 18, 19] }, // Diners
  { test: (d) => d.startsWith("62"), lengths: [16, 17, 18, 19] }, // UnionPay
  { test: (d) => d.startsWith("50") || inRange(d, 2, 56, 69), lengths: [13, 14, 15, 16, 17, 18, 19] }, // Maestro
];

function inRange(d: string, n: number, lo: number, hi: number): boolean {
  const p = Number(d.slice(0, n));
  return d.length >= n && p >= lo && p <= hi;
}

export function isCardNumber(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  return BRANDS.some((b) => b.lengths.includes(digits.length) && b.test(digits)) && luhnValid(digits);
}

// A RUN is digit groups joined by single spaces or dashes, /\d+(?:[ -]\d+)*/ taken greedily left
// to right. The run may hold several numbers ("4111111111111111 2027"), so groups are re-combined
// below instead of validating the whole run. Parsed by hand rather than with regexes: this runs
// for every value that could hold a card, and the regex version allocated per group and window.
const isDigitAt = (text: string, i: number): boolean => {
  const c = text.charCodeAt(i);
  return c >= 48 && c <= 57;
};

export function detect(text: string): Match[] {
  const out: Match[] = [];
  const n = text.length;
  let p = 0;
  while (p < n) {
    if (!isDigitAt(text, p)) {
      p++;
      continue;
    }
    // Groups of this run: [start, end) positions, and where each one's digits begin in `digits`.
    const bounds: number[] = [];
    const offsets: number[] = [0];
    let digits = "";
    let q = p;
    for (;;) {
      const g = q;
      while (q < n && isDigitAt(text, q)) q++;
      bounds.push(g, q);
      digits += text.slice(g, q);
      offsets.push(digits.length);
      const sep = text.charCodeAt(q);
      if ((sep === 32 || sep === 45) && isDigitAt(text, q + 1)) q++;
      else break;
    }
    const runStart = p;
    p = q;
    if (digits.length < 13) continue; // no window can hold the shortest card
    // Digits glued to letters (order ids like "INV4111...") are not treated as cards;
    // only the run's outer edges can touch letters, so only windows reaching them are barred.
    const gluedStart = isWordAt(text, runStart - 1);
    const gluedEnd = isWordAt(text, q);
    const last = bounds.length / 2 - 1;
    let i = 0;
    while (i <= last) {
      let found = -1;
      // Prefer the longest window of groups starting at i that forms a valid card.
      for (let j = last; j >= i && found < 0; j--) {
        if ((i === 0 && gluedStart) || (j === last && gluedEnd)) continue;
        const from = offsets[i] as number;
        const to = offsets[j + 1] as number;
        if (to - from < 13 || to - from > 19) continue;
        if (isCardNumber(digits.slice(from, to))) {
          out.push({ start: bounds[2 * i] as number, end: bounds[2 * j + 1] as number, kind: KIND });
          found = j;
        }
      }
      i = found >= 0 ? found + 1 : i + 1;
    }
  }
  return out;
}

/**
 * Cannot match unless some RUN can yield a window of >= 13 digits (the shortest card), counting
 * that windows may not use a first/last group glued to a letter (see DigitGroups.maxCardWindowDigits).
 */
export const mayMatch: MayMatch = (f) => f.digits >= 13 && f.groups.maxCardWindowDigits >= 13;
