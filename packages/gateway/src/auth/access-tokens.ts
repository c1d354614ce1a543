import { AirlockError } from "@airlock/shared";
import { generateToken, hashToken, parseToken } from "../crypto/index.js";
import type { Store } from "../store/index.js";
import { isRole, type AuthMethod, type Principal, type Role } from "./principal.js";

export interface MintRequest {
  subject: string;
  roles: Role[];
  groups?: string[];
  kind?: "user" | "service";
  /** access (default) or a long-lived API key (only when enabled). */
  type?: "access" | "api_key";
  method?: AuthMethod;
  provider?: string | null;
  userId?: string | null;
  serviceAccountId?: string | null;
  loginId?: string | null;
  ttlSeconds?: number;
  description?: string;
  createdBy?: string;
}

const NAME_RE = /^[A-Za-z0-9@._:/-]{1,128}$/;
/** Last-used writes are throttled: it is informational, not a security control. */
const LAST_USED_PRECISION_MS = 60_000;
/**
 * Verified tokens are remembered briefly so a burst of requests costs one
 * lookup. Revocation through this process drops the entry at once; through
 * another gateway process it takes effect within this long (and live sessions
 * are cut by the revocation sweep, sessions/sweep.ts).
 */
const VERIFY_CACHE_MS = 5_000;
const VERIFY_CACHE_MAX = 10_000;
/** Advisory lock key for the bootstrap admin token ("airlock" in ASCII, as a bigint). */
const BOOTSTRAP_LOCK = 0x6169726c6f636bn;

export function validName(what: string, v: string): void {
  if (!NAME_RE.test(v)) throw new AirlockError("INVALID_ARGUMENT", `${what} ${JSON.stringify(v)} is invalid: use 1-128 of [A-Za-z0-9@._:/-]`);
}

/**
 * Gateway tokens for people and service accounts (and API keys when enabled).
 * Only SHA-256 hashes are stored; the token itself is shown once, at minting.
 */
export class AccessTokenService {
  constructor(
    private readonly store: Store,
    private readonly ttl: { defaultTtlSeconds: number; maxTtlSeconds: number; apiKeys?: { enabled: boolean; maxTtlDays: number } },
  ) {}

  private readonly cache = new Map<string, { principal: Principal; until: number }>();

  get apiKeysEnabled(): boolean {
    return this.ttl.apiKeys?.enabled ?? false;
  }

