// The auditors' search filters (audit/search.ts runs them): what can be asked
// for, parsing the query-string form, and who may see what.
import { AirlockError } from "@airlock/shared";
import { hasRole, type Principal } from "../auth/principal.js";

export const OUTCOMES = ["active", "ok", "failed", "denied"] as const;
/** Statement-level decision filters: deny, masked values in the result, held for review. */
export const DECISIONS = ["denied", "masked", "reviewed"] as const;

export interface AuditFilter {
  /** Subject (the identity every record shows). */
  user?: string;
  /** One of the groups the identity had when the session started. */
  group?: string;
  connection?: string;
  /** Agent name. */
  agent?: string;
  /** Inclusive lower bound on started_at (of the session, or of the statement when searching statements). */
  from?: Date;
  /** Exclusive upper bound on started_at. */
  to?: Date;
  outcome?: (typeof OUTCOMES)[number];
  decision?: (typeof DECISIONS)[number];
  /** Full text over statement texts, web search syntax: words, "a phrase", OR, -word. */
  q?: string;
}

/** Longest accepted full-text query; a search box, not a document. */
export const MAX_QUERY_LENGTH = 1000;

/**
 * What a caller may search: auditors (and admins) everything, anyone else only
 * their own records, whatever `user` they asked for.
 */
export function visibleFilter(p: Principal, f: AuditFilter): AuditFilter {
  return hasRole(p, "auditor") ? f : { ...f, user: p.subject };
}

/** Turns the query-string form (ISO times, strings) into a filter; INVALID_ARGUMENT on nonsense. */
export function parseFilter(q: { user?: string; subject?: string; group?: string; connection?: string; agent?: string; from?: string; to?: string; before?: string; outcome?: string; decision?: string; q?: string }): AuditFilter {
  const f: AuditFilter = {};
  const user = q.user ?? q.subject;
  if (user !== undefined) f.user = user;
  if (q.group !== undefined) f.group = q.group;
  if (q.connection !== undefined) f.connection = q.connection;
  if (q.agent !== undefined) f.agent = q.agent;
  if (q.from !== undefined) f.from = time("from", q.from);
  // `before` is the older name of `to` (GET /sessions).
  const to = q.to ?? q.before;
  if (to !== undefined) f.to = time("to", to);
  if (f.from && f.to && f.from >= f.to) throw new AirlockError("INVALID_ARGUMENT", "`from` must be before `to`");
  if (q.outcome !== undefined) {
    if (!(OUTCOMES as readonly string[]).includes(q.outcome)) throw new AirlockError("INVALID_ARGUMENT", `outcome must be one of: ${OUTCOMES.join(", ")}`);
    f.outcome = q.outcome as AuditFilter["outcome"];
  }
  if (q.decision !== undefined) {
    if (!(DECISIONS as readonly string[]).includes(q.decision)) throw new AirlockError("INVALID_ARGUMENT", `decision must be one of: ${DECISIONS.join(", ")}`);
    f.decision = q.decision as AuditFilter["decision"];
  }
  if (q.q !== undefined && q.q.trim() !== "") {
    if (q.q.length > MAX_QUERY_LENGTH) throw new AirlockError("INVALID_ARGUMENT", `the text query is longer than ${MAX_QUERY_LENGTH} characters`);
    f.q = q.q;
  }
  return f;
}

function time(name: string, v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new AirlockError("INVALID_ARGUMENT", `${name} is not a date-time: ${JSON.stringify(v)}`);
  return d;
}
