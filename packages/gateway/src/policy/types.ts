// Public types of the policy engine. Kept separate so callers (front door,
// CLI) can import them without pulling in the Cedar WASM module.

export const STATEMENT_ACTIONS = [
  "select", "insert", "update", "delete", "merge", "ddl",
  "dcl", "tcl", "copy", "utility", "call", "explain",
] as const;
export type StatementAction = (typeof STATEMENT_ACTIONS)[number];
export type ActionName = "connect" | StatementAction;
export const ACTIONS: readonly ActionName[] = ["connect", ...STATEMENT_ACTIONS];

export type PrincipalType = "User" | "ServiceAccount";

export interface StatementFacts {
  /** Statement kind as classified by the parser; defaults to the action. */
  kind?: string;
  /** Defaults to false so a caller that forgets the fact fails closed. */
  hasWhere?: boolean;
  risky?: string[];
  /** Table names as written, "schema.table" when qualified. */
  tables?: string[];
}

export interface PolicyRequest {
  principal: { type: PrincipalType; id: string; groups?: string[] };
  action: ActionName;
  /**
   * The deepest level given becomes the Cedar resource; intermediate levels
   * are required (table needs schema and database) so ids stay unambiguous.
   */
  resource: {
    connection: string;
    connectionType?: string;
    /** {env: "prod"} or ["env=prod"]; exposed as Set<String> of "k=v". */
    labels?: Record<string, string> | string[];
    database?: string;
    schema?: string;
    table?: string;
  };
  context?: {
    /** Defaults to the connection's env label, else "". */
    env?: string;
    /** {hour, weekday (0=Sunday)} or an ISO timestamp; default now (UTC). */
    time?: { hour: number; weekday: number } | string;
    clientAddr?: string;
    statement?: StatementFacts;
  };
}

export type Decision = "allow" | "deny" | "review";

export interface DecisionResult {
  decision: Decision;
  /** Human-readable: "<policy id>: <@reason>" or an engine explanation. */
  reasons: string[];
  /** Ids of the policies that determined the decision. */
  policyIds: string[];
  /** Evaluation/request errors; non-empty always means deny (fail closed). */
  errors: string[];
}

export interface PolicyError {
  file: string;
  line?: number;
  column?: number;
  policyId?: string;
  message: string;
}

export function formatPolicyError(e: PolicyError): string {
  const pos = e.line === undefined ? "" : `:${e.line}:${e.column ?? 1}`;
  const id = e.policyId ? ` [${e.policyId}]` : "";
  return `${e.file}${pos}:${id} ${e.message}`;
}

export interface PolicyMeta {
  id: string;
  file: string;
  line: number;
  effect: "permit" | "forbid";
  /** True when annotated @effect("review"). */
  review: boolean;
  reason?: string;
  annotations: Record<string, string>;
}