  async mint(req: MintRequest): Promise<{ token: string; id: string; expiresAt: Date }> {
    const apiKey = req.type === "api_key";
    if (apiKey && !this.apiKeysEnabled) throw new AirlockError("FEATURE_DISABLED", "API keys are disabled on this gateway (an admin enables them with AIRLOCK_API_KEYS=true)");
    const max = apiKey ? (this.ttl.apiKeys?.maxTtlDays ?? 365) * 86400 : this.ttl.maxTtlSeconds;
    const ttl = req.ttlSeconds ?? this.ttl.defaultTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > max) throw new AirlockError("INVALID_ARGUMENT", `ttl must be between 1 s and ${max} s`);
    validName("subject", req.subject);
    const bad = req.roles.filter((r) => !isRole(r));
    if (bad.length || req.roles.length === 0) throw new AirlockError("INVALID_ARGUMENT", `unknown or missing roles: ${bad.join(", ") || "(none given)"}`);
    const groups = [...new Set(req.groups ?? [])];
    for (const g of groups) validName("group", g);
    const token = generateToken(apiKey ? "key" : "at");
    const expiresAt = new Date(Date.now() + ttl * 1000);
    const rec = await this.store.prisma.accessToken.create({
      data: {
        hash: hashToken(token),
        subject: req.subject,
        kind: req.kind ?? "user",
        type: apiKey ? "api_key" : "access",
        roles: [...new Set(req.roles)],
        groups,
        method: req.method ?? "admin",
        provider: req.provider ?? null,
        userId: req.userId ?? null,
        serviceAccountId: req.serviceAccountId ?? null,
        loginId: req.loginId ?? null,
        description: req.description ?? null,
        createdBy: req.createdBy ?? null,
        expiresAt,
      },
    });
    return { token, id: rec.id, expiresAt };
  }

  /** True for strings shaped like this service's tokens (access token or API key). */
  static owns(token: string): boolean {
    const k = parseToken(token)?.kind;
    return k === "at" || k === "key";
  }

  /** Resolves a gateway token to its principal, or throws a 401-class AirlockError with the reason. */
  async verify(token: string): Promise<Principal> {
    const parsed = parseToken(token);
    if (!parsed || (parsed.kind !== "at" && parsed.kind !== "key")) throw new AirlockError("TOKEN_INVALID", "not an Airlock access token or API key");
    const hash = hashToken(token);
    const hit = this.cache.get(hash);
    const now = Date.now();
    if (hit && hit.until > now && hit.principal.expiresAt.getTime() > now) return hit.principal;
    if (parsed.kind === "key" && !this.apiKeysEnabled) throw new AirlockError("TOKEN_INVALID", "API keys are disabled on this gateway");
    const rec = await this.lookup(hash);
    if (!rec) throw new AirlockError("TOKEN_INVALID", "unknown access token");
    if (rec.user?.deletedAt) throw new AirlockError("IDENTITY_DISABLED", `user ${rec.user.name} was deleted at ${rec.user.deletedAt.toISOString()}`);
    if (rec.serviceAccount?.revokedAt) throw new AirlockError("IDENTITY_DISABLED", `service account ${rec.serviceAccount.name} was revoked at ${rec.serviceAccount.revokedAt.toISOString()}`);
    if (rec.revokedAt) throw new AirlockError("TOKEN_REVOKED", `access token was revoked at ${rec.revokedAt.toISOString()}`);
    if (rec.login?.endedAt) throw new AirlockError("TOKEN_REVOKED", `the sign-in of this token ended (logout) at ${rec.login.endedAt.toISOString()}`);
    if (rec.expiresAt.getTime() <= Date.now()) throw new AirlockError("TOKEN_EXPIRED", `access token expired at ${rec.expiresAt.toISOString()}`);
    if (!rec.lastUsedAt || Date.now() - rec.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
      // Fire and forget: a failed bookkeeping write must not fail the request.
      this.store.sql("UPDATE access_tokens SET last_used_at = (now() AT TIME ZONE 'UTC') WHERE id = $1::uuid", [rec.id]).catch(() => {});
    }
    const principal: Principal = {
      subject: rec.subject,
      kind: rec.kind === "service" ? "service" : "user",
      roles: rec.roles.filter(isRole),
      groups: rec.groups ?? [],
      tokenId: rec.id,
      expiresAt: rec.expiresAt,
      method: (rec.type === "api_key" ? "api_key" : rec.method) as AuthMethod,
      ...(rec.provider ? { provider: rec.provider } : {}),
      ...(rec.serviceAccount ? { connections: rec.serviceAccount.connections } : {}),
      loginId: rec.loginId,
    };
    if (this.cache.size >= VERIFY_CACHE_MAX) this.cache.clear();
    this.cache.set(hash, { principal, until: now + VERIFY_CACHE_MS });
    return principal;
  }

  /**
   * One indexed read with the identity's state joined in. Raw SQL: this is the
   * first request of every token (and every request after the cache's 5 s), and
   * the ORM's per-query work cost ~5 ms here against well under 1 ms for the SQL.
   * Times travel as epoch ms (the columns hold UTC without a zone).
   */
  private async lookup(hash: string) {
    const rows = (await this.store.sql(
      `SELECT t.id, t.subject, t.kind, t.type, t.roles, t.groups, t.method, t.provider, t.login_id AS "loginId",
              extract(epoch FROM t.expires_at) * 1000 AS "expiresAt", extract(epoch FROM t.revoked_at) * 1000 AS "revokedAt",
              extract(epoch FROM t.last_used_at) * 1000 AS "lastUsedAt",
              u.name AS "userName", extract(epoch FROM u.deleted_at) * 1000 AS "userDeletedAt",
              sa.name AS "saName", extract(epoch FROM sa.revoked_at) * 1000 AS "saRevokedAt", sa.connections AS "saConnections",
              extract(epoch FROM l.ended_at) * 1000 AS "loginEndedAt"
         FROM access_tokens t
         LEFT JOIN users u ON u.id = t.user_id
         LEFT JOIN service_accounts sa ON sa.id = t.service_account_id
         LEFT JOIN logins l ON l.id = t.login_id
        WHERE t.hash = $1`,
      [hash],
    )) as Array<Record<string, unknown>>;
    const r = rows[0];
    if (!r) return null;
    const date = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
    return {
      id: r.id as string,
      subject: r.subject as string,
      kind: r.kind as string,
      type: r.type as string,
      roles: r.roles as string[],
      groups: (r.groups as string[] | null) ?? [],
      method: r.method as string,
      provider: r.provider as string | null,
      loginId: r.loginId as string | null,
      expiresAt: date(r.expiresAt)!,
      revokedAt: date(r.revokedAt),
      lastUsedAt: date(r.lastUsedAt),
      user: r.userName ? { name: r.userName as string, deletedAt: date(r.userDeletedAt) } : null,
      serviceAccount: r.saName ? { name: r.saName as string, revokedAt: date(r.saRevokedAt), connections: r.saConnections as string[] } : null,
      login: r.loginId ? { endedAt: date(r.loginEndedAt) } : null,
    };
  }

  async revoke(id: string): Promise<{ subject: string }> {
    const rec = await this.store.prisma.accessToken.findUnique({ where: { id } });
    if (!rec) throw new AirlockError("NOT_FOUND", `no token ${id}`);
    if (!rec.revokedAt) await this.store.prisma.accessToken.update({ where: { id }, data: { revokedAt: new Date() } });
    this.cache.delete(rec.hash);
    return { subject: rec.subject };
  }

  /** Revokes every live token matching the filter; returns their ids (to cut their sessions). */
  async revokeWhere(where: { loginId?: string; subject?: string; serviceAccountId?: string; userId?: string }): Promise<string[]> {
    const recs = await this.store.prisma.accessToken.findMany({ where: { ...where, revokedAt: null }, select: { id: true } });
    const ids = recs.map((r) => r.id);
    if (ids.length) await this.store.prisma.accessToken.updateMany({ where: { id: { in: ids } }, data: { revokedAt: new Date() } });
    this.forget((p) => p.tokenId !== null && ids.includes(p.tokenId));
    return ids;
  }

  /** Drops cached verifications (after a user, service account or login changed). */
  forget(match: (p: Principal) => boolean): void {
    for (const [k, v] of this.cache) if (match(v.principal)) this.cache.delete(k);
  }

  /** Of the given token ids, those no longer valid (revoked, expired identity, ended login). */
  async invalidAmong(ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const recs = await this.store.prisma.accessToken.findMany({
      where: { id: { in: ids } },
      select: { id: true, revokedAt: true, user: { select: { deletedAt: true } }, serviceAccount: { select: { revokedAt: true } }, login: { select: { endedAt: true } } },
    });
    const found = new Set(recs.map((r) => r.id));
    return [
      ...ids.filter((id) => !found.has(id)),
      ...recs.filter((r) => r.revokedAt || r.user?.deletedAt || r.serviceAccount?.revokedAt || r.login?.endedAt).map((r) => r.id),
    ];
  }

  get(id: string) {
    return this.store.prisma.accessToken.findUnique({ where: { id } });
  }

  list(opts: { subject?: string; includeExpired?: boolean; type?: "access" | "api_key" } = {}) {
    return this.store.prisma.accessToken.findMany({
      where: {
        ...(opts.subject ? { subject: opts.subject } : {}),
        ...(opts.type ? { type: opts.type } : {}),
        ...(opts.includeExpired ? {} : { expiresAt: { gt: new Date() }, revokedAt: null }),
      },
      orderBy: { createdAt: "desc" },
      take: 500,
    });
  }

  /** The bootstrap admin token: minted once when the store has no tokens at all. */
  async bootstrapAdmin(ttlSeconds: number): Promise<string | null> {
    // Gateways starting together on one database must not each mint one:
    // count and insert under a transaction-scoped advisory lock.
    return this.store.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`;
      if ((await tx.accessToken.count()) > 0) return null;
      const token = generateToken("at");
      await tx.accessToken.create({
        data: { hash: hashToken(token), subject: "admin", kind: "user", roles: ["admin"], description: "bootstrap admin token", expiresAt: new Date(Date.now() + ttlSeconds * 1000) },
      });
      return token;
    });
  }
}
