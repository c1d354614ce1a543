/** A detected span in the input: [start, end) in UTF-16 code units, like String.slice. */
export interface Match {
  start: number;
  end: number;
  kind: string;
}

export type Detect = (text: string) => Match[];

/**
 * Cheap facts about a value, gathered by ../prefilter.ts before anything is decoded or any regex
 * runs. Every detector states, as a MayMatch over these facts, what must hold for it to report
 * anything ("cannot match unless …"). The top-level facts come from one very cheap pass; `groups`,
 * `tokens` and `marks` each need another pass and are computed on first access, so a MayMatch
 * tests the top-level facts first and reaches for the others only when a match is still possible.
 *
 * Only ASCII characters are classified: every pattern the detectors use is ASCII (\d and \w
 * without the u flag are ASCII, the character classes are spelled out), and in UTF-8 every byte of
 * a multi-byte character is >= 0x80, so a byte scan sees exactly the ASCII characters of the
 * decoded string, in order, with non-ASCII ones in between as "other". Lengths are upper bounds:
 * a UTF-8 byte count is never less than the UTF-16 length of the same text.
 */
export interface Features {
  /** Upper bound of the length in UTF-16 code units. */
  length: number;
  /** ASCII digits. */
  digits: number;
  hasUpper: boolean;
  hasLower: boolean;
  hasAt: boolean;
  hasDot: boolean;
  hasColon: boolean;
  hasDash: boolean;
  /** An upper-case "J" (as in "eyJ"). */
  hasJ: boolean;
  readonly groups: Readonly<DigitGroups>;
  readonly tokens: Readonly<TokenRuns>;
  readonly marks: Readonly<Marks>;
}

/** Digit-group facts. A "group" is a maximal run of digits. */
export interface DigitGroups {
  /** "+" directly followed by 1-9. */
  plusDigit: boolean;
  /** Two upper-case letters directly followed by two digits: [A-Z]{2}\d{2}. */
  ibanStart: boolean;
  /**
   * Most digits a card window can hold: over every chain of groups joined by single [ -]
   * characters, its digits minus its first group when a word character ([A-Za-z0-9_]) directly
   * precedes the chain and minus its last group when one directly follows it.
   */
  maxCardWindowDigits: number;
  /** Groups of 3, 2 and 4 digits joined by single "-": ddd-dd-dddd. */
  ssnShape: boolean;
  /** Most dots inside one maximal run of [0-9.] characters. */
  maxNumSpanDots: number;
  /**
   * Groups A, B separated by one character s: |A| = 3, s in [ .-], |B| >= 4, and A starts right
   * after ")" or ") ", or right after a group of 3 and one of [ .-].
   */
  nanpPair: boolean;
  /** Groups A, B separated by one character s: A starts with 0, |A| in 2..5, s in [ -], |B| >= 3. */
  trunkPair: boolean;
}

/** Facts about runs of token characters. */
export interface TokenRuns {
  /** Longest run of [A-Z0-9]. */
  maxUpperAlnumRun: number;
  /** Longest maximal run of [A-Za-z0-9+/=_-] (the entropy detector's token alphabet). */
  maxTokenRun: number;
  /** A maximal token run of >= 20 characters holding a lower-case letter, an upper-case letter and a digit. */
  mixedToken20: boolean;
}

/** Facts about punctuation. */
export interface Marks {
  dots: number;
  colons: number;
  /** "::" somewhere. */
  doubleColon: boolean;
  /** "eyJ" somewhere. */
  eyJ: boolean;
  /** Longest run of "-". */
  maxDashRun: number;
}

/** False only when the detector provably reports nothing for a value with these features. */
export type MayMatch = (f: Readonly<Features>) => boolean;

export interface Detector {
  detect: Detect;
  mayMatch: MayMatch;
}

/** True when the character at i exists and is an ASCII letter, digit or underscore. */
export function isWordAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/**
 * Every match of a global regex, like [...text.matchAll(re)] but without matchAll's per-call
 * copy of the regex, which measured ~3x the cost of the search itself on short values. Uses and
 * resets re.lastIndex, so `re` must not be used again until this returns.
 */
export function execAll(re: RegExp, text: string): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push(m);
    if (m[0].length === 0) re.lastIndex++; // never loop on an empty match
  }
  re.lastIndex = 0;
  return out;
}
