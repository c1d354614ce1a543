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
    return this.store.prisma.user.create({ data: { ...data, name: await this.freeName(i), provider: i.provider, externalId: i.externalId } });
  }

  /**
   * The name records show: the IdP's (safe characters only), unless another
   * person or a service account already has it; then provider-qualified, then
   * the provider's stable id. Nobody can take over an existing name.
   */
  private async freeName(i: SignedInIdentity): Promise<string> {
    const safe = (s: string) => s.replace(/[^A-Za-z0-9@._:/-]/g, "_").slice(0, 128);
    for (const candidate of [safe(i.name), safe(`${i.provider}:${i.name}`), safe(`${i.provider}:${i.externalId}`)]) {
      const [user, sa] = await Promise.all([this.store.prisma.user.findUnique({ where: { name: candidate } }), this.store.prisma.serviceAccount.findUnique({ where: { name: candidate } })]);
      if (!user && !sa) return candidate;
    }
    throw new AirlockError("LOGIN_FAILED", `no free name for ${i.provider}:${i.externalId.slice(0, 64)}; ask an admin`);
  }

  list(opts: { includeDeleted?: boolean } = {}) {
    return this.store.prisma.user.findMany({ where: opts.includeDeleted ? {} : { deletedAt: null }, orderBy: { name: "asc" }, take: 1000 });
  }

  async delete(name: string): Promise<{ id: string; tokenIds: string[] }> {
    const u = await this.store.prisma.user.findUnique({ where: { name } });
    if (!u) throw new AirlockError("NOT_FOUND", `no user ${name}`);
    if (!u.deletedAt) await this.store.prisma.user.update({ where: { id: u.id }, data: { deletedAt: new Date() } });
    await this.store.prisma.login.updateMany({ where: { userId: u.id, endedAt: null }, data: { endedAt: new Date(), refreshHash: null, idpRefresh: null } });
    this.tokens.forget((p) => p.subject === u.name && p.kind === "user");
    const tokenIds = (await this.store.prisma.accessToken.findMany({ where: { userId: u.id, revokedAt: null }, select: { id: true } })).map((t) => t.id);
    return { id: u.id, tokenIds };
  }
}
