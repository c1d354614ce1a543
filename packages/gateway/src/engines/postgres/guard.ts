// Statement guardrails: SQL text -> parsed facts -> one Cedar decision per
// statement. Pure apart from the (bounded) decision cache; the relay decides
// what to do with a verdict.
import type { Principal } from "../../auth/principal.js";
import type { PolicyEngine } from "../../policy/engine.js";
import type { ActionName, DecisionResult, PolicyRequest, StatementAction } from "../../policy/types.js";
import { analyzeSync } from "./analysis/analyzer.js";
import { SqlAnalysisError, type StatementFacts, type StatementKind } from "./analysis/types.js";

export interface GuardScope {
  principal: Principal;
  connection: { name: string; type: string; labels: Record<string, string> };
  database: string;
  clientAddr: string | null;
}

export interface Verdict {
  decision: "allow" | "deny" | "review";
  /** A review statement a reviewer approved: forwarded, recorded with decision "review". */
  approved?: boolean;
  /** The statement's own text (the input when it could not be parsed). */
  text: string;
  facts: StatementFacts | null;
  action: ActionName;
  /** "<policy id>: <reason>" lines, or why the engine denied. */
  reasons: string[];
  policyIds: string[];
  /** Set when the statement could not be parsed (always denied). */
  parseError?: string;
}

/** What each parsed kind is checked as; wrappers act as what they wrap. */
export function actionFor(f: Pick<StatementFacts, "kind" | "innerKind">): StatementAction {
  const map = (k: StatementKind): StatementAction => {
    switch (k) {
      case "select": case "insert": case "update": case "delete": case "merge":
      case "copy": case "call": case "ddl": case "dcl": case "tcl":
        return k;
      case "truncate":
        return "delete"; // an unbounded delete: hasWhere is false, so the no-unfiltered-write rules apply
      case "explain":
        return "explain";
      default:
        return "utility"; // do, execute, config, utility (and prepare without a body)
    }
  };
  if ((f.kind === "prepare" || f.kind === "explain") && f.innerKind) {
    const inner = map(f.innerKind);
    // Plain EXPLAIN of a read is an "explain"; PREPARE and EXPLAIN of a write are checked as the write
    // (EXPLAIN ANALYZE runs it; a PREPAREd write would otherwise be approved without looking inside).
    if (f.kind === "explain" && inner === "select") return "explain";
    return inner;
  }
  return map(f.kind);
}

const CACHE_MAX = 20_000;
const caches = new WeakMap<PolicyEngine, Map<string, DecisionResult>>();

/** Cedar evaluation is ~5k/s; repeated statements (the norm) are answered from here. */
function decideCached(engine: PolicyEngine, req: PolicyRequest, hourKey: string): DecisionResult {
  let cache = caches.get(engine);
  if (!cache) caches.set(engine, (cache = new Map()));
  const key = JSON.stringify([req.principal, req.action, req.resource, req.context?.clientAddr, req.context?.statement, hourKey]);
  const hit = cache.get(key);
  if (hit) return hit;
  const res = engine.decide(req);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, res);
  return res;
}

/**
 * Checks every statement of `sql`. A parse failure yields one denied verdict
 * covering the whole text (we cannot know where statements begin).
 */
export function checkSql(engine: PolicyEngine, scope: GuardScope, sql: string, now = new Date()): Verdict[] {
  let facts: readonly StatementFacts[];
  try {
    facts = analyzeSync(sql);
  } catch (err) {
    const msg = err instanceof SqlAnalysisError ? err.message : String((err as Error)?.message ?? err);
    return [{ decision: "deny", text: sql, facts: null, action: "utility", reasons: [`could not parse the statement: ${msg}`], policyIds: [], parseError: msg }];
  }
  return facts.map((f) => checkFacts(engine, scope, f, now));
}

