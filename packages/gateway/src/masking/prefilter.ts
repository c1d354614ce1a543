// The masking fast path: gather the Features (detectors/types.ts) that every detector's mayMatch
// is written against, without decoding the value. Masking then runs only the detectors whose
// mayMatch holds, and leaves the value alone, undecoded, when none does. Passes:
//   1. classes (always): one table lookup per byte for length, digit count and which character
//      classes occur. Names, words, booleans and small numbers are settled here.
//   2. on demand, each at most once per value: digit groups (values with enough digits: dates,
//      timestamps, ids, UUIDs), token runs (long values) and punctuation marks (colons, dashes).
// Design notes: docs/postgres.md, "Masking" / "Cost"; each requirement is derived beside its detector.
import { MIN_LENGTH as ENTROPY_MIN_LENGTH } from "./detectors/entropy.js";
import type { DigitGroups, Features, Marks, TokenRuns } from "./detectors/types.js";

// Pass-1 class bits.
const DIGIT = 1;
const UPPER = 2;
const LOWER = 4;
const C_AT = 8;
const C_DOT = 16;
const C_COLON = 32;
const C_DASH = 64;
const C_J = 128;
/** Later passes only: [A-Za-z0-9+/=_-], the entropy detector's token alphabet. */
const TOKEN = 256;
/** Later passes only: [A-Za-z0-9_], what the detectors' \w and isWordAt accept. */
const WORD = 512;

/** Byte -> class bits. Bytes >= 0x80 (parts of non-ASCII characters) are 0: "other". */
const CLASS = new Uint16Array(256);
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT | TOKEN | WORD;
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER | TOKEN | WORD;
for (let c = 97; c <= 122; c++) CLASS[c] = LOWER | TOKEN | WORD;
const add = (chars: string, bits: number): void => {
  for (const ch of chars) CLASS[ch.charCodeAt(0)] = (CLASS[ch.charCodeAt(0)] as number) | bits;
};
add("+/=_-", TOKEN);
add("_", WORD);
add("@", C_AT);
add(".", C_DOT);
add(":", C_COLON);
add("-", C_DASH);
add("J", C_J);

const SPACE = 32;
const PLUS = 43;
const DASH = 45;
const DOT = 46;
const COLON = 58;
const ZERO = 48;
const RPAREN = 41;
const J = 74;
const LOWER_E = 101;
const LOWER_Y = 121;
const ALL_CASES = DIGIT | UPPER | LOWER;

const isNanpSep = (c: number): boolean => c === SPACE || c === DOT || c === DASH;

/** The record every scan fills in; reused, so that scanning allocates nothing. */
class ScanResult implements Features {
  length = 0;
  digits = 0;
  hasUpper = false;
  hasLower = false;
  hasAt = false;
  hasDot = false;
  hasColon = false;
  hasDash = false;
  hasJ = false;
  private src: Uint8Array = new Uint8Array(0);
  private start = 0;
  private done = 0; // bit set of the lazy passes already run for this value
  private readonly groupsRecord: DigitGroups = {
    plusDigit: false, ibanStart: false, maxCardWindowDigits: 0, ssnShape: false, maxNumSpanDots: 0, nanpPair: false, trunkPair: false,
  };
  private readonly tokensRecord: TokenRuns = { maxUpperAlnumRun: 0, maxTokenRun: 0, mixedToken20: false };
  private readonly marksRecord: Marks = { dots: 0, colons: 0, doubleColon: false, eyJ: false, maxDashRun: 0 };

  load(src: Uint8Array, start: number, end: number): this {
    let bits = 0;
    let digits = 0;
    for (let i = start; i < end; i++) {
      const k = CLASS[src[i] as number] as number;
      bits |= k;
      digits += k & DIGIT;
    }
    this.length = end - start;
    this.digits = digits;
    this.hasUpper = (bits & UPPER) !== 0;
    this.hasLower = (bits & LOWER) !== 0;
    this.hasAt = (bits & C_AT) !== 0;
    this.hasDot = (bits & C_DOT) !== 0;
    this.hasColon = (bits & C_COLON) !== 0;
    this.hasDash = (bits & C_DASH) !== 0;
    this.hasJ = (bits & C_J) !== 0;
    this.src = src;
    this.start = start;
    this.done = 0;
    return this;
  }

