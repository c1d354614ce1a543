import { AirlockError } from "@airlock/shared";
import type { Keyring } from "../crypto/index.js";
import type { Store } from "../store/index.js";
import { isUuid } from "../agents/service.js";

/** Every type Airlock will speak; only those in SUPPORTED can be created today. */
export const CONNECTION_TYPES = ["tcp", "postgres", "mysql", "ssh", "kubernetes", "http"] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];
const SUPPORTED: readonly ConnectionType[] = ["tcp", "postgres"];
/** Secrets each type understands; anything else is a typo we should not silently store. */
const SECRET_KEYS: Partial<Record<ConnectionType, readonly string[]>> = { postgres: ["username", "password"] };

export interface TargetTls {
  enabled: boolean;
  verify: boolean;
  serverName?: string;
  caPem?: string;
}

export interface ConnectionInput {
  name: string;
  type: ConnectionType;
  host: string;
  port: number;
  agent?: string | null;
  agentGroup?: string | null;
  tls?: TargetTls;
  labels?: Record<string, string>;
  /** Default database on the target (postgres). */
  database?: string | null;
  /** closed (default): statements that cannot be recorded are refused; best_effort: they run. */
  recordMode?: "closed" | "best_effort";
  /** Write-only: encrypted at rest, never returned. */
  secrets?: Record<string, string>;
}

export interface ConnectionView {
  id: string;
  name: string;
  type: string;
  host: string;
  port: number;
  agent: string | null;
  agentGroup: string | null;
  tls: TargetTls;
  labels: Record<string, string>;
  database: string | null;
  recordMode: "closed" | "best_effort";
  hasSecrets: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const NAME = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z0-9]([a-z0-9._/-]{0,62}[a-z0-9])?$/;

type Row = Awaited<ReturnType<Store["prisma"]["connection"]["findFirstOrThrow"]>> & { agent?: { name: string } | null };

