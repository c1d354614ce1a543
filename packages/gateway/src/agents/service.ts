import type { Hello } from "@airlock/proto";
import { AirlockError, type Logger } from "@airlock/shared";
import { generateToken, hashToken, parseToken } from "../crypto/index.js";
import type { Store } from "../store/index.js";
import type { AgentIdentity } from "../tunnel/link.js";
import type { AgentRegistry, LinkInfo } from "../tunnel/registry.js";

const NAME = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;

export interface AgentView {
  id: string;
  name: string;
  group: string | null;
  status: "online" | "offline" | "pending" | "revoked";
  version: string | null;
  hostname: string | null;
  lastSeenAt: Date | null;
  enrolledAt: Date | null;
  createdAt: Date;
  streams: number;
}

/**
 * Agents: created by an admin with a one-time enrollment token, which the
 * agent exchanges on its first link for a long-lived key. Only hashes of both
 * are stored. Revocation cuts the agent's live links at once.
 */
export class AgentService {
  constructor(
    private readonly store: Store,
    private readonly registry: AgentRegistry,
    private readonly log: Logger,
    private readonly enrollmentTtlSeconds: number,
  ) {
    // Keep last-seen current so `agents list` is right after a gateway restart too.
    registry.on("online", (l) => void this.touch(l.identity!.agentId, { version: l.hello?.agentVersion, hostname: l.hello?.hostname }));
    registry.on("offline", (l) => void this.touch(l.identity!.agentId, {}));
  }

  private async touch(id: string, fields: { version?: string | undefined; hostname?: string | undefined }): Promise<void> {
    await this.store.prisma.agent
      .update({ where: { id }, data: { lastSeenAt: new Date(), ...(fields.version ? { version: fields.version } : {}), ...(fields.hostname ? { hostname: fields.hostname } : {}) } })
      .catch((err: Error) => this.log.warn({ err: err.message }, "could not record agent last-seen"));
  }

  async create(name: string, group?: string | null, ttlSeconds?: number): Promise<{ agent: AgentView; enrollmentToken: string; expiresAt: Date }> {
    if (!NAME.test(name)) throw new AirlockError("INVALID_ARGUMENT", "agent name must be lowercase letters, digits, '.', '_' or '-' (max 64)");
    if (group != null && !NAME.test(group)) throw new AirlockError("INVALID_ARGUMENT", "agent group must be lowercase letters, digits, '.', '_' or '-' (max 64)");
    if (await this.store.prisma.agent.findUnique({ where: { name } })) throw new AirlockError("ALREADY_EXISTS", `agent ${name} already exists`);
    const enrollmentToken = generateToken("enr");
    const expiresAt = new Date(Date.now() + (ttlSeconds ?? this.enrollmentTtlSeconds) * 1000);
    const rec = await this.store.prisma.agent.create({ data: { name, group: group ?? null, enrollHash: hashToken(enrollmentToken), enrollExpiresAt: expiresAt } });
    return { agent: this.view(rec), enrollmentToken, expiresAt };
  }