  get groups(): Readonly<DigitGroups> {
    if (!(this.done & 1)) {
      scanGroups(this.src, this.start, this.start + this.length, this.groupsRecord);
      this.done |= 1;
    }
    return this.groupsRecord;
  }

  get tokens(): Readonly<TokenRuns> {
    if (!(this.done & 2)) {
      scanTokens(this.src, this.start, this.start + this.length, this.tokensRecord);
      this.done |= 2;
    }
    return this.tokensRecord;
  }

  get marks(): Readonly<Marks> {
    if (!(this.done & 4)) {
      scanMarks(this.src, this.start, this.start + this.length, this.marksRecord);
      this.done |= 4;
    }
    return this.marksRecord;
  }
}

// The lazy passes. Each keeps its counters in locals (they run for many values of many rows),
// and each reads a virtual 0 byte after the end, which closes open runs with the same code that
// closes them mid-value.

function scanGroups(src: Uint8Array, start: number, end: number, r: DigitGroups): void {
  let plusDigit = false, ibanStart = false, ssnShape = false, nanpPair = false, trunkPair = false;
  let maxCardWindowDigits = 0, maxNumSpanDots = 0, numSpanDots = 0;
  // The current group, the last finished one, and the groups one character before them.
  let group = 0, groupZero = false, lastGroup = 0, lastGroupZero = false, lastGlued = false;
  let groupAfterParen = false, lastAfterParen = false, pairAfterParen = false; // starts right after ")" or ") "
  let gap = 2; // non-digits since the last group ended; > 1 means "no adjacent group"
  let gapChar = 0;
  let pairLen = 0, pairZero = false, pairSep = 0; // group just before the current one (0: none)
  let pair2Len = 0, pair2Sep = 0; // and the one before that, if one character before it
  let lastPairLen = 0, lastPairSep = 0;
  // Card chains: groups joined by single [ -] (luhn.ts RUN).
  let chainDigits = 0, chainFirst = 0, chainGluedStart = false;
  let p1 = 0, p2 = 0, p3 = 0; // the previous three characters

  for (let i = start; i <= end; i++) {
    const c = i < end ? (src[i] as number) : 0;
    const k = CLASS[c] as number;
    if (k & DIGIT) {
      if (group++ === 0) {
        const adjacent = gap === 1 && lastGroup > 0;
        pairLen = adjacent ? lastGroup : 0;
        pairZero = lastGroupZero;
        pairSep = gapChar;
        pair2Len = adjacent ? lastPairLen : 0;
        pair2Sep = lastPairSep;
        pairAfterParen = adjacent && lastAfterParen;
        groupZero = c === ZERO;
        groupAfterParen = p1 === RPAREN || (p1 === SPACE && p2 === RPAREN);
        if (!(adjacent && (gapChar === SPACE || gapChar === DASH))) {
          // A new card chain starts: close the previous one.
          const window = chainDigits - (chainGluedStart ? chainFirst : 0) - (lastGlued ? lastGroup : 0);
          if (window > maxCardWindowDigits) maxCardWindowDigits = window;
          chainDigits = chainFirst = 0;
          chainGluedStart = ((CLASS[p1] as number) & WORD) !== 0;
        }
      }
      if (p1 === PLUS) {
        if (c !== ZERO) plusDigit = true;
      } else if ((CLASS[p1] as number) & DIGIT && (CLASS[p2] as number) & UPPER && (CLASS[p3] as number) & UPPER) {
        ibanStart = true; // [A-Z]{2}\d{2} completes at its second digit
      }
    } else {
      if (group > 0) {
        if (pairLen > 0) {
          if (pairLen === 3 && group >= 4 && isNanpSep(pairSep) && (pairAfterParen || (pair2Len === 3 && isNanpSep(pair2Sep)))) {
            nanpPair = true;
          }
          if (pairZero && pairLen >= 2 && pairLen <= 5 && group >= 3 && (pairSep === SPACE || pairSep === DASH)) trunkPair = true;
          if (group === 4 && pairLen === 2 && pairSep === DASH && pair2Len === 3 && pair2Sep === DASH) ssnShape = true;
        }
        if (chainDigits === 0) chainFirst = group;
        chainDigits += group;
        lastGroup = group;
        lastGroupZero = groupZero;
        lastGlued = (k & WORD) !== 0;
        lastAfterParen = groupAfterParen;
        lastPairLen = pairLen;
        lastPairSep = pairSep;
        group = gap = 0;
      }
      if (++gap === 1) gapChar = c;
      if (c === DOT) numSpanDots++;
      else if (numSpanDots > 0) {
        if (numSpanDots > maxNumSpanDots) maxNumSpanDots = numSpanDots;
        numSpanDots = 0;
      }
    }
    p3 = p2;
    p2 = p1;
    p1 = c;
  }
  // The last card chain (the virtual end byte closed its last group, not the chain).
  const window = chainDigits - (chainGluedStart ? chainFirst : 0) - (lastGlued ? lastGroup : 0);
  if (window > maxCardWindowDigits) maxCardWindowDigits = window;

  r.plusDigit = plusDigit; r.ibanStart = ibanStart; r.ssnShape = ssnShape; r.nanpPair = nanpPair; r.trunkPair = trunkPair;
  r.maxCardWindowDigits = maxCardWindowDigits; r.maxNumSpanDots = maxNumSpanDots;
}

