// Policy tests stored beside the policies (`*.tests.json`), run by
// `airlock policy test DIR`. Format: a JSON array of cases, either
//   { name, request: PolicyRequest, expect: "allow"|"deny"|"review",
//     policies?: string[] }   // optional: ids that must be among policyIds
// or, to test masking.json (needs the bundle runner, testBundle):
//   { name, mask: { column, value, groups? }, expect: "<masked value>" }
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Masker } from "../masking/masker.js";
import { PolicyEngine } from "./engine.js";
import type { Decision, DecisionResult, PolicyError, PolicyRequest } from "./types.js";

export interface PolicyTestCase {
  name: string;
  request: PolicyRequest;
  expect: Decision;
  policies?: string[];
}

export interface MaskTestCase {
  name: string;
  mask: { column: string; value: string; groups?: string[] };
  /** The value the client must see. */
  expect: string;
}

export interface PolicyTestResult {
  file: string;
  name: string;
  /** A decision for policy cases, the masked value for mask cases. */
  expect: string;
  pass: boolean;
  /** Policy cases: what the engine decided. */
  result?: DecisionResult;
  /** Mask cases: what the masker produced. */
  masked?: string;
  /** Why the case failed (mismatch or malformed case). */
  failure?: string;
}

export interface PolicyTestReport {
  ok: boolean;
  loadErrors: PolicyError[];
  results: PolicyTestResult[];
  passed: number;
  failed: number;
}

const DECISIONS: readonly string[] = ["allow", "deny", "review"];
export const isTestFile = (name: string): boolean => name.endsWith(".tests.json");

/** Runs the tests of a policy directory (Cedar only: mask cases need testBundle). */
export async function runPolicyTests(dir: string): Promise<PolicyTestReport> {
  const { engine, errors } = await PolicyEngine.fromDir(dir);
  const files: Record<string, string> = {};
  for (const name of await readdir(dir)) if (isTestFile(name)) files[name] = await readFile(join(dir, name), "utf8");
  try {
    // Policies that fail to load make every case meaningless: report, run none.
    return summarize(errors, errors.length === 0 ? runTestFiles(engine, undefined, files) : []);
  } finally {
    engine.dispose();
  }
}

export function summarize(loadErrors: PolicyError[], results: PolicyTestResult[]): PolicyTestReport {
  const failed = results.filter((r) => !r.pass).length;
  return { ok: loadErrors.length === 0 && failed === 0, loadErrors, results, passed: results.length - failed, failed };
}

/** Runs every `*.tests.json` among `files` (name -> text), files in name order. */
export function runTestFiles(engine: PolicyEngine, masker: Masker | undefined, files: Record<string, string>): PolicyTestResult[] {
  const names = Object.keys(files).filter(isTestFile).sort();
  return names.flatMap((file) => runFile(engine, masker, file, files[file] ?? ""));
}

function runFile(engine: PolicyEngine, masker: Masker | undefined, file: string, text: string): PolicyTestResult[] {
  let cases: unknown;
  try {
    cases = JSON.parse(text);
  } catch (e) {
    return [{ file, name: "(file)", expect: "deny", pass: false, failure: `unreadable: ${(e as Error).message}` }];
  }
  if (!Array.isArray(cases)) {
    return [{ file, name: "(file)", expect: "deny", pass: false, failure: "expected a JSON array of cases" }];
  }
  return cases.map((raw, i): PolicyTestResult => {
    const c = (raw ?? {}) as Record<string, unknown>;
    const name = typeof c.name === "string" ? c.name : `case #${i}`;
    if ("mask" in c) return runMaskCase(masker, file, name, c as Partial<MaskTestCase>);
    return runDecisionCase(engine, file, name, c as Partial<PolicyTestCase>);
  });
}

function runDecisionCase(engine: PolicyEngine, file: string, name: string, c: Partial<PolicyTestCase>): PolicyTestResult {
  if (!c.request || typeof c.expect !== "string" || !DECISIONS.includes(c.expect)) {
    return { file, name, expect: "deny", pass: false, failure: "case needs request and expect allow|deny|review" };
  }
  const result = engine.decide(c.request);
  const missing = (c.policies ?? []).filter((id) => !result.policyIds.includes(id));
  const failure =
    result.decision !== c.expect
      ? `expected ${c.expect}, got ${result.decision} (${result.reasons.join("; ")})`
      : missing.length > 0
        ? `expected determining policies ${missing.join(", ")}, got ${result.policyIds.join(", ") || "none"}`
        : undefined;
  const out: PolicyTestResult = { file, name, expect: c.expect, pass: failure === undefined, result };
  if (failure) out.failure = failure;
  return out;
}

function runMaskCase(masker: Masker | undefined, file: string, name: string, c: Partial<MaskTestCase>): PolicyTestResult {
  const m = c.mask;
  const expect = typeof c.expect === "string" ? c.expect : "";
  if (!m || typeof m.column !== "string" || typeof m.value !== "string" || typeof c.expect !== "string") {
    return { file, name, expect, pass: false, failure: "mask case needs mask {column, value, groups?} and expect (the masked string)" };
  }
  if (!masker) return { file, name, expect, pass: false, failure: "mask cases need masking rules: run them with `airlock policy test` (testBundle)" };
  const masked = masker.maskValue(m.column, m.value, m.groups ?? []);
  const out: PolicyTestResult = { file, name, expect, pass: masked === expect, masked };
  if (masked !== expect) out.failure = `expected ${JSON.stringify(expect)}, got ${JSON.stringify(masked)}`;
  return out;
}
