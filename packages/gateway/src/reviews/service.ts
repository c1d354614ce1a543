import { AirlockError, type Logger } from "@airlock/shared";
import { hasRole, type Principal } from "../auth/principal.js";
import type { Store } from "../store/index.js";
import { toView, type ReviewRow, type ReviewView } from "./view.js";
import { consumeApproval, statementHash, type ApprovalUse } from "./approvals.js";
import { activeGrants, decidedAmong, endedGrants } from "./grants.js";
import { ReviewListener } from "./listener.js";
import { ReviewWaiters } from "./waiters.js";
import type { Prisma } from "../store/generated/client.js";
import type { ReviewRequirements } from "./requirements.js";

/** NOTIFY channel for decided reviews (payload: the review id). */
const CHANNEL = "airlock_reviews";

export type { ReviewView } from "./view.js";

/** Where review events go (webhooks, Slack); must not block or throw. */
export interface ReviewEvents {
  notify(type: "review.created" | "review.approved" | "review.rejected" | "review.expired" | "review.cancelled", r: ReviewView): void;
}

export interface ApproveOptions {
  reason?: string;
  /** once (default): this statement, once; session: in the requester's session; identity: for the requester anywhere. */
  scope?: "once" | "session" | "identity";
  /** How many runs the approval covers (statement reviews; default 1). */
  uses?: number;
  /** How long the approval stays usable (default: 10 min for statements). */
  windowSeconds?: number;
}

const DEFAULT_WINDOW_SECONDS = 600;
/** Pending reviews one identity may have open at once: a loop of async requests cannot fill the store or the reviewers' queue. */
const MAX_PENDING_PER_REQUESTER = 1000;
/** Statement text a review may carry (reviewers read it; webhooks send it). */
export const MAX_REVIEW_STATEMENT_BYTES = 256 * 1024;
/** Narrowest first. */
const SCOPES = ["once", "session", "identity"] as const;
const MAX_USES = 1000;

export { statementHash };

/**
 * Reviews: a request for a human decision on one statement (or an access
 * grant). Rules: only members of the reviewer groups decide, never the
 * requester; each reviewer decides once; N distinct approvals (or one per
 * group) approve, one rejection rejects; a pending review expires. Decisions
 * take a row lock, so two reviewers deciding at once cannot both close it.
 * Waiters in this process are woken at once; others re-read the store.
 */