/** How a token's identity appears to Cedar: User or ServiceAccount, with its groups as parents. */
export function policyPrincipal(p: Principal): PolicyRequest["principal"] {
  return { type: p.kind === "service" ? "ServiceAccount" : "User", id: p.subject, groups: p.groups };
}

/** Relations a statement reads or writes, "schema.table" when qualified, each once. */
export function objectNames(f: Pick<StatementFacts, "reads" | "writes">): string[] {
  return [...new Set([...f.reads, ...f.writes].map((t) => (t.schema ? `${t.schema}.${t.name}` : t.name)))];
}

export function checkFacts(engine: PolicyEngine, scope: GuardScope, f: StatementFacts, now = new Date()): Verdict {
  const action = actionFor(f);
  const principal = policyPrincipal(scope.principal);
  const statement = { kind: f.innerKind ?? f.kind, hasWhere: f.hasWhere ?? true, risky: [...f.risky], tables: objectNames(f) };
  // hasWhere is undefined for statements with no UPDATE/DELETE: nothing to bound, so not a violation.
  if (f.kind === "truncate") statement.hasWhere = false;
  const time = { hour: now.getUTCHours(), weekday: now.getUTCDay() };
  const hourKey = `${time.hour}/${time.weekday}`;
  const base = {
    principal,
    action,
    context: { time, statement, ...(scope.clientAddr ? { clientAddr: scope.clientAddr } : {}) },
  };
  const conn = { connection: scope.connection.name, connectionType: scope.connection.type, labels: scope.connection.labels, database: scope.database };
  // One request per table touched (resource = that table), so table-level policies hold for
  // every table; statements touching no table are checked against the database.
  const targets = [...new Map([...f.reads, ...f.writes].map((t) => [`${t.schema ?? "public"}.${t.name}`, t])).values()];
  const resources: PolicyRequest["resource"][] = targets.length
    ? targets.slice(0, 32).map((t) => ({ ...conn, schema: t.schema ?? "public", table: t.name }))
    : [conn];
  // A data-modifying CTE makes a SELECT a write too: check it as every kind of change it contains.
  const actions = [action, ...(f.dml ?? []).filter((a) => a !== action && action !== "ddl")];
  let verdict: Verdict | null = null;
  for (const act of actions) {
    for (const resource of resources) {
      const r = decideCached(engine, { ...base, action: act, resource }, hourKey);
      const v: Verdict = { decision: r.decision, text: f.text, facts: f, action: act, reasons: [...r.reasons, ...r.errors], policyIds: r.policyIds };
      if (r.decision === "deny") return v;
      if (!verdict || (r.decision === "review" && verdict.decision === "allow")) verdict = v;
    }
  }
  if (targets.length > 32) {
    return { decision: "deny", text: f.text, facts: f, action, reasons: ["statement touches more than 32 tables (denied: too many to check)"], policyIds: [] };
  }
  return verdict!;
}

/** The message a client sees for a denied statement: names the rule and the reason. */
export function denialMessage(v: Verdict): { sqlstate: string; message: string; detail?: string; hint?: string } {
  if (v.parseError !== undefined) {
    return { sqlstate: "42601", message: `airlock: statement denied: it could not be parsed (${v.parseError})`, hint: "Airlock only forwards statements it can parse." };
  }
  // Reasons read "<policy id>: <reason>" when a policy decided, else why the engine denied.
  const why = v.reasons.length ? v.reasons.join("; ") : "no policy permits it";
  const detail = `${v.action} statement: ${v.facts?.command ?? "?"}`;
  if (v.decision === "review") {
    return { sqlstate: "42501", message: `airlock: statement requires approval (policy ${why})`, detail, hint: "This request cannot be held for review here (reviews are not enabled on this gateway, or it is a fast-path call or a Bind of a statement prepared with SQL PREPARE); ask a reviewer or an administrator." };
  }
  const by = v.policyIds.length ? `by policy ${why}` : `(${why})`;
  return { sqlstate: "42501", message: `airlock: statement denied ${by}`, detail };
}
