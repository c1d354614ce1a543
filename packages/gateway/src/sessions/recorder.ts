import { randomUUID } from "node:crypto";
import { AirlockError, type Logger } from "@airlock/shared";
import { sessionEndFields, sessionStartFields } from "@airlock/shared/audit/index";
import type { AuditChains } from "../audit/chains.js";
import { recoverSession } from "../audit/recover.js";
import { cleanOrNull } from "./statements-sql.js";
import type { Store } from "../store/index.js";

/** Waits before retrying a failed end-of-session write. */
const FINISH_RETRIES_MS = [100, 1_000, 5_000];

export type SessionOutcome = "active" | "ok" | "failed" | "denied";

export interface SessionStart {
  subject: string;
  /** user | service: records keep people and machines apart. */
  subjectKind?: string;
  /** How the identity was established (oidc, saml, jwt, api_key, service, admin, …). */
  authMethod?: string | null;
  tokenId: string | null;
  connectionId: string | null;
  agentId: string | null;
  connectionName: string;
  protocol: string;
  clientAddr: string | null;
  /** The identity's groups when the session started (auditors search by group). */
  groups?: readonly string[];
  /** The connection's recording mode: closed (default) or best_effort. */
  recordMode?: "closed" | "best_effort";
}

export interface SessionEnd {
  bytesUp: number;
  bytesDown: number;
  outcome: Exclude<SessionOutcome, "active">;
  error?: AirlockError;
  /** Statements forwarded without a record (best_effort connections). */
  unrecorded?: number;
  /** Byte recording totals (stream sessions). */
  recording?: { chunks: number; bytes: number; storage: string | null };
}

/** A live session: what revocation needs to find and cut it. */
interface Live {
  tokenId: string | null;
  subject?: string;
  /** Access grants the session was opened with: revoking or expiring one cuts it. */
  grants?: string[];
  abort: (err: AirlockError) => void;
}

/**
 * Session records. A record is written before the first byte flows and the
 * caller must not connect if that write fails (fail closed); it is completed
 * exactly once with bytes and outcome.
 */
