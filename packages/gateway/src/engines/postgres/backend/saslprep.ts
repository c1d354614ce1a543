// SASLprep (RFC 4013, a profile of stringprep RFC 3454) of a SCRAM password, the way PostgreSQL
// does it on both ends (src/common/saslprep.c): if the password is not valid for SASLprep, the raw
// password is used instead. The server hashed the stored verifier with the same rule, so what matters
// is to make the same choice as the server, not to reject anything.
//
// Minimal but sufficient for real passwords (documented simplifications):
// - mapping (RFC 3454 B.1 "mapped to nothing", C.1.2 non-ASCII spaces to U+0020) and NFKC use the
//   JavaScript engine's Unicode tables, which may be newer than the server's for new code points;
// - prohibited output (C.1.2, C.2–C.9) is checked; the bidirectional rule (RFC 3454 §6) is not, so a
//   password mixing right-to-left and left-to-right letters is prepped where PostgreSQL would use it
//   raw. PostgreSQL also rejects code points unassigned in Unicode 3.2 (table A.1, e.g. emoji) and then
//   uses the raw password; we do not, which only differs when such a password also contains characters
//   that NFKC changes. Pure-ASCII passwords, the overwhelming case, are exact.

/** B.1: characters "commonly mapped to nothing". */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/** C.1.2: non-ASCII space characters, mapped to SPACE. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/**
 * Prohibited output: C.1.2 (spaces, after mapping none remain), C.2.1/C.2.2 controls, C.3 private
 * use, C.4 non-characters, C.5 surrogates (lone ones in a JS string), C.6 inappropriate for plain
 * text, C.7 for canonical representation, C.8 change display/deprecated, C.9 tagging characters.
 */
const PROHIBITED = new RegExp(
  [
    "[\\u0000-\\u001F\\u007F-\\u009F]", // C.2.1, C.2.2 (0080-009F)
    "[\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F\\uFEFF\\uFFF9-\\uFFFC]", // C.2.2
    "[\\u{1D173}-\\u{1D17A}]", // C.2.2
    "[\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}]", // C.3
    "[\\uFDD0-\\uFDEF\\uFFFE\\uFFFF]", // C.4 (BMP)
    "[\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}\\u{4FFFE}\\u{4FFFF}\\u{5FFFE}\\u{5FFFF}]", // C.4
    "[\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}\\u{AFFFE}\\u{AFFFF}]", // C.4
    "[\\u{BFFFE}\\u{BFFFF}\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{EFFFE}\\u{EFFFF}\\u{FFFFE}\\u{FFFFF}\\u{10FFFE}\\u{10FFFF}]", // C.4
    "[\\uD800-\\uDFFF]", // C.5: with the u flag only unpaired surrogates match
    "[\\uFFF9-\\uFFFD]", // C.6
    "[\\u2FF0-\\u2FFB]", // C.7
    "[\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E\\u206A-\\u206F]", // C.8
    "[\\u{E0001}\\u{E0020}-\\u{E007F}]", // C.9
  ].join("|"),
  "u",
);

/** The string to feed PBKDF2: the SASLprep'd password, or the password unchanged if it is not valid for SASLprep. */
export function saslPrep(password: string): string {
  // Pure ASCII is left as is by the mapping and NFKC; only control characters can make it invalid,
  // in which case PostgreSQL also falls back to the raw password: either way, the raw password.
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, " ").replace(MAPPED_TO_NOTHING, "").normalize("NFKC");
  if (prepared.length === 0 || PROHIBITED.test(prepared)) return password;
  return prepared;
}
