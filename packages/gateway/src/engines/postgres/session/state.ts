// Shared state of one relayed Postgres session, used by the client-side and
// server-side handlers. Only the relay mutates it, one message at a time.
import type { Logger } from "@airlock/shared";
import type { ColumnMasker, Masker, MaskingRules } from "../../../masking/masker.js";
import type { PolicyEngine } from "../../../policy/engine.js";
import type { StatementEnd, StatementStart } from "../../../sessions/statements.js";
import { objectNames, type Verdict, type GuardScope } from "../guard.js";
import { buildErrorResponse, writeBackend, type FieldDescription, type TransactionStatus } from "../protocol/index.js";
import type { Expect, Run } from "./pending.js";
import type { CatalogCache } from "../catalog.js";
import type { ReviewService } from "../../../reviews/service.js";
import type { PortalReview } from "./hold-extended.js";

export interface StatementSink {
  record(rows: StatementStart[], opts?: { bestEffort?: boolean }): Promise<string[]>;
  complete(id: string, end: StatementEnd, sessionId?: string): void;
}

export interface PolicySource {
  current(): { engine: PolicyEngine; masker: Masker; masking?: MaskingRules };
}

export interface PreparedInfo {
  /** Verdict of the (single) statement; null for an empty query. */
  verdict: Verdict | null;
  text: string;
  /** Result columns from a Describe of the statement (formats unknown until Bind). */
  fields: FieldDescription[] | null;
  /** Lives on the server as the unnamed statement (unnamed.ts); its Parse's types, to parse it again. */
  unnamed?: { paramTypes: number[] };
}

export interface PortalInfo {
  stmt: PreparedInfo | null;
  resultFormats: number[];
  fields: FieldDescription[] | null;
  /** The client asked for the portal's description itself (its answer may still be on the way). */
  described: boolean;
  /** The execution in progress when the portal was suspended (Execute with a row limit). */
  run: Run | null;
  /** Lives on the server as the unnamed portal (unnamed.ts). */
  unnamed?: boolean;
  /** Its statement needs a review: the bound parameters, and the approval once given (hold-extended.ts). */
  review?: PortalReview | null;
}

/** Which of the client's statements and portals the server's unnamed ones hold (unnamed.ts). */
export interface UnnamedOnServer {
  stmt: PreparedInfo | null;
  /** The Sync count when `stmt` was parsed: a Parse in an earlier cycle may have been skipped. */
  stmtCycle: number;
  portal: PortalInfo | null;
  /** Syncs forwarded so far. */
  cycle: number;
  /** A statement needing a review was put there: from then on the tracking is enforced. */
  used: boolean;
}

export class SessionState {
  readonly pending: Expect[] = [];
  readonly statements = new Map<string, PreparedInfo>();
  readonly portals = new Map<string, PortalInfo>();
  readonly unnamed: UnnamedOnServer = { stmt: null, stmtCycle: 0, portal: null, cycle: 0, used: false };
  status: TransactionStatus;
  seq = 0;
  /** Resolves "schema.table.column" names when masking rules need them (null: not available). */
  catalog: CatalogCache | null = null;
  /** Reviews for statements a policy holds; null refuses them instead. */
  reviews: ReviewService | null = null;
  /**
   * hold: a statement needing review waits for the decision (psql, drivers).
   * async: it fails at once with "review required: ID" and the review stays
   * open (airlock exec, the exec API: scripts and agents ask without blocking).
   */
  reviewMode: "hold" | "async" = "hold";
  /** Aborted when the session ends: a statement held for review stops waiting (and its review is cancelled). */
  readonly closed = new AbortController();
  /** While set, server output is dropped until ReadyForQuery (a refused result is in progress). */
  refusing = false;
  /** Messages per type the gateway injected or rewrote, for logs and tests. */
  denied = 0;
  masked = 0;

  constructor(
    readonly scope: GuardScope,
    readonly policy: PolicySource,
    readonly sink: StatementSink,
    readonly sessionId: string,
    readonly log: Logger,
    status: TransactionStatus,
  ) {
    this.status = status;
  }

  private contentCache: { masker: Masker; content: ColumnMasker | null } | null = null;

