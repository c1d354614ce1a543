import { AirlockError } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import type { Store } from "../store/index.js";

export interface SignedInIdentity {
  provider: string;
  externalId: string;
  name: string;
  email?: string | null;
  displayName?: string | null;
  groups: string[];
  roles: Role[];
}

/**
 * People known from identity providers. A user is created at first sign-in and
 * updated at each sign-in and refresh (groups follow the IdP). Deleting a user
 * refuses their tokens with a reason that says so; signing in again through
 * the IdP brings them back, so removing access for good is done at the IdP.
 */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly tokens: AccessTokenService,
  ) {}

  async upsert(i: SignedInIdentity) {
    const existing = await this.store.prisma.user.findUnique({ where: { provider_externalId: { provider: i.provider, externalId: i.externalId } } });
    const data = { email: i.email ?? null, displayName: i.displayName ?? null, groups: i.groups, roles: i.roles, lastLoginAt: new Date(), deletedAt: null };
    if (existing) return this.store.prisma.user.update({ where: { id: existing.id }, data: { ...data, name: existing.name } });
    // Two providers may know different people under one name: the second one gets the provider as a prefix.
    const taken = await this.store.prisma.user.findUnique({ where: { name: i.name } });
    const name = taken ? `${i.provider}:${i.name}` : i.name;
    return this.store.prisma.user.create({ data: { ...data, name, provider: i.provider, externalId: i.externalId } });
  }

  list(opts: { includeDeleted?: boolean } = {}) {
    return this.store.prisma.user.findMany({ where: opts.includeDeleted ? {} : { deletedAt: null }, orderBy: { name: "asc" }, take: 1000 });
  }

  async delete(name: string): Promise<{ id: string; tokenIds: string[] }> {
    const u = await this.store.prisma.user.findUnique({ where: { name } });
    if (!u) throw new AirlockError("NOT_FOUND", `no user ${name}`);
    if (!u.deletedAt) await this.store.prisma.user.update({ where: { id: u.id }, data: { deletedAt: new Date() } });
    await this.store.prisma.login.updateMany({ where: { userId: u.id, endedAt: null }, data: { endedAt: new Date(), refreshHash: null } });
    this.tokens.forget((p) => p.subject === u.name && p.kind === "user");
    const tokenIds = (await this.store.prisma.accessToken.findMany({ where: { userId: u.id, revokedAt: null }, select: { id: true } })).map((t) => t.id);
    return { id: u.id, tokenIds };
  }
}
