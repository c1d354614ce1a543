import { execAll, type Match, type MayMatch } from "./types.js";

export const KIND_KEY_ID = "aws_access_key_id";
export const KIND_SECRET = "aws_secret_key";

// Access key ids: AKIA (long-term) or ASIA (STS temporary) + 16 upper-case alphanumerics.
const KEY_ID = /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;

// Secret access keys are 40 chars of base64 alphabet with no distinguishing prefix, so
// an unlabelled one is indistinguishable from any other token (the entropy detector may
// still catch it). We only claim a secret when a label precedes it, e.g.
// `aws_secret_access_key = …`, `"SecretAccessKey": "…"`, `AWS_SECRET_ACCESS_KEY=…`.
// Only the value span is reported so the label stays readable.
const SECRET =
  /(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi;

export function detect(text: string): Match[] {
  const out: Match[] = [];
  for (const m of execAll(KEY_ID, text)) {
    out.push({ start: m.index, end: m.index + m[0].length, kind: KIND_KEY_ID });
  }
  for (const m of execAll(SECRET, text)) {
    const value = m[1] ?? "";
    const start = m.index + m[0].length - value.length;
    out.push({ start, end: start + value.length, kind: KIND_SECRET });
  }
  return out;
}

/**
 * Cannot match unless there is a run of >= 20 [A-Z0-9] holding upper case (AKIA/ASIA + 16) or a
 * run of >= 40 characters of the secret alphabet [A-Za-z0-9/+], which lies inside a token run of
 * >= 40 (the label is case-insensitive, so the secret case needs no upper case).
 */
export const mayMatch: MayMatch = (f) =>
  f.length >= 20 && ((f.hasUpper && f.tokens.maxUpperAlnumRun >= 20) || (f.length >= 40 && f.tokens.maxTokenRun >= 40));