  /** Content-only masker (no column rules) for free text: messages, COPY rows. Cached per policy version. */
  content(): ColumnMasker | null {
    const masker = this.policy.current().masker;
    if (this.contentCache?.masker !== masker) this.contentCache = { masker, content: masker.forColumn("", this.groups) };
    return this.contentCache.content;
  }

  /**
   * Before a statement is forwarded: look up the tables it reads if a dotted column rule
   * ("schema.table.column") is active, so result columns can be named. null = nothing to wait for.
   */
  prepareColumns(verdicts: readonly Verdict[]): Promise<void> | null {
    if (!this.catalog) return null;
    const rules = this.policy.current().masking?.columns ?? [];
    if (!rules.some((r) => r.match.includes("."))) return null;
    const tables = verdicts.flatMap((v) => v.facts?.reads ?? []);
    return tables.length ? this.catalog.prepare(tables) : null;
  }

  /** True when a column rule may apply to this principal (then COPY output needs its column names). */
  columnRulesApply(): boolean {
    const m = this.policy.current().masking;
    const mine = (gs: readonly string[] | undefined) => (gs ?? []).some((g) => this.groups.includes(g));
    return !mine(m?.exemptGroups) && (m?.columns ?? []).some((c) => !mine(c.exemptGroups));
  }

  /** How result columns are named for column rules. */
  readonly columnName = (f: FieldDescription): string => (this.catalog ? this.catalog.name(f) : f.name);

  get groups(): readonly string[] {
    return this.scope.principal.groups;
  }

  /**
   * Set by an extended-protocol error when the client's Sync has not been forwarded yet: the
   * server ignores every message until that Sync (postgres.c, ignore_till_sync), so nothing
   * sent meanwhile will be answered.
   */
  skipping = false;

  /** Registers the answer expected for a message just queued for the server. */
  expect(e: Expect): void {
    if (e.t === "sync") this.skipping = false;
    else if (this.skipping) return this.discard(e);
    this.pending.push(e);
  }

  /** Drops expectations the server will never answer because it skips to the next Sync after an error. */
  dropUntilSync(): void {
    while (this.pending.length > 0 && this.pending[0]!.t !== "sync") this.discard(this.pending.shift()!);
    if (this.pending.length === 0) this.skipping = true;
  }

  private discard(e: Expect): void {
    if (e.t === "execute" || e.t === "fcall") this.finish(e.run, { status: "skipped" });
    else if (e.t === "query") for (const r of e.runs) this.finish(r, { status: "skipped" });
  }

  finish(run: Run | null, end: Omit<StatementEnd, "durationMs">): void {
    if (!run || run.done) return;
    run.done = true;
    this.sink.complete(run.id, { ...end, durationMs: (performance.now() - run.started), masked: run.masked }, this.sessionId);
  }
}

/**
 * A statement text that fails on every PostgreSQL at parse analysis (the literal is
 * coerced to int4 then), so it takes the denied statement's place in the stream: the
 * server reports an error at the same position, skips to Sync, aborts the transaction
 * block exactly as a real error would, and its own log says why. The error itself is
 * replaced by ours before the client sees it.
 */
export const DENIED_SUBSTITUTE = "SELECT 'airlock: statement denied by policy'::pg_catalog.int4";

/**
 * The statement a denied Bind is redirected to, so that the server fails it. A client could
 * create one by this name itself; then its own (already checked) statement runs in place of
 * the error, which gains it nothing: the denial is recorded either way.
 */
export const DENIED_STATEMENT = "airlock: statement denied by policy";

export function errorFrame(sqlstate: string, message: string, detail?: string, hint?: string): Buffer {
  return writeBackend(buildErrorResponse("ERROR", sqlstate, message, detail, hint));
}

export function runOf(id: string): Run {
  return { id, started: performance.now(), rows: 0, masked: 0, done: false };
}

export function startOf(sessionId: string, seq: number, v: Verdict, status: "pending" | "denied" | "skipped"): StatementStart {
  const f = v.facts;
  const objects = f ? objectNames(f) : [];
  return {
    sessionId,
    seq,
    text: v.text,
    kind: f ? f.kind : "unparsable",
    command: f?.command ?? null,
    objects,
    decision: v.decision,
    rule: v.policyIds.length ? v.policyIds.join(",") : null,
    reason: v.decision === "allow" ? null : v.reasons.join("; ") || null,
    status,
  };
}