/** Admin CRUD of connections. Secrets are sealed with the keyring, bound to the row's id. */
export class ConnectionService {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
  ) {}

  private async validate(input: Partial<ConnectionInput>, creating: boolean): Promise<string | null | undefined> {
    const bad = (m: string) => new AirlockError("INVALID_ARGUMENT", m);
    if (creating || input.name !== undefined) if (!input.name || !NAME.test(input.name)) throw bad("name must be lowercase letters, digits, '.', '_' or '-' (max 64)");
    if (creating || input.type !== undefined) {
      if (!SUPPORTED.includes(input.type as ConnectionType)) {
        throw bad(`type ${input.type} is not supported yet; supported: ${SUPPORTED.join(", ")}`);
      }
    }
    if ((creating || input.host !== undefined) && !input.host) throw bad("host is required");
    if ((creating || input.port !== undefined) && !(Number.isInteger(input.port) && input.port! > 0 && input.port! < 65536)) throw bad("port must be 1-65535");
    for (const [k, v] of Object.entries(input.labels ?? {})) {
      if (!LABEL_KEY.test(k) || typeof v !== "string" || v.length > 256) throw bad(`invalid label ${k}`);
    }
    const type = input.type as ConnectionType | undefined;
    const keys = type ? SECRET_KEYS[type] : undefined;
    if (keys && input.secrets) {
      const unknown = Object.keys(input.secrets).filter((k) => !keys.includes(k));
      if (unknown.length) throw bad(`unknown ${type} secret(s): ${unknown.join(", ")}; expected ${keys.join(", ")}`);
    }
    if (creating && type === "postgres" && !input.secrets?.username) throw bad("a postgres connection needs the target user: --secret username=USER (and password=… unless the target trusts it)");
    if (input.agent && input.agentGroup) throw bad("give either agent or agentGroup, not both");
    if (creating && !input.agent && !input.agentGroup) throw bad("agent or agentGroup is required: which agent reaches this target?");
    if (input.agent) {
      const a = await this.store.prisma.agent.findUnique({ where: { name: input.agent } });
      if (!a) throw new AirlockError("NOT_FOUND", `no agent ${input.agent}`);
      return a.id;
    }
    return input.agentGroup ? null : undefined;
  }

  async create(input: ConnectionInput): Promise<ConnectionView> {
    const agentId = await this.validate(input, true);
    if (await this.store.prisma.connection.findUnique({ where: { name: input.name } })) throw new AirlockError("ALREADY_EXISTS", `connection ${input.name} already exists`);
    const id = crypto.randomUUID();
    const row = await this.store.prisma.connection.create({
      data: {
        id,
        name: input.name,
        type: input.type,
        host: input.host,
        port: input.port,
        agentId: agentId ?? null,
        agentGroup: input.agentGroup ?? null,
        tls: (input.tls ?? { enabled: false, verify: true }) as object,
        labels: input.labels ?? {},
        database: input.database ?? null,
        recordMode: input.recordMode ?? "closed",
        secret: input.secrets ? this.seal(id, input.secrets) : null,
      },
      include: { agent: { select: { name: true } } },
    });
    return this.view(row);
  }

  async update(nameOrId: string, input: Partial<ConnectionInput>): Promise<ConnectionView> {
    const cur = await this.row(nameOrId);
    if (input.type !== undefined && input.type !== cur.type) {
      throw new AirlockError("INVALID_ARGUMENT", `the type of connection ${cur.name} is ${cur.type} and cannot be changed; delete and create it again`);
    }
    const agentId = await this.validate({ ...input, type: input.type ?? (cur.type as ConnectionType) }, false);
    if (input.name !== undefined && input.name !== cur.name && (await this.store.prisma.connection.findUnique({ where: { name: input.name } }))) {
      throw new AirlockError("ALREADY_EXISTS", `connection ${input.name} already exists`);
    }
    const row = await this.store.prisma.connection.update({
      where: { id: cur.id },
      data: {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.host !== undefined ? { host: input.host } : {}),
        ...(input.port !== undefined ? { port: input.port } : {}),
        ...(input.agent ? { agentId: agentId ?? null, agentGroup: null } : {}),
        ...(input.agentGroup ? { agentGroup: input.agentGroup, agentId: null } : {}),
        ...(input.tls !== undefined ? { tls: input.tls as object } : {}),
        ...(input.labels !== undefined ? { labels: input.labels } : {}),
        ...(input.database !== undefined ? { database: input.database } : {}),
        ...(input.recordMode !== undefined ? { recordMode: input.recordMode } : {}),
        ...(input.secrets !== undefined ? { secret: this.seal(cur.id, input.secrets) } : {}),
      },
      include: { agent: { select: { name: true } } },
    });
    return this.view(row);
  }

  async list(): Promise<ConnectionView[]> {
    const rows = await this.store.prisma.connection.findMany({ orderBy: { name: "asc" }, include: { agent: { select: { name: true } } } });
    return rows.map((r) => this.view(r));
  }

  async get(nameOrId: string): Promise<ConnectionView> {
    return this.view(await this.row(nameOrId));
  }

  async delete(nameOrId: string): Promise<void> {
    const row = await this.row(nameOrId);
    await this.store.prisma.connection.delete({ where: { id: row.id } });
  }

  /** The full record for the data path, secrets decrypted. Never hand this to an API response. */
  async resolve(nameOrId: string): Promise<ConnectionView & { agentId: string | null; secrets: Record<string, string> }> {
    const row = await this.row(nameOrId);
    const secrets = row.secret ? (this.keyring.decryptJson(row.secret, `connection:${row.id}`) as Record<string, string>) : {};
    return { ...this.view(row), agentId: row.agentId, secrets };
  }

  private seal(id: string, secrets: Record<string, string>): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.keyring.encryptJson(secrets, `connection:${id}`));
  }

  private async row(nameOrId: string): Promise<Row> {
    const row = await this.store.prisma.connection.findFirst({
      where: isUuid(nameOrId) ? { OR: [{ id: nameOrId }, { name: nameOrId }] } : { name: nameOrId },
      include: { agent: { select: { name: true } } },
    });
    if (!row) throw new AirlockError("NOT_FOUND", `no connection ${nameOrId}`);
    return row;
  }

  private view(r: Row): ConnectionView {
    return {
      id: r.id,
      name: r.name,
      type: r.type,
      host: r.host,
      port: r.port,
      agent: r.agent?.name ?? null,
      agentGroup: r.agentGroup,
      tls: r.tls as unknown as TargetTls,
      labels: r.labels as Record<string, string>,
      database: r.database ?? null,
      recordMode: r.recordMode === "best_effort" ? "best_effort" : "closed",
      hasSecrets: r.secret != null,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }
}