export class SessionRecorder {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    /** Tamper evidence: without it (some unit tests) sessions carry no hash chain. */
    readonly chains: AuditChains | null = null,
  ) {}

  async start(s: SessionStart): Promise<string> {
    const id = randomUUID();
    const startedAt = new Date();
    const rec = {
      id, subject: s.subject, subjectKind: s.subjectKind ?? "user", authMethod: s.authMethod ?? null, tokenId: s.tokenId, connectionName: s.connectionName,
      protocol: s.protocol, clientAddr: s.clientAddr, startedAt, groups: [...(s.groups ?? [])], recordMode: s.recordMode ?? "closed",
    };
    const link = this.chains?.begin(id, s.subject, sessionStartFields(rec)) ?? null;
    try {
      // Raw SQL: this write is on every connection's critical path, and the ORM's
      // per-query planning cost showed up as serialized setup time under bursts.
      await this.store.prisma.$executeRaw`
        INSERT INTO sessions (id, subject, subject_kind, auth_method, token_id, connection_id, connection_name, protocol, agent_id, client_addr, outcome, started_at, groups, record_mode, chain_hash)
        VALUES (${id}::uuid, ${rec.subject}, ${rec.subjectKind}, ${rec.authMethod}, ${s.tokenId}::uuid, ${s.connectionId}::uuid, ${s.connectionName}, ${s.protocol}, ${s.agentId}::uuid, ${s.clientAddr}, 'active',
                ${startedAt}, ${rec.groups}::text[], ${rec.recordMode}, ${link ? new Uint8Array(link.hash) : null})`;
      return id;
    } catch (err) {
      // No record, no session: its chain is dropped unsigned (nothing of it is in the store).
      this.chains?.drop(id);
      throw new AirlockError("STORE_UNAVAILABLE", "cannot record the session, so it is not started", { cause: err });
    }
  }

  isLive(id: string): boolean {
    return this.live.has(id) || (this.chains?.has(id) ?? false);
  }

  track(id: string, live: Live): void {
    this.live.set(id, live);
  }

  async finish(id: string, end: SessionEnd): Promise<void> {
    this.live.delete(id);
    const data = {
      endedAt: new Date(),
      bytesUp: BigInt(end.bytesUp),
      bytesDown: BigInt(end.bytesDown),
      outcome: end.outcome,
      errorCode: end.error?.code ?? null,
      error: cleanOrNull(end.error?.message),
      unrecorded: end.unrecorded ?? this.chains?.unrecordedOf(id) ?? 0,
      recordingChunks: end.recording?.chunks ?? 0,
      recordingBytes: BigInt(end.recording?.bytes ?? 0),
      recordingStorage: end.recording?.storage ?? null,
    };
    const ended = this.chains ? await this.chains.end(id, sessionEndFields(data)) : null;
    const update = { ...data, ...(ended ? { endLink: ended.link.link, endPrevHash: new Uint8Array(ended.link.prev), endHash: new Uint8Array(ended.link.hash) } : {}) };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.prisma.session.update({ where: { id }, data: update });
        break;
      } catch (err) {
        if (attempt < FINISH_RETRIES_MS.length) {
          await new Promise((r) => setTimeout(r, FINISH_RETRIES_MS[attempt]));
          continue;
        }
        // The end record is not in the store: do not seal it. The chain is dropped here; the session
        // stays open in the store until `airlock audit recover` (or the next embedded start) closes it,
        // and a periodic checkpoint that may have signed the end link is taken into account there.
        this.log.error({ session: id, err: (err as Error).message }, "could not complete the session record");
        this.chains?.drop(id);
        return;
      }
    }
    // The final checkpoint signs everything up to the end record; if it fails, the periodic run retries it.
    await ended?.seal().catch(() => undefined);
  }

  /** Cuts every live session opened with a token (revocation). */
  abortByToken(tokenId: string, err: AirlockError): number {
    let n = 0;
    for (const l of this.live.values()) if (l.tokenId === tokenId) (l.abort(err), n++);
    return n;
  }

  /** Cuts every live session of an identity (user deleted, service account revoked). */
  abortBySubject(subject: string, err: AirlockError): number {
    let n = 0;
    for (const l of this.live.values()) if (l.subject === subject) (l.abort(err), n++);
    return n;
  }

  /** Cuts every live session opened with an access grant. */
  abortByGrant(grantId: string, err: AirlockError): number {
    let n = 0;
    for (const l of this.live.values()) if (l.grants?.includes(grantId)) (l.abort(err), n++);
    return n;
  }

  /** Grant ids live sessions depend on (the sweep cuts those whose grant ended). */
  liveGrantIds(): string[] {
    const out = new Set<string>();
    for (const l of this.live.values()) for (const g of l.grants ?? []) out.add(g);
    return [...out];
  }

  /** Subjects of live sessions opened without a gateway token (IdP JWTs): the sweep checks their service accounts. */
  liveTokenlessSubjects(): string[] {
    const out = new Set<string>();
    for (const l of this.live.values()) if (!l.tokenId && l.subject) out.add(l.subject);
    return [...out];
  }

  /** Token ids of live sessions (the revocation sweep checks them against the store). */
  liveTokenIds(): string[] {
    const ids = new Set<string>();
    for (const l of this.live.values()) if (l.tokenId) ids.add(l.tokenId);
    return [...ids];
  }

  /**
   * Closes sessions a crashed gateway left open: each gets an end record and a
   * "recovered" checkpoint (audit/recover.ts). Only safe when no other gateway
   * process can own them (the embedded store, or an explicit list).
   */
  async closeOrphans(ids?: string[]): Promise<number> {
    const rows = await this.store.prisma.session.findMany({ where: { outcome: "active", ...(ids ? { id: { in: ids } } : {}) }, select: { id: true } });
    for (const { id } of rows) {
      if (this.live.has(id)) continue;
      if (this.chains) await recoverSession(this.store, this.chains, id);
      else await this.store.prisma.session.update({ where: { id }, data: { outcome: "failed", errorCode: "LINK_LOST", error: "gateway stopped while the session was open", endedAt: new Date() } });
    }
    return rows.length;
  }

  async get(id: string) {
    const row = await this.store.prisma.session.findUnique({ where: { id }, include: { agent: { select: { name: true } } } });
    if (!row) throw new AirlockError("NOT_FOUND", `no session ${id}`);
    return row;
  }
}
