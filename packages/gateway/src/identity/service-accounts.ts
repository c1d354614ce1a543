import { AirlockError } from "@airlock/shared";
import { validName, type AccessTokenService } from "../auth/access-tokens.js";
import { isRole, type Role } from "../auth/principal.js";
import type { Store } from "../store/index.js";

export interface ServiceAccountInput {
  name: string;
  groups?: string[];
  roles?: Role[];
  /** Connection names or globs; at least one (least privilege: say "*" to mean every connection). */
  connections: string[];
  tokenTtlSeconds?: number;
  /** IdP machine identities ("provider:sub") whose JWTs act as this account. */
  externalIds?: string[];
  description?: string;
  createdBy?: string;
}

const ACCOUNT_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const CONN_GLOB_RE = /^[A-Za-z0-9._*-]{1,128}$/;

/**
 * Identities for machines and AI agents. An account has groups (policies see
 * them), roles (default user), a connection scope its tokens cannot leave, and
 * short-lived tokens (minted by an admin, renewed by the account itself).
 * Revoking the account refuses all its tokens at once.
 */
export class ServiceAccountService {
  constructor(
    private readonly store: Store,
    private readonly tokens: AccessTokenService,
    private readonly limits: { defaultTtlSeconds: number; maxTtlSeconds: number },
  ) {}

  async create(i: ServiceAccountInput) {
    if (!ACCOUNT_RE.test(i.name)) throw new AirlockError("INVALID_ARGUMENT", `service account name ${JSON.stringify(i.name)}: use 1-63 of [a-z0-9._-], starting with a letter or digit`);
    if (!i.connections.length) throw new AirlockError("INVALID_ARGUMENT", "a service account needs at least one connection (names or globs; \"*\" for all)");
    for (const c of i.connections) if (!CONN_GLOB_RE.test(c)) throw new AirlockError("INVALID_ARGUMENT", `connection ${JSON.stringify(c)}: use names or globs of [A-Za-z0-9._*-]`);
    for (const g of i.groups ?? []) validName("group", g);
    for (const x of i.externalIds ?? []) if (!/^[a-z0-9-]+:.{1,200}$/.test(x)) throw new AirlockError("INVALID_ARGUMENT", `external id ${JSON.stringify(x)}: use PROVIDER:SUBJECT`);
    const roles = i.roles?.length ? i.roles : (["user"] as Role[]);
    if (roles.some((r) => !isRole(r))) throw new AirlockError("INVALID_ARGUMENT", `unknown role in ${roles.join(", ")}`);
    const ttl = i.tokenTtlSeconds ?? this.limits.defaultTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > this.limits.maxTtlSeconds) throw new AirlockError("INVALID_ARGUMENT", `token ttl must be 60-${this.limits.maxTtlSeconds} s`);
    const exists = await this.store.prisma.serviceAccount.findUnique({ where: { name: i.name } });
    if (exists) throw new AirlockError("ALREADY_EXISTS", `service account ${i.name} exists`);
    // One name, one identity: records and policies must not confuse an account with a person.
    if (await this.store.prisma.user.findUnique({ where: { name: i.name } })) throw new AirlockError("ALREADY_EXISTS", `${i.name} is the name of a user`);
    for (const x of i.externalIds ?? []) {
      const bound = await this.byExternalId(x);
      if (bound) throw new AirlockError("ALREADY_EXISTS", `${x} already acts as service account ${bound.name}`);
    }
    return this.store.prisma.serviceAccount.create({
      data: { name: i.name, groups: [...new Set(i.groups ?? [])], roles, connections: [...new Set(i.connections)], tokenTtlSeconds: ttl, externalIds: i.externalIds ?? [], description: i.description ?? null, createdBy: i.createdBy ?? null },
    });
  }

  async get(name: string) {
    const sa = await this.store.prisma.serviceAccount.findUnique({ where: { name } });
    if (!sa) throw new AirlockError("NOT_FOUND", `no service account ${name}`);
    return sa;
  }

  async exists(name: string): Promise<boolean> {
    return !!(await this.store.prisma.serviceAccount.findUnique({ where: { name }, select: { id: true } }));
  }

  list() {
    return this.store.prisma.serviceAccount.findMany({ orderBy: { name: "asc" }, include: { _count: { select: { tokens: { where: { revokedAt: null, expiresAt: { gt: new Date() } } } } } } });
  }

  /** A short-lived token for the account (admin, or the account renewing itself). */
  async mintToken(name: string, opts: { ttlSeconds?: number; createdBy?: string; apiKey?: boolean; description?: string } = {}) {
    const sa = await this.get(name);
    if (sa.revokedAt) throw new AirlockError("IDENTITY_DISABLED", `service account ${name} was revoked at ${sa.revokedAt.toISOString()}`);
    const ttl = opts.apiKey ? opts.ttlSeconds : Math.min(opts.ttlSeconds ?? sa.tokenTtlSeconds, sa.tokenTtlSeconds);
    const r = await this.tokens.mint({
      subject: sa.name,
      kind: "service",
      type: opts.apiKey ? "api_key" : "access",
      roles: sa.roles.filter(isRole),
      groups: sa.groups,
      method: "service",
      serviceAccountId: sa.id,
      ttlSeconds: ttl,
      createdBy: opts.createdBy,
      description: opts.description,
    });
    return { ...r, account: sa };
  }

  /** Revokes the account: every token is refused from now on (this process at once, others within seconds). */
  async revoke(name: string): Promise<{ tokenIds: string[] }> {
    const sa = await this.get(name);
    if (!sa.revokedAt) await this.store.prisma.serviceAccount.update({ where: { id: sa.id }, data: { revokedAt: new Date() } });
    // Its tokens are revoked too, so enabling the account later does not bring back a leaked one.
    const tokenIds = await this.tokens.revokeWhere({ serviceAccountId: sa.id });
    this.tokens.forget((p) => p.subject === sa.name && p.kind === "service");
    return { tokenIds };
  }

  async enable(name: string): Promise<void> {
    const sa = await this.get(name);
    await this.store.prisma.serviceAccount.update({ where: { id: sa.id }, data: { revokedAt: null } });
  }

  /** The account an IdP machine identity acts as, if one is bound to it. */
  async byExternalId(externalId: string) {
    return this.store.prisma.serviceAccount.findFirst({ where: { externalIds: { has: externalId } } });
  }
}
