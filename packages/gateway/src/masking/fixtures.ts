// Test data only (imported by the *.test.ts files beside it; excluded from the build): a seeded
// generator of realistic sensitive values, near misses of them, typical harmless cells and random
// Unicode, so the prefilter and masking properties are checked on the same varied corpus.
import { createHmac } from "node:crypto";
import { IBAN_LENGTHS, ibanChecksumValid } from "./detectors/iban.js";
import { luhnValid } from "./detectors/luhn.js";

import type { MaskingRules } from "./masker.js";

export type Rnd = () => number;

/** Hash key used by the tests' keyed-hash strategy. */
export const KEY = "0123456789abcdef0123456789abcdef";

/** Column rules the masker tests share: a dotted rule, a glob with a hash, a group exemption, a global exemption. */
export const SAMPLE_RULES: MaskingRules = {
  strategies: { email: { type: "partial" } },
  columns: [
    { match: "billing.cards.pan", strategy: { type: "partial" } },
    { match: "*email*", strategy: { type: "hash", key: KEY } },
    { match: "notes", strategy: { type: "redact" }, exemptGroups: ["support"] },
  ],
  exemptGroups: ["dpo"],
};

export { mulberry32 } from "../test-prng.js";

const int = (rnd: Rnd, n: number): number => Math.floor(rnd() * n);
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[int(rnd, xs.length)] as T;
const digits = (rnd: Rnd, n: number): string => Array.from({ length: n }, () => String(int(rnd, 10))).join("");
const from = (rnd: Rnd, alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet.charAt(int(rnd, alphabet.length))).join("");
const pad = (n: number, w: number): string => String(n).padStart(w, "0");

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "0123456789";
const B62 = UPPER + LOWER + DIGITS;
const HEX = "0123456789abcdef";

function card(rnd: Rnd): string {
  const [prefix, len] = pick(rnd, [["4", 16], ["4", 13], ["51", 16], ["2221", 16], ["34", 15], ["37", 15], ["6011", 16], ["3530", 16], ["36", 14], ["62", 19], ["50", 18]] as const);
  let body = prefix + digits(rnd, len - prefix.length - 1);
  for (let d = 0; d < 10; d++) {
    if (luhnValid(body + d)) {
      body += d;
      break;
    }
  }
  const sep = pick(rnd, ["", " ", "-"]);
  return sep === "" ? body : (body.match(/.{1,4}/g) ?? []).join(sep);
}

function iban(rnd: Rnd): string {
  const country = pick(rnd, Object.keys(IBAN_LENGTHS));
  const len = IBAN_LENGTHS[country] ?? 22;
  const bban = from(rnd, rnd() < 0.7 ? DIGITS : UPPER + DIGITS, len - 4);
  for (let check = 2; check <= 98; check++) {
    const compact = country + pad(check, 2) + bban;
    if (ibanChecksumValid(compact)) return rnd() < 0.5 ? compact : (compact.match(/.{1,4}/g) ?? []).join(" ");
  }
  return country + "00" + bban;
}

function ipv6(rnd: Rnd): string {
  const groups = Array.from({ length: 8 }, () => from(rnd, HEX, 1 + int(rnd, 4)).replace(/^0+(?=.)/, ""));
  if (rnd() < 0.4) return groups.join(":");
  const a = int(rnd, 6);
  const b = a + 1 + int(rnd, 8 - a - 1);
  return `${groups.slice(0, a).join(":")}::${groups.slice(b).join(":")}`;
}

export function makeJwt(payload: object): string {
  const h = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const p = Buffer.from(JSON.stringify(payload)).toString("base64url");
  return `${h}.${p}.${createHmac("sha256", "k").update(`${h}.${p}`).digest("base64url")}`;
}

