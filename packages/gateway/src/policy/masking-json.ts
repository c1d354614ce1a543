// Validates a bundle's masking.json into MaskingRules (masking/masker.ts).
// Strict on purpose: a typo such as "emial" or "stratgy" would otherwise turn
// a rule off silently and leak the data it was written to hide.
import * as aws from "../masking/detectors/aws.js";
import * as email from "../masking/detectors/email.js";
import * as entropy from "../masking/detectors/entropy.js";
import * as iban from "../masking/detectors/iban.js";
import * as ip from "../masking/detectors/ip.js";
import * as jwt from "../masking/detectors/jwt.js";
import * as luhn from "../masking/detectors/luhn.js";
import * as pem from "../masking/detectors/pem.js";
import * as phone from "../masking/detectors/phone.js";
import * as ssn from "../masking/detectors/ssn.js";
import { DETECTORS } from "../masking/detectors/index.js";
import { createMasker, type MaskingRules } from "../masking/masker.js";
import { parseJsonSource, type JsonPath } from "./json-source.js";
import type { PolicyError } from "./types.js";

export const MASKING_FILE = "masking.json";

/** Match kinds the detectors report: the keys `strategies` may use. */
export const MATCH_KINDS: readonly string[] = [
  aws.KIND_KEY_ID, aws.KIND_SECRET, email.KIND, entropy.KIND, iban.KIND,
  ip.KIND, jwt.KIND, luhn.KIND, pem.KIND, phone.KIND, ssn.KIND,
].sort();
export const DETECTOR_NAMES: readonly string[] = Object.keys(DETECTORS);

/** Keys ignored everywhere, so files can carry explanations (JSON has no comments). */
const COMMENT = "$comment";
const TOP_KEYS = ["detectors", "strategies", "defaultStrategy", "columns", "exemptGroups"];
const STRATEGY_KEYS: Record<string, string[]> = {
  redact: ["type", "sameLength"],
  partial: ["type", "keep"],
  hash: ["type", "key", "prefix", "length"],
};

type Report = (path: JsonPath, message: string) => void;
const show = (path: JsonPath) => path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseMaskingJson(text: string): { rules: MaskingRules; errors: [] } | { rules: undefined; errors: PolicyError[] } {
  const src = parseJsonSource(text);
  if (!src.ok) return { rules: undefined, errors: [{ file: MASKING_FILE, ...src.error }] };
  const errors: PolicyError[] = [];
  const report: Report = (path, message) =>
    errors.push({ file: MASKING_FILE, ...src.at(path), message: path.length ? `${show(path)}: ${message}` : message });

  const v = src.value;
  if (!isObject(v)) {
    report([], "expected a JSON object");
    return { rules: undefined, errors };
  }
  keysOf(v, [], TOP_KEYS, report);
  if (v.detectors !== undefined) {
    mapOf(v.detectors, ["detectors"], DETECTOR_NAMES, "detector", report, (x, p) => {
      if (typeof x !== "boolean") report(p, "expected true or false");
    });
  }
  if (v.strategies !== undefined) mapOf(v.strategies, ["strategies"], MATCH_KINDS, "match kind", report, (x, p) => strategy(x, p, report));
  if (v.defaultStrategy !== undefined) strategy(v.defaultStrategy, ["defaultStrategy"], report);
  if (v.exemptGroups !== undefined) stringList(v.exemptGroups, ["exemptGroups"], report);
  if (v.columns !== undefined) {
    if (!Array.isArray(v.columns)) report(["columns"], "expected an array of column rules");
    else v.columns.forEach((c, i) => columnRule(c, ["columns", i], report));
  }
  if (errors.length > 0) return { rules: undefined, errors };

  const rules = v as MaskingRules;
  try {
    createMasker(rules); // last line of defence: whatever the masker itself refuses
  } catch (e) {
    return { rules: undefined, errors: [{ file: MASKING_FILE, line: 1, column: 1, message: (e as Error).message }] };
  }
  return { rules, errors: [] };
}

function keysOf(o: Record<string, unknown>, path: JsonPath, allowed: string[], report: Report): void {
  for (const k of Object.keys(o)) {
    if (k !== COMMENT && !allowed.includes(k)) report([...path, k], `unknown key; expected one of ${allowed.join(", ")}`);
  }
}

function mapOf(v: unknown, path: JsonPath, names: readonly string[], what: string, report: Report, each: (x: unknown, p: JsonPath) => void): void {
  if (!isObject(v)) return report(path, "expected an object");
  for (const [k, x] of Object.entries(v)) {
    if (k === COMMENT) continue;
    if (!names.includes(k)) report([...path, k], `unknown ${what} "${k}"; known: ${names.join(", ")}`);
    else each(x, [...path, k]);
  }
}

function stringList(v: unknown, path: JsonPath, report: Report): void {
  if (!Array.isArray(v) || v.some((g) => typeof g !== "string" || g.length === 0)) report(path, "expected an array of group names");
}

function strategy(v: unknown, path: JsonPath, report: Report): void {
  if (!isObject(v)) return report(path, `expected a strategy object, e.g. {"type": "redact"}`);
  const allowed = typeof v.type === "string" ? STRATEGY_KEYS[v.type] : undefined;
  if (!allowed) return report([...path, "type"], `unknown strategy ${JSON.stringify(v.type)}; expected redact, partial or hash`);
  keysOf(v, path, allowed, report);
  if (v.sameLength !== undefined && typeof v.sameLength !== "boolean") report([...path, "sameLength"], "expected true or false");
  if (v.keep !== undefined && !(Number.isInteger(v.keep) && (v.keep as number) >= 0)) report([...path, "keep"], "expected a non-negative integer");
  if (v.type === "hash") {
    if (typeof v.key !== "string" || v.key.length === 0) report([...path, "key"], "hash needs a non-empty key");
    if (v.prefix !== undefined && typeof v.prefix !== "string") report([...path, "prefix"], "expected a string");
    const n = v.length;
    if (n !== undefined && !(Number.isInteger(n) && (n as number) >= 8 && (n as number) <= 43)) report([...path, "length"], "expected an integer from 8 to 43");
  }
}

function columnRule(v: unknown, path: JsonPath, report: Report): void {
  if (!isObject(v)) return report(path, `expected {"match": "*email*", "strategy": {…}}`);
  keysOf(v, path, ["match", "strategy", "exemptGroups"], report);
  if (typeof v.match !== "string" || v.match.length === 0) report([...path, "match"], `needs a column pattern such as "public.users.email" or "*email*"`);
  if (v.strategy === undefined) report([...path, "strategy"], "missing strategy");
  else strategy(v.strategy, [...path, "strategy"], report);
  if (v.exemptGroups !== undefined) stringList(v.exemptGroups, [...path, "exemptGroups"], report);
}