function scanTokens(src: Uint8Array, start: number, end: number, r: TokenRuns): void {
  let maxUpperAlnumRun = 0, maxTokenRun = 0, mixedToken20 = false;
  let upperAlnumRun = 0, tokenRun = 0, tokenClasses = 0;
  for (let i = start; i <= end; i++) {
    const k = i < end ? (CLASS[src[i] as number] as number) : 0;
    if (k & TOKEN) {
      tokenRun++;
      tokenClasses |= k;
    } else if (tokenRun > 0) {
      if (tokenRun > maxTokenRun) maxTokenRun = tokenRun;
      if (tokenRun >= ENTROPY_MIN_LENGTH && (tokenClasses & ALL_CASES) === ALL_CASES) mixedToken20 = true;
      tokenRun = tokenClasses = 0;
    }
    if (k & (DIGIT | UPPER)) upperAlnumRun++;
    else if (upperAlnumRun > 0) {
      if (upperAlnumRun > maxUpperAlnumRun) maxUpperAlnumRun = upperAlnumRun;
      upperAlnumRun = 0;
    }
  }
  r.maxUpperAlnumRun = maxUpperAlnumRun; r.maxTokenRun = maxTokenRun; r.mixedToken20 = mixedToken20;
}

function scanMarks(src: Uint8Array, start: number, end: number, r: Marks): void {
  let dots = 0, colons = 0, doubleColon = false, eyJ = false, maxDashRun = 0, dashRun = 0;
  let p1 = 0, p2 = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? (src[i] as number) : 0;
    if (c === DASH) dashRun++;
    else {
      if (dashRun > 0) {
        if (dashRun > maxDashRun) maxDashRun = dashRun;
        dashRun = 0;
      }
      if (c === DOT) dots++;
      else if (c === COLON) {
        colons++;
        if (p1 === COLON) doubleColon = true;
      } else if (c === J && p1 === LOWER_Y && p2 === LOWER_E) eyJ = true;
    }
    p2 = p1;
    p1 = c;
  }
  r.dots = dots; r.colons = colons; r.doubleColon = doubleColon; r.eyJ = eyJ; r.maxDashRun = maxDashRun;
}

const result = new ScanResult();

/**
 * Features of the UTF-8 bytes [start, end) of buf. The result is a shared record, valid until
 * the next scan: read it at once, do not keep it. the lazy passes read buf, so do not change buf
 * in between either.
 */
export function scanBytes(buf: Uint8Array, start = 0, end = buf.length): Readonly<Features> {
  return result.load(buf, start, end);
}

// Strings are copied into a reused byte array as ASCII-or-0x80, one slot per UTF-16 code unit,
// so the same scan serves both and the length is exact.
const MAX_SCRATCH = 64 * 1024;
let scratch = new Uint8Array(256);

/** Features of a string, by UTF-16 code units (same sharing rule as scanBytes). */
export function scanText(text: string): Readonly<Features> {
  const n = text.length;
  // The shared array grows to the largest ordinary value; a huge one gets its own.
  if (scratch.length < n && n <= MAX_SCRATCH) scratch = new Uint8Array(Math.min(MAX_SCRATCH, Math.max(n, scratch.length * 2)));
  const buf = n <= scratch.length ? scratch : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    buf[i] = c < 0x80 ? c : 0x80;
  }
  return scanBytes(buf, 0, n);
}