/** One realistic sensitive value of a random kind. */
export function sensitive(rnd: Rnd): string {
  switch (int(rnd, 13)) {
    case 0:
      return `${from(rnd, LOWER, 1 + int(rnd, 8))}${pick(rnd, ["", ".", "+", "_"])}${from(rnd, LOWER + DIGITS, 1 + int(rnd, 6))}@${from(rnd, LOWER, 2 + int(rnd, 8))}.${pick(rnd, ["com", "org", "co.uk", "io"])}`;
    case 1:
      return card(rnd);
    case 2:
      return `${pad(1 + int(rnd, 665), 3)}-${pad(1 + int(rnd, 99), 2)}-${pad(1 + int(rnd, 9999), 4)}`;
    case 3: {
      const a = 2 + int(rnd, 8);
      return pick(rnd, [
        `+1 ${a}${digits(rnd, 2)} ${2 + int(rnd, 8)}${digits(rnd, 2)} ${digits(rnd, 4)}`,
        `(${a}${digits(rnd, 2)}) ${2 + int(rnd, 8)}${digits(rnd, 2)}-${digits(rnd, 4)}`,
        `${a}${digits(rnd, 2)}-${2 + int(rnd, 8)}${digits(rnd, 2)}-${digits(rnd, 4)}`,
        `${a}${digits(rnd, 2)}.${2 + int(rnd, 8)}${digits(rnd, 2)}.${digits(rnd, 4)}`,
        `+44 20 ${digits(rnd, 4)} ${digits(rnd, 4)}`,
        `0${1 + int(rnd, 9)}${digits(rnd, 1)} ${digits(rnd, 4)} ${digits(rnd, 4)}`,
        `+49 30 ${digits(rnd, 6)}`,
        `+${1 + int(rnd, 9)}${digits(rnd, 9 + int(rnd, 3))}`,
      ]);
    }
    case 4:
      return Array.from({ length: 4 }, () => String(int(rnd, 256))).join(".");
    case 5:
      return rnd() < 0.2 ? `::ffff:${int(rnd, 256)}.${int(rnd, 256)}.${int(rnd, 256)}.${int(rnd, 256)}` : ipv6(rnd);
    case 6:
      return iban(rnd);
    case 7:
      return makeJwt({ sub: digits(rnd, 6), n: from(rnd, B62, int(rnd, 20)) });
    case 8:
      return pick(rnd, ["AKIA", "ASIA"]) + from(rnd, UPPER + DIGITS, 16);
    case 9:
      return `aws_secret_access_key = ${from(rnd, B62 + "/+", 40)}`;
    case 10:
      return `-----BEGIN ${pick(rnd, ["", "RSA ", "EC "])}PRIVATE KEY-----\nMIIB${from(rnd, B62, 30)}\n-----END PRIVATE KEY-----`;
    case 11:
      return pick(rnd, ["sk_live_", "ghp_", "xoxb-", ""]) + from(rnd, B62, 20 + int(rnd, 20));
    default:
      return `${pick(rnd, ["Jane", "Bob", "call"])} ${card(rnd)}`;
  }
}

/** A typical harmless cell: what most result columns hold. */
export function typical(rnd: Rnd): string {
  const y = 1990 + int(rnd, 40);
  const date = `${y}-${pad(1 + int(rnd, 12), 2)}-${pad(1 + int(rnd, 28), 2)}`;
  const time = `${pad(int(rnd, 24), 2)}:${pad(int(rnd, 60), 2)}:${pad(int(rnd, 60), 2)}`;
  switch (int(rnd, 12)) {
    case 0:
      return `${pick(rnd, ["Jane", "Bob", "Ann", "José", "Zoë", "李"])} ${pick(rnd, ["Doe", "Smith", "Müller", "O'Brien", "García"])}`;
    case 1:
      return pick(rnd, ["t", "f", "true", "false", "active", "pending", "shipped"]);
    case 2:
      return String(int(rnd, 10 ** (1 + int(rnd, 7))));
    case 3:
      return `${int(rnd, 100000)}.${pad(int(rnd, 100), 2)}`;
    case 4:
      return date;
    case 5:
      return `${date} ${time}${rnd() < 0.5 ? `.${digits(rnd, 6)}` : ""}${pick(rnd, ["+00", "+02", "-05", ""])}`;
    case 6:
      return [8, 4, 4, 4, 12].map((n) => from(rnd, HEX, n)).join("-");
    case 7:
      return `${date}T${time}Z`;
    case 8:
      return pick(rnd, ["Springfield", "hello world", "The quick brown fox jumps over the lazy dog", "N/A", ""]);
    case 9:
      return `{"id":${int(rnd, 1000)},"tags":["a","b"],"ok":true}`;
    case 10:
      return `${int(rnd, 10)}.${int(rnd, 30)}.${int(rnd, 30)}`;
    default:
      return time;
  }
}

