import { AirlockError } from "@airlock/shared";
import { generateToken, hashToken, parseToken } from "../crypto/index.js";
import type { Store } from "../store/index.js";
import { isRole, type Principal, type Role } from "./principal.js";

export interface MintRequest {
  subject: string;
  roles: Role[];
  groups?: string[];
  kind?: "user" | "service";
  ttlSeconds?: number;
  description?: string;
  createdBy?: string;
}

/** Writes of last-used time are throttled: it is informational, not a security control. */
const LAST_USED_PRECISION_MS = 60_000;
/**
 * Verified tokens are remembered briefly so a burst of connections costs one
 * lookup. Revocation through this process drops the entry at once; through
 * another gateway process it takes effect within this long.
 */
const VERIFY_CACHE_MS = 5_000;
const VERIFY_CACHE_MAX = 10_000;
/** Advisory lock key for the bootstrap admin token ("airlock" in ASCII, as a bigint). */
const BOOTSTRAP_LOCK = 0x6169726c6f636bn;

/**
 * Short-lived access tokens for users and service accounts. Only SHA-256
 * hashes are stored; the token itself is shown once, at minting.
 */
export class AccessTokenService {
  constructor(
    private readonly store: Store,
    private readonly ttl: { defaultTtlSeconds: number; maxTtlSeconds: number },
  ) {}

  private readonly cache = new Map<string, { principal: Principal; until: number }>();

  async mint(req: MintRequest): Promise<{ token: string; id: string; expiresAt: Date }> {
    const ttl = req.ttlSeconds ?? this.ttl.defaultTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > this.ttl.maxTtlSeconds) {
      throw new AirlockError("INVALID_ARGUMENT", `ttl must be between 1 s and ${this.ttl.maxTtlSeconds} s`);
    }
    if (!/^[A-Za-z0-9@._:-]{1,128}$/.test(req.subject)) throw new AirlockError("INVALID_ARGUMENT", "subject must be 1-128 of [A-Za-z0-9@._:-]");
    const bad = req.roles.filter((r) => !isRole(r));
    if (bad.length || req.roles.length === 0) throw new AirlockError("INVALID_ARGUMENT", `unknown or missing roles: ${bad.join(", ") || "(none given)"}`);
    const groups = [...new Set(req.groups ?? [])];
    const badGroup = groups.find((g) => !/^[A-Za-z0-9@._:-]{1,128}$/.test(g));
    if (badGroup !== undefined) throw new AirlockError("INVALID_ARGUMENT", `invalid group ${JSON.stringify(badGroup)}: use 1-128 of [A-Za-z0-9@._:-]`);
    const token = generateToken("at");
    const expiresAt = new Date(Date.now() + ttl * 1000);
    const rec = await this.store.prisma.accessToken.create({
      data: {
        hash: hashToken(token),
        subject: req.subject,
        kind: req.kind ?? "user",
        roles: [...new Set(req.roles)],
        groups,
        description: req.description ?? null,
        createdBy: req.createdBy ?? null,
        expiresAt,
      },
    });
    return { token, id: rec.id, expiresAt };
  }

  /** Resolves a bearer token to its principal, or throws a 401-class AirlockError with the reason. */
  async verify(token: string | undefined): Promise<Principal> {
    if (!token) throw new AirlockError("UNAUTHENTICATED", "no access token: pass --token, set AIRLOCK_TOKEN or run `airlock login`");
    const parsed = parseToken(token);
    if (!parsed || parsed.kind !== "at") throw new AirlockError("TOKEN_INVALID", "not an Airlock access token");
    const hash = hashToken(token);
    const hit = this.cache.get(hash);
    const now = Date.now();
    if (hit && hit.until > now && hit.principal.expiresAt.getTime() > now) return hit.principal;
    const rec = await this.store.prisma.accessToken.findUnique({ where: { hash } });
    if (!rec) throw new AirlockError("TOKEN_INVALID", "unknown access token");
    if (rec.revokedAt) throw new AirlockError("TOKEN_REVOKED", `access token was revoked at ${rec.revokedAt.toISOString()}`);
    if (rec.expiresAt.getTime() <= Date.now()) throw new AirlockError("TOKEN_EXPIRED", `access token expired at ${rec.expiresAt.toISOString()}`);
    if (!rec.lastUsedAt || Date.now() - rec.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
      // Fire and forget: a failed bookkeeping write must not fail the request.
      this.store.prisma.accessToken.update({ where: { id: rec.id }, data: { lastUsedAt: new Date() } }).catch(() => {});
    }
    const principal: Principal = { subject: rec.subject, kind: rec.kind === "service" ? "service" : "user", roles: rec.roles.filter(isRole), groups: rec.groups ?? [], tokenId: rec.id, expiresAt: rec.expiresAt };
    if (this.cache.size >= VERIFY_CACHE_MAX) this.cache.clear();
    this.cache.set(hash, { principal, until: now + VERIFY_CACHE_MS });
    return principal;
  }

  async revoke(id: string): Promise<{ subject: string }> {
    const rec = await this.store.prisma.accessToken.findUnique({ where: { id } });
    if (!rec) throw new AirlockError("NOT_FOUND", `no token ${id}`);
    if (!rec.revokedAt) await this.store.prisma.accessToken.update({ where: { id }, data: { revokedAt: new Date() } });
    this.cache.delete(rec.hash);
    return { subject: rec.subject };
  }

  list(opts: { subject?: string; includeExpired?: boolean } = {}) {
    return this.store.prisma.accessToken.findMany({
      where: {
        ...(opts.subject ? { subject: opts.subject } : {}),
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