  /** The tunnel's authenticator: enrollment token (once) or agent key. */
  async authenticate(hello: Hello, peer: string): Promise<AgentIdentity> {
    const cred = hello.credential;
    if (cred.case === "enrollmentToken") {
      const parsed = parseToken(cred.value);
      if (parsed?.kind !== "enr") throw new AirlockError("ENROLLMENT_TOKEN_INVALID", "not an Airlock enrollment token");
      const hash = hashToken(cred.value);
      const rec = await this.store.prisma.agent.findUnique({ where: { enrollHash: hash } });
      if (!rec) throw new AirlockError("ENROLLMENT_TOKEN_INVALID", "unknown enrollment token");
      if (rec.revokedAt) throw new AirlockError("AGENT_REVOKED", `agent ${rec.name} was revoked`);
      if (rec.enrolledAt) throw new AirlockError("ENROLLMENT_TOKEN_USED", `enrollment token of agent ${rec.name} was already used at ${rec.enrolledAt.toISOString()}; create a new agent or use the stored key`);
      if (rec.enrollExpiresAt && rec.enrollExpiresAt.getTime() < Date.now()) throw new AirlockError("ENROLLMENT_TOKEN_INVALID", `enrollment token of agent ${rec.name} expired`);
      const key = generateToken("ak");
      // Conditional update: of two agents racing with one token, only one wins.
      const won = await this.store.prisma.agent.updateMany({
        where: { id: rec.id, enrolledAt: null },
        data: { enrolledAt: new Date(), keyHash: hashToken(key), hostname: hello.hostname || null, version: hello.agentVersion || null },
      });
      if (won.count !== 1) throw new AirlockError("ENROLLMENT_TOKEN_USED", `enrollment token of agent ${rec.name} was already used`);
      this.log.info({ agent: rec.name, peer }, "agent enrolled");
      return { agentId: rec.id, agentName: rec.name, group: rec.group, issuedKey: key };
    }
    if (cred.case === "agentKey") {
      const parsed = parseToken(cred.value);
      const rec = parsed?.kind === "ak" ? await this.store.prisma.agent.findUnique({ where: { keyHash: hashToken(cred.value) } }) : null;
      if (!rec) throw new AirlockError("AGENT_KEY_INVALID", "unknown agent key");
      if (rec.revokedAt) throw new AirlockError("AGENT_REVOKED", `agent ${rec.name} was revoked at ${rec.revokedAt.toISOString()}`);
      return { agentId: rec.id, agentName: rec.name, group: rec.group };
    }
    throw new AirlockError("UNAUTHENTICATED", "Hello carries no credential");
  }

  async list(): Promise<AgentView[]> {
    const recs = await this.store.prisma.agent.findMany({ orderBy: { name: "asc" } });
    const links = this.linksByAgent();
    return recs.map((r) => this.view(r, links));
  }

  async get(nameOrId: string): Promise<AgentView> {
    return this.view(await this.find(nameOrId));
  }

  private async find(nameOrId: string) {
    const rec = await this.store.prisma.agent.findFirst({ where: isUuid(nameOrId) ? { OR: [{ id: nameOrId }, { name: nameOrId }] } : { name: nameOrId } });
    if (!rec) throw new AirlockError("NOT_FOUND", `no agent ${nameOrId}`);
    return rec;
  }

  async revoke(nameOrId: string): Promise<AgentView> {
    const rec = await this.find(nameOrId);
    const updated = rec.revokedAt ? rec : await this.store.prisma.agent.update({ where: { id: rec.id }, data: { revokedAt: new Date(), enrollHash: null } });
    const cut = this.registry.disconnect(rec.id, new AirlockError("AGENT_REVOKED", `agent ${rec.name} was revoked`));
    this.log.info({ agent: rec.name, linksCut: cut }, "agent revoked");
    return this.view(updated);
  }

  async delete(nameOrId: string): Promise<void> {
    const rec = await this.find(nameOrId);
    this.registry.disconnect(rec.id, new AirlockError("AGENT_REVOKED", `agent ${rec.name} was deleted`));
    await this.store.prisma.agent.delete({ where: { id: rec.id } });
  }

  private linksByAgent(): Map<string, LinkInfo[]> {
    const m = new Map<string, LinkInfo[]>();
    for (const l of this.registry.list()) m.set(l.agentId, [...(m.get(l.agentId) ?? []), l]);
    return m;
  }

  private view(
    r: { id: string; name: string; group: string | null; version: string | null; hostname: string | null; lastSeenAt: Date | null; enrolledAt: Date | null; revokedAt: Date | null; createdAt: Date },
    byAgent = this.linksByAgent(),
  ): AgentView {
    const links = byAgent.get(r.id) ?? [];
    const status = r.revokedAt ? "revoked" : links.length ? "online" : r.enrolledAt ? "offline" : "pending";
    return {
      id: r.id,
      name: r.name,
      group: r.group,
      status,
      version: links[0]?.version || r.version,
      hostname: links[0]?.hostname || r.hostname,
      lastSeenAt: links.length ? new Date() : r.lastSeenAt,
      enrolledAt: r.enrolledAt,
      createdAt: r.createdAt,
      streams: links.reduce((n, l) => n + l.streams, 0),
    };
  }
}

export function isUuid(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}
