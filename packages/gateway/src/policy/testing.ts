// Policy tests stored beside the policies (`*.tests.json`), run later by
// `airlock policy test DIR`. Format: an array of
//   { name, request: PolicyRequest, expect: "allow"|"deny"|"review",
//     policies?: string[] }   // optional: ids that must be among policyIds
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { PolicyEngine } from "./engine.js";
import type { Decision, DecisionResult, PolicyError, PolicyRequest } from "./types.js";

export interface PolicyTestCase {
  name: string;
  request: PolicyRequest;
  expect: Decision;
  policies?: string[];
}

export interface PolicyTestResult {
  file: string;
  name: string;
  expect: Decision;
  pass: boolean;
  result?: DecisionResult;
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

export async function runPolicyTests(dir: string): Promise<PolicyTestReport> {
  const { engine, errors } = await PolicyEngine.fromDir(dir);
  const results: PolicyTestResult[] = [];
  const files = (await readdir(dir)).filter((f) => f.endsWith(".tests.json")).sort();
  // Policies that fail to load make every case meaningless: report, run none.
  if (errors.length === 0) {
    for (const file of files) results.push(...(await runFile(engine, dir, file)));
  }
  const failed = results.filter((r) => !r.pass).length;
  return {
    ok: errors.length === 0 && failed === 0,
    loadErrors: errors,
    results,
    passed: results.length - failed,
    failed,
  };
}

async function runFile(engine: PolicyEngine, dir: string, file: string): Promise<PolicyTestResult[]> {
  let cases: unknown;
  try {
    cases = JSON.parse(await readFile(join(dir, file), "utf8"));
  } catch (e) {
    return [{ file, name: "(file)", expect: "deny", pass: false, failure: `unreadable: ${(e as Error).message}` }];
  }
  if (!Array.isArray(cases)) {
    return [{ file, name: "(file)", expect: "deny", pass: false, failure: "expected a JSON array of cases" }];
  }
  return cases.map((raw, i): PolicyTestResult => {
    const c = raw as Partial<PolicyTestCase>;
    const name = typeof c.name === "string" ? c.name : `case #${i}`;
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
  });
}
