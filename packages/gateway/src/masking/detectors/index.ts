import * as aws from "./aws.js";
import * as email from "./email.js";
import * as entropy from "./entropy.js";
import * as iban from "./iban.js";
import * as ip from "./ip.js";
import * as jwt from "./jwt.js";
import * as luhn from "./luhn.js";
import * as pem from "./pem.js";
import * as phone from "./phone.js";
import * as ssn from "./ssn.js";
import type { Detector, Features } from "./types.js";

const pick = (m: Detector): Detector => ({ detect: m.detect, mayMatch: m.mayMatch });

// Order matters only to break ties between equally long overlapping matches: the
// more specific, validated detectors come first and the generic entropy one last.
// Bit i of a detector mask is the i-th entry here.
export const DETECTORS = {
  pem: pick(pem),
  jwt: pick(jwt),
  aws: pick(aws),
  iban: pick(iban),
  card: pick(luhn),
  ssn: pick(ssn),
  email: pick(email),
  ip: pick(ip),
  phone: pick(phone),
  entropy: pick(entropy),
} satisfies Record<string, Detector>;

export type DetectorName = keyof typeof DETECTORS;

export const DETECTOR_NAMES = Object.keys(DETECTORS) as DetectorName[];

/**
 * Bit mask of the detectors among `enabled` whose mayMatch holds. Spelled out call by call, in
 * DETECTORS order, because every call site then sees one function and gets inlined; a loop over
 * ten different functions measured ~5 ns per call on the per-value path.
 */
export function candidateMask(f: Readonly<Features>, enabled: number): number {
  let m = 0;
  if (enabled & 1 && pem.mayMatch(f)) m |= 1;
  if (enabled & 2 && jwt.mayMatch(f)) m |= 2;
  if (enabled & 4 && aws.mayMatch(f)) m |= 4;
  if (enabled & 8 && iban.mayMatch(f)) m |= 8;
  if (enabled & 16 && luhn.mayMatch(f)) m |= 16;
  if (enabled & 32 && ssn.mayMatch(f)) m |= 32;
  if (enabled & 64 && email.mayMatch(f)) m |= 64;
  if (enabled & 128 && ip.mayMatch(f)) m |= 128;
  if (enabled & 256 && phone.mayMatch(f)) m |= 256;
  if (enabled & 512 && entropy.mayMatch(f)) m |= 512;
  return m;
}
