import { randomUUID } from "node:crypto";
import { AirlockError, type Logger } from "@airlock/shared";
import type { Store } from "../store/index.js";

export type AuthEventType = "login" | "token" | "refresh" | "logout" | "revoke" | "delete" | "reject";

export interface AuthEventInput {
  type: AuthEventType;
  outcome: "ok" | "denied";
  subject?: string | null;
  provider?: string | null;
  /** Where the credential came in: rest | websocket | postgres | oidc | saml | device | refresh | admin */
  via?: string | null;
  code?: string | null;
  reason?: string | null;
  clientAddr?: string | null;
  tokenId?: string | null;
}

/** Refusals come in floods when someone sprays bad tokens: the queue is bounded and overflow is counted and logged. */
const MAX_QUEUED = 10_000;
const MAX_BATCH = 500;
const COLS = ["id", "at", "type", "outcome", "subject", "provider", "via", "code", "reason", "client_addr", "token_id"] as const;
const TYPES = ["uuid", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "text", "uuid"];
// `at` travels as ISO 8601 UTC; the column is timestamp(3) without zone holding UTC (as Prisma writes it).
const INSERT = `INSERT INTO auth_events (${COLS.join(", ")})
  SELECT u.id, u.at AT TIME ZONE 'UTC', u.type, u.outcome, u.subject, u.provider, u.via, u.code, u.reason, u.client_addr, u.token_id
  FROM unnest(${COLS.map((_, i) => `$${i + 1}::${TYPES[i]}[]`).join(", ")}) AS u(${COLS.join(", ")})`;

/**
 * The audit trail of identity: sign-ins, issued/refreshed/revoked tokens and
 * every refused credential with its reason. Successful sign-ins are awaited
 * (no record, no token); refusals are group-committed in the background so a
 * flood of bad tokens costs one INSERT per batch, not per request.
 */
export class AuthEventLog {
  private queue: unknown[][] = [];
  private writing: Promise<void> | null = null;
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  private row(e: AuthEventInput): unknown[] {
    const cut = (s: string | null | undefined, n: number) => (s == null ? null : s.length > n ? s.slice(0, n) : s);
    return [randomUUID(), new Date().toISOString(), e.type, e.outcome, cut(e.subject, 256), cut(e.provider, 64), cut(e.via, 32), cut(e.code, 64), cut(e.reason, 1000), cut(e.clientAddr, 128), e.tokenId ?? null];
  }

  /** Written before the caller goes on (sign-ins, revocations): throws STORE_UNAVAILABLE when it cannot be. */
  async record(e: AuthEventInput): Promise<void> {
    try {
      await this.write([this.row(e)]);
    } catch (err) {
      throw new AirlockError("STORE_UNAVAILABLE", "cannot record the sign-in event, so it is refused", { cause: err });
    }
  }

  /** Queued (refusals on the request path). */
  note(e: AuthEventInput): void {
    if (this.queue.length >= MAX_QUEUED) {
      if (this.dropped++ % 1000 === 0) this.log.warn({ dropped: this.dropped }, "auth event queue full: refusals not recorded");
      return;
    }
    this.queue.push(this.row(e));
    this.kick();
  }

  private kick(): void {
    if (this.writing || !this.queue.length) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    this.writing = this.write(batch)
      .catch((err: Error) => this.log.error({ err: err.message, events: batch.length }, "could not record auth events"))
      .finally(() => {
        this.writing = null;
        this.kick();
      });
  }

  private async write(rows: unknown[][]): Promise<void> {
    await this.store.sql(INSERT, COLS.map((_, i) => rows.map((r) => r[i])));
  }

  /** Resolves when everything queued so far is written (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.writing || this.queue.length) {
      this.kick();
      await this.writing;
    }
  }

  list(f: { subject?: string; type?: string; outcome?: string; code?: string; limit?: number; since?: Date }) {
    return this.store.prisma.authEvent.findMany({
      where: {
        ...(f.subject ? { subject: f.subject } : {}),
        ...(f.type ? { type: f.type } : {}),
        ...(f.outcome ? { outcome: f.outcome } : {}),
        ...(f.code ? { code: f.code } : {}),
        ...(f.since ? { at: { gte: f.since } } : {}),
      },
      orderBy: { at: "desc" },
      take: Math.min(f.limit ?? 100, 1000),
    });
  }
}