/** A sensitive value nudged so that it may or may not still match (boundaries, checksums, glue). */
export function nearMiss(rnd: Rnd): string {
  let s = sensitive(rnd);
  for (let k = 1 + int(rnd, 2); k > 0; k--) {
    const i = int(rnd, s.length + 1);
    switch (int(rnd, 6)) {
      case 0: // change one character
        s = s.slice(0, i) + from(rnd, DIGITS + "aZ-. :", 1) + s.slice(i + 1);
        break;
      case 1: // drop one
        s = s.slice(0, i) + s.slice(i + 1);
        break;
      case 2: // glue a letter or digit on either side
        s = rnd() < 0.5 ? from(rnd, "xQ7_", 1) + s : s + from(rnd, "xQ7_", 1);
        break;
      case 3: // double a separator
        s = s.replace(/[ .-]/, (m) => m + m);
        break;
      case 4: // truncate
        s = s.slice(0, Math.max(1, i));
        break;
      default: // insert a separator
        s = s.slice(0, i) + pick(rnd, [" ", "-", ".", ":", "+", "(", ")"]) + s.slice(i);
    }
  }
  return s;
}

const UNICODE_RANGES: Array<[number, number]> = [[0x20, 0x7e], [0xa0, 0xff], [0x391, 0x3c9], [0x4e00, 0x4fff], [0x1f600, 0x1f64f], [0x300, 0x36f], [0xd800, 0xdfff]]; // the last: lone surrogates

/** Random text: Unicode from several scripts, or an alphabet dense in the characters detectors care about. */
export function noise(rnd: Rnd): string {
  const n = int(rnd, 40);
  if (rnd() < 0.5) return from(rnd, "0123456789 -.:+()@AEJKSYeyx_/=\t", n);
  let s = "";
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(rnd, UNICODE_RANGES);
    s += String.fromCodePoint(lo + int(rnd, hi - lo + 1));
  }
  return s;
}

/** A cell for the property tests: one to three pieces of any of the kinds above, joined. */
export function corpusValue(rnd: Rnd): string {
  const parts: string[] = [];
  for (let k = 1 + int(rnd, rnd() < 0.7 ? 1 : 3); k > 0; k--) {
    const r = rnd();
    parts.push(r < 0.3 ? sensitive(rnd) : r < 0.55 ? nearMiss(rnd) : r < 0.85 ? typical(rnd) : noise(rnd));
  }
  return parts.join(pick(rnd, [" ", ", ", "\t", "\n", "", ":", "/", "-"]));
}

/**
 * Items per second for `run` (which handles `count` items), best of `reps` runs, by wall clock
 * and by this process's CPU time: on a shared machine the CPU figure is the steadier one.
 */
export function throughput(count: number, run: () => void, reps = 3): { wall: number; cpu: number } {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    run();
    wall = Math.min(wall, performance.now() - t0);
    const used = process.cpuUsage(c0);
    cpu = Math.min(cpu, (used.user + used.system) / 1000);
  }
  const perSecond = (ms: number): number => Math.round(count / (Math.max(ms, 0.001) / 1000));
  return { wall: perSecond(wall), cpu: perSecond(cpu) };
}
