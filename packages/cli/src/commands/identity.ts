import type { Command } from "commander";
import { apiFor, print } from "../context.js";
import { ago, parseDuration, table } from "../output.js";

type ServiceAccount = { name: string; groups: string[]; roles: string[]; connections: string[]; tokenTtlSeconds: number; externalIds: string[]; revokedAt: string | null; createdAt: string; activeTokens?: number };
type User = { name: string; provider: string; email: string | null; groups: string[]; roles: string[]; lastLoginAt: string | null; deletedAt: string | null };
type AuthEvent = { at: string; type: string; outcome: string; subject: string | null; provider: string | null; via: string | null; code: string | null; reason: string | null; clientAddr: string | null };

const collect = (v: string, prev: string[]) => [...prev, v];

/** Admin commands for identities: service accounts, users, API keys, and the auth audit trail. */
export function registerIdentity(program: Command): void {
  const sa = program.command("serviceaccounts").alias("sa").description("identities for machines, CI jobs and AI agents");
  sa.command("create <name>")
    .description("create a service account and print its first short-lived token")
    .option("--group <group>", "group policies see (repeat)", collect, [] as string[])
    .option("--connection <name>", "connection (or glob) the account may use (repeat; \"*\" for all)", collect, [] as string[])
    .option("--role <role>", "admin, user, auditor, reviewer (repeat)", collect, [] as string[])
    .option("--ttl <duration>", "lifetime of its tokens", "1h")
    .option("--external-id <provider:sub>", "an IdP machine identity whose JWTs act as this account (repeat)", collect, [] as string[])
    .option("--description <text>")
    .action(async (name: string, o: { group: string[]; connection: string[]; role: string[]; ttl: string; externalId: string[]; description?: string }, cmd: Command) => {
      if (!o.connection.length) throw new Error("name at least one --connection (or --connection '*'): a service account only reaches what it is scoped to");
      const r = await (await apiFor(cmd)).post<ServiceAccount & { token: string; expiresAt: string }>("/api/v1/serviceaccounts", {
        name,
        groups: o.group,
        connections: o.connection,
        ...(o.role.length ? { roles: o.role } : {}),
        tokenTtlSeconds: parseDuration(o.ttl),
        ...(o.externalId.length ? { externalIds: o.externalId } : {}),
        description: o.description,
      });
      print(cmd, r, () => `${r.token}\n`);
      if (!cmd.optsWithGlobals().json) process.stderr.write(`service account ${name} (groups ${r.groups.join(",") || "none"}; connections ${r.connections.join(",")}); token expires ${r.expiresAt}; renew with POST /api/v1/auth/renew or \`airlock sa token ${name}\`\n`);
    });
  sa.command("list").action(async (_o, cmd: Command) => {
    const r = await (await apiFor(cmd)).get<{ serviceAccounts: ServiceAccount[] }>("/api/v1/serviceaccounts");
    print(cmd, r, () =>
      table(
        r.serviceAccounts.map((a) => ({ ...a, groups: a.groups.join(","), roles: a.roles.join(","), connections: a.connections.join(","), ttl: `${a.tokenTtlSeconds}s`, tokens: a.activeTokens, state: a.revokedAt ? "revoked" : "active" })),
        ["name", "groups", "roles", "connections", "ttl", "tokens", "state"],
      ),
    );
  });
  sa.command("token <name>")
    .description("mint a short-lived token for the account (or, if an admin enabled them, a long-lived --api-key)")
    .option("--ttl <duration>", "lifetime (at most the account's token ttl; API keys: up to the gateway's maximum)")
    .option("--api-key", "a long-lived API key (stored hashed, with expiry and last use shown)")
    .option("--description <text>")
    .action(async (name: string, o: { ttl?: string; apiKey?: boolean; description?: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ token: string; id: string; expiresAt: string }>(`/api/v1/serviceaccounts/${encodeURIComponent(name)}/tokens`, {
        ...(o.ttl ? { ttlSeconds: parseDuration(o.ttl) } : {}),
        ...(o.apiKey ? { apiKey: true } : {}),
        ...(o.description ? { description: o.description } : {}),
      });
      print(cmd, r, () => `${r.token}\n`);
      if (!cmd.optsWithGlobals().json) process.stderr.write(`${o.apiKey ? "API key" : "token"} ${r.id} for ${name} expires ${r.expiresAt}\n`);
    });
  sa.command("revoke <name>")
    .description("revoke the account: every token refused, live sessions cut")
    .action(async (name: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ sessionsCut: number }>(`/api/v1/serviceaccounts/${encodeURIComponent(name)}/revoke`);
      print(cmd, r, () => `Service account ${name} revoked; ${r.sessionsCut} live session(s) cut.\n`);
    });
  sa.command("enable <name>").action(async (name: string, _o, cmd: Command) => {
    const r = await (await apiFor(cmd)).post(`/api/v1/serviceaccounts/${encodeURIComponent(name)}/enable`);
    print(cmd, r, () => `Service account ${name} enabled (new tokens needed).\n`);
  });

  const users = program.command("users").description("people known from identity providers");
  users
    .command("list")
    .option("--all", "include deleted users")
    .action(async (o: { all?: boolean }, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ users: User[] }>(`/api/v1/users${o.all ? "?all=true" : ""}`);
      print(cmd, r, () => table(r.users.map((u) => ({ ...u, groups: u.groups.join(","), roles: u.roles.join(","), lastLogin: ago(u.lastLoginAt), state: u.deletedAt ? "deleted" : "active" })), ["name", "provider", "email", "groups", "roles", "lastLogin", "state"]));
    });
  users
    .command("delete <name>")
    .description("delete a user: tokens refused, sign-ins ended, live sessions cut")
    .action(async (name: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).request<{ sessionsCut: number }>("DELETE", `/api/v1/users/${encodeURIComponent(name)}`);
      print(cmd, r, () => `User ${name} deleted; ${r.sessionsCut} live session(s) cut.\n`);
    });

  program
    .command("apikeys")
    .description("list API keys with expiry and last use")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ enabled: boolean; apiKeys: Array<{ id: string; subject: string; expiresAt: string; lastUsedAt: string | null; revokedAt: string | null }> }>("/api/v1/apikeys");
      print(cmd, r, () => `${r.enabled ? "" : "API keys are disabled on this gateway (AIRLOCK_API_KEYS=true enables them)\n"}${table(r.apiKeys.map((k) => ({ ...k, lastUsed: ago(k.lastUsedAt), state: k.revokedAt ? "revoked" : new Date(k.expiresAt) < new Date() ? "expired" : "valid" })), ["id", "subject", "expiresAt", "lastUsed", "state"])}`);
    });

  program
    .command("auth-events")
    .description("sign-ins, issued and revoked tokens, refused credentials with their reasons (admins, auditors)")
    .option("--subject <subject>")
    .option("--type <type>", "login, token, refresh, logout, revoke, delete, reject")
    .option("--outcome <outcome>", "ok or denied")
    .option("--limit <n>", "most recent first", "50")
    .action(async (o: { subject?: string; type?: string; outcome?: string; limit: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.subject ? { subject: o.subject } : {}), ...(o.type ? { type: o.type } : {}), ...(o.outcome ? { outcome: o.outcome } : {}) });
      const r = await (await apiFor(cmd)).get<{ events: AuthEvent[] }>(`/api/v1/auth/events?${q}`);
      print(cmd, r, () => table(r.events.map((e) => ({ ...e, reason: e.reason && e.reason.length > 90 ? `${e.reason.slice(0, 89)}…` : e.reason })), ["at", "type", "outcome", "subject", "via", "code", "clientAddr", "reason"]));
    });
}