export class ReviewService {
  private readonly waiters: ReviewWaiters;
  private listener: ReviewListener | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly events: ReviewEvents | null = null,
    /** How often waiters re-read the store; with LISTEN/NOTIFY this is only the safety net. */
    pollMs = 1000,
  ) {
    this.waiters = new ReviewWaiters((id) => this.get(id), (ids) => decidedAmong(store, ids), log, pollMs);
  }

  /**
   * Decisions taken by another gateway process on the same PostgreSQL store
   * reach this one at once: every decision is announced with NOTIFY, and this
   * process LISTENs on a connection of its own (the shared poll stays as the
   * safety net for a lost connection).
   */
  async listen(databaseUrl: string): Promise<void> {
    this.listener = new ReviewListener(databaseUrl, (id) => this.wakeFromStore(id), this.log);
    await this.listener.start();
  }

  async close(): Promise<void> {
    this.waiters.close();
    await this.listener?.stop();
  }

  private async checkQuota(requester: string): Promise<void> {
    const pending = await this.store.prisma.review.count({ where: { requester, status: "pending" } });
    if (pending >= MAX_PENDING_PER_REQUESTER) throw new AirlockError("RATE_LIMITED", `${requester} already has ${pending} reviews waiting; wait for decisions or cancel some (airlock reviews list --mine)`);
  }

  async createStatementReview(i: { principal: Principal; connectionName: string; database?: string | null; sessionId?: string | null; statement: string; params?: unknown[] | null; rule?: string | null; ruleReason?: string | null; reason?: string | null; requirements: ReviewRequirements }): Promise<ReviewView> {
    if (Buffer.byteLength(i.statement) > MAX_REVIEW_STATEMENT_BYTES) throw new AirlockError("INVALID_ARGUMENT", `a statement over ${MAX_REVIEW_STATEMENT_BYTES / 1024} KiB cannot be sent to review`);
    return this.create("statement", i, {
      database: i.database ?? null,
      sessionId: i.sessionId ?? null,
      statement: i.statement,
      params: (i.params ?? undefined) as never,
      statementHash: statementHash(i.statement, i.params),
      rule: i.rule ?? null,
      ruleReason: i.ruleReason ?? null,
      reason: i.reason ?? null,
    });
  }

  /**
   * A request for temporary access: once approved, `role` (an Airlock role, or
   * a group policies see) is added to the requester's sessions on that
   * connection until the grant's window ends or it is revoked.
   */
  async createAccessRequest(i: { principal: Principal; connectionName: string; role: string; durationSeconds: number; reason: string; requirements: ReviewRequirements }): Promise<ReviewView> {
    if (!/^[A-Za-z0-9@._:/-]{1,128}$/.test(i.role)) throw new AirlockError("INVALID_ARGUMENT", `role ${JSON.stringify(i.role)}: a role or group name`);
    // A grant is about one connection: the gateway-wide roles (admin, auditor, reviewer) are never granted this way.
    if (i.role === "admin" || i.role === "auditor" || i.role === "reviewer") throw new AirlockError("INVALID_ARGUMENT", `${i.role} is a gateway-wide role and cannot be requested for a connection; ask for "user" or a group policies know`);
    if (!Number.isInteger(i.durationSeconds) || i.durationSeconds < 60 || i.durationSeconds > 7 * 86400) throw new AirlockError("INVALID_ARGUMENT", "access can be requested for 1 minute to 7 days");
    if (!i.reason.trim()) throw new AirlockError("INVALID_ARGUMENT", "say why you need the access (--reason)");
    return this.create("access", i, { role: i.role, durationSeconds: i.durationSeconds, reason: i.reason });
  }

  /** Both kinds: the requester's quota, the common fields, the notification. */
  private async create(kind: "statement" | "access", i: { principal: Principal; connectionName: string; requirements: ReviewRequirements }, fields: Partial<Prisma.ReviewUncheckedCreateInput>): Promise<ReviewView> {
    await this.checkQuota(i.principal.subject);
    const row = await this.store.prisma.review.create({
      data: {
        kind,
        requester: i.principal.subject,
        requesterKind: i.principal.kind,
        connectionName: i.connectionName,
        reviewerGroups: i.requirements.reviewerGroups,
        approvalsNeeded: i.requirements.approvalsNeeded,
        allGroups: i.requirements.allGroups,
        expiresAt: new Date(Date.now() + i.requirements.timeoutSeconds * 1000),
        ...fields,
      },
      include: { decisions: true },
    });
    const v = toView(row);
    this.events?.notify("review.created", v);
    return v;
  }

  /** Approved, unexpired access grants of a subject on a connection (grants.ts). */
  activeGrants(subject: string, connectionName: string): Promise<Array<{ id: string; role: string }>> {
    return activeGrants(this.store, subject, connectionName);
  }

  /** Of these grant ids, those no longer in force (revoked or past their window). */
  endedGrants(ids: string[]): Promise<string[]> {
    return endedGrants(this.store, ids);
  }

  /** Ends an approved access grant before its time (a reviewer or an admin). */
  async revokeGrant(id: string, by: Principal, reason: string): Promise<ReviewView> {
    const row = await this.row(id);
    if (row.kind !== "access") throw new AirlockError("INVALID_ARGUMENT", `review ${id} is not an access request`);
    if (!hasRole(by, "admin") && this.eligibility(row, by) !== null) throw new AirlockError("REVIEW_NOT_ELIGIBLE", `${by.subject} may not revoke grant ${id}`);
    const r = await this.store.prisma.review.updateMany({ where: { id, status: "approved" }, data: { status: "revoked", validUntil: new Date(), decidedReason: `revoked by ${by.subject}: ${reason}` } });
    if (r.count !== 1) throw new AirlockError("REVIEW_CLOSED", `grant ${id} is ${row.status}, not in force`);
    return this.get(id);
  }

  async get(id: string): Promise<ReviewView> {
    const row = await this.row(id);
    return toView(row);
  }

  private async row(id: string): Promise<ReviewRow> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new AirlockError("NOT_FOUND", `no review ${id}`);
    const row = await this.store.prisma.review.findUnique({ where: { id }, include: { decisions: { orderBy: { at: "asc" } } } });
    if (!row) throw new AirlockError("NOT_FOUND", `no review ${id}`);
    if (row.status === "pending" && row.expiresAt.getTime() <= Date.now()) {
      // Expiry is decided by the store's clock: run it once and read again (no loop if the clocks disagree).
      await this.expireDue();
      return (await this.store.prisma.review.findUnique({ where: { id }, include: { decisions: { orderBy: { at: "asc" } } } }))!;
    }
    return row;
  }

  async list(f: { status?: string; requester?: string; limit?: number } = {}): Promise<ReviewView[]> {
    const rows = await this.store.prisma.review.findMany({
      where: { ...(f.status ? { status: f.status } : {}), ...(f.requester ? { requester: f.requester } : {}) },
      include: { decisions: { orderBy: { at: "asc" } } },
      orderBy: { createdAt: "desc" },
      take: Math.min(f.limit ?? 100, 500),
    });
    return rows.map(toView);
  }

  /** Whether a principal may decide a review (and why not). */
  eligibility(r: Pick<ReviewView, "requester" | "reviewerGroups">, p: Principal): string | null {
    if (p.subject === r.requester) return "self";
    if (!hasRole(p, "reviewer")) return `${p.subject} does not hold the reviewer role`;
    if (!p.groups.some((g) => r.reviewerGroups.includes(g))) return `${p.subject} is in none of the reviewer groups (${r.reviewerGroups.join(", ")})`;
    return null;
  }

  approve(id: string, reviewer: Principal, o: ApproveOptions = {}): Promise<ReviewView> {
    return this.decide(id, reviewer, "approve", o);
  }

  reject(id: string, reviewer: Principal, reason?: string): Promise<ReviewView> {
    return this.decide(id, reviewer, "reject", { reason });
  }

  private async decide(id: string, reviewer: Principal, decision: "approve" | "reject", o: ApproveOptions): Promise<ReviewView> {
    const uses = o.uses ?? 1;
    if (!Number.isInteger(uses) || uses < 1 || uses > MAX_USES) throw new AirlockError("INVALID_ARGUMENT", `uses must be 1-${MAX_USES}`);
    const v = await this.store.prisma.$transaction(async (tx) => {
      // The row lock serialises decisions on one review across gateway processes.
      await tx.$queryRaw`SELECT id FROM reviews WHERE id = ${id}::uuid FOR UPDATE`;
      const row = await tx.review.findUnique({ where: { id }, include: { decisions: true } });
      if (!row) throw new AirlockError("NOT_FOUND", `no review ${id}`);
      if (row.status === "pending" && row.expiresAt.getTime() <= Date.now()) throw new AirlockError("REVIEW_CLOSED", `review ${id} expired at ${row.expiresAt.toISOString()}`);
      if (row.status !== "pending") throw new AirlockError("REVIEW_CLOSED", `review ${id} is already ${row.status}`);
      const why = this.eligibility(row, reviewer);
      if (why === "self") throw new AirlockError("REVIEW_SELF_APPROVAL", `${reviewer.subject} requested review ${id} and cannot decide it`);
      if (why) throw new AirlockError("REVIEW_NOT_ELIGIBLE", why);
      if (row.decisions.some((d) => d.reviewer === reviewer.subject)) throw new AirlockError("REVIEW_ALREADY_DECIDED", `${reviewer.subject} already decided review ${id}`);
      const groups = reviewer.groups.filter((g) => row.reviewerGroups.includes(g));
      const mine = decision === "approve" ? { scope: o.scope ?? "once", uses, windowSeconds: o.windowSeconds ?? null } : { scope: null, uses: null, windowSeconds: null };
      await tx.reviewDecision.create({ data: { reviewId: id, reviewer: reviewer.subject, groups, decision, reason: o.reason ?? null, ...mine } });
      const approvals = [...row.decisions.filter((d) => d.decision === "approve"), ...(decision === "approve" ? [{ groups, ...mine }] : [])];
      const done = decision === "reject" || (row.allGroups ? row.reviewerGroups.every((g) => approvals.some((a) => a.groups.includes(g))) : approvals.length >= row.approvalsNeeded);
      if (done) {
        const now = Date.now();
        // Several approvers: the narrowest of what each allowed applies (scope, uses, window); an access
        // grant never outlasts what was asked for.
        const asked = row.kind === "access" ? (row.durationSeconds ?? 3600) : DEFAULT_WINDOW_SECONDS;
        const windows = approvals.map((a) => ("windowSeconds" in a && a.windowSeconds) || asked);
        const window = row.kind === "access" ? Math.min(asked, ...windows) : Math.min(...windows);
        const scopes = approvals.map((a) => ("scope" in a && a.scope) || "once");
        const scope = SCOPES.find((sc) => scopes.includes(sc)) ?? "once";
        const leastUses = Math.min(...approvals.map((a) => ("uses" in a && a.uses) || 1));
        await tx.review.update({
          where: { id },
          data:
            decision === "reject"
              ? { status: "rejected", decidedAt: new Date(now), decidedReason: o.reason ?? null }
              : { status: "approved", decidedAt: new Date(now), decidedReason: o.reason ?? null, scope, usesLeft: leastUses, validUntil: new Date(now + window * 1000) },
        });
      }
      if (done && this.store.kind === "postgres") await tx.$executeRaw`SELECT pg_notify(${CHANNEL}, ${id})`;
      return toView((await tx.review.findUnique({ where: { id }, include: { decisions: { orderBy: { at: "asc" } } } }))!);
    });
    if (v.status !== "pending") this.settled(v);
    return v;
  }

  /** The requester (or the gateway, when the client went away) withdraws a pending review. */
  async cancel(id: string, by: Principal | null, reason: string): Promise<ReviewView> {
    const row = await this.row(id);
    if (by && by.subject !== row.requester && !hasRole(by, "admin")) throw new AirlockError("PERMISSION_DENIED", "only the requester or an admin can cancel a review");
    const r = await this.store.prisma.review.updateMany({ where: { id, status: "pending" }, data: { status: "cancelled", decidedAt: new Date(), decidedReason: reason } });
    if (r.count !== 1) throw new AirlockError("REVIEW_CLOSED", `review ${id} is already ${row.status}`);
    await this.announce([id]);
    const v = await this.get(id);
    this.settled(v);
    return v;
  }

  /** Marks overdue pending reviews expired (called on reads and by the gateway's timer). */
  async expireDue(): Promise<number> {
    // RETURNING: with several gateway processes expiring at once, each review is announced by exactly one.
    const due = (await this.store.sql(
      `UPDATE reviews SET status = 'expired', decided_at = (now() AT TIME ZONE 'UTC'), decided_reason = 'nobody decided in time'
        WHERE id IN (SELECT id FROM reviews WHERE status = 'pending' AND expires_at <= (now() AT TIME ZONE 'UTC') LIMIT 1000)
          AND status = 'pending'
        RETURNING id`,
      [],
    )) as Array<{ id: string }>;
    if (!due.length) return 0;
    await this.announce(due.map((d) => d.id));
    for (const { id } of due) this.settled(await this.get(id));
    return due.length;
  }

  /** NOTIFY other gateway processes (PostgreSQL store) that these reviews were decided. */
  private async announce(ids: string[]): Promise<void> {
    if (this.store.kind !== "postgres") return;
    for (const id of ids) await this.store.sql("SELECT pg_notify($1, $2)", [CHANNEL, id]).catch((err: Error) => this.log.warn({ err: err.message }, "could not announce a review decision"));
  }

  /**
   * Resolves when the review is no longer pending: at once for decisions made
   * in this process or announced by another (LISTEN/NOTIFY), else at the next
   * shared poll (waiters.ts). The signal (client went away) rejects it.
   */
  async waitForDecision(id: string, signal?: AbortSignal): Promise<ReviewView> {
    const first = await this.get(id);
    if (first.status !== "pending") return first;
    return this.waiters.wait(id, signal);
  }

  /** Re-reads a review and wakes its waiters here if it was decided (announced by another process). */
  private wakeFromStore(id: string): Promise<void> {
    return this.waiters.wakeFromStore(id);
  }

  private settled(v: ReviewView): void {
    this.waiters.wake(v);
    const type = v.status === "approved" ? "review.approved" : v.status === "rejected" ? "review.rejected" : v.status === "expired" ? "review.expired" : "review.cancelled";
    this.events?.notify(type, v);
  }

  /** Uses an approval for this exact statement, if one covers it (approvals.ts). */
  consumeApproval(i: ApprovalUse): Promise<string | null> {
    return consumeApproval(this.store, i);
  }
}
