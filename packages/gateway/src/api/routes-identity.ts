import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import { requireRole, ROLES, type Role } from "../auth/principal.js";
import type { AuthEventLog } from "../identity/events.js";
import type { ServiceAccountService } from "../identity/service-accounts.js";
import type { UserService } from "../identity/users.js";
import type { IdentityService } from "../identity/verify.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { principalOf } from "./auth.js";

export interface IdentityRoutesOptions {
  tokens: AccessTokenService;
  users: UserService;
  serviceAccounts: ServiceAccountService;
  events: AuthEventLog;
  identity: IdentityService;
  sessions: SessionRecorder;
}

const Roles = Type.Array(Type.Union(ROLES.map((r) => Type.Literal(r))), { minItems: 1 });
const Name = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
const iso = (d: Date | null) => d?.toISOString() ?? null;

/** Admin management of people and machine identities, and the auth audit trail (admins and auditors). */
export const identityRoutes: FastifyPluginAsyncTypebox<IdentityRoutesOptions> = async (app, o) => {
  const cut = (tokenIds: string[], subject: string, err: AirlockError) => tokenIds.reduce((n, id) => n + o.sessions.abortByToken(id, err), 0) + o.sessions.abortBySubject(subject, err);

  app.post(
    "/serviceaccounts",
    {
      schema: {
        tags: ["identity"],
        summary: "Create a service account (machine / AI agent identity) and mint its first short-lived token",
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 63 }),
            groups: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 64 })),
            roles: Type.Optional(Roles),
            connections: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 256 }),
            tokenTtlSeconds: Type.Optional(Type.Integer({ minimum: 60 })),
            externalIds: Type.Optional(Type.Array(Type.String({ minLength: 3, maxLength: 256 }), { maxItems: 16 })),
            description: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      requireRole(p, "admin");
      const sa = await o.serviceAccounts.create({ ...req.body, roles: req.body.roles as Role[] | undefined, createdBy: p.subject });
      // Machine JWTs already seen under their own name act as the account from now on.
      if (sa.externalIds.length) o.identity.forget(sa.name);
      const t = await o.serviceAccounts.mintToken(sa.name, { createdBy: p.subject });
      await o.events.record({ type: "token", outcome: "ok", subject: sa.name, via: "admin", reason: `service account created by ${p.subject}`, clientAddr: req.ip, tokenId: t.id });
      reply.status(201);
      return { ...view(sa), token: t.token, tokenId: t.id, expiresAt: t.expiresAt.toISOString() };
    },
  );

  app.get("/serviceaccounts", { schema: { tags: ["identity"] } }, async (req) => {
    requireRole(principalOf(req), "admin", "auditor");
    return { serviceAccounts: (await o.serviceAccounts.list()).map((sa) => ({ ...view(sa), activeTokens: sa._count.tokens })) };
  });

  app.post(
    "/serviceaccounts/:name/tokens",
    {
      schema: {
        tags: ["identity"],
        summary: "Mint a short-lived token (or, when enabled, a long-lived API key) for a service account",
        params: Name,
        body: Type.Optional(Type.Object({ ttlSeconds: Type.Optional(Type.Integer({ minimum: 60 })), apiKey: Type.Optional(Type.Boolean()), description: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false })),
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      requireRole(p, "admin");
      const t = await o.serviceAccounts.mintToken(req.params.name, { ...req.body, createdBy: p.subject });
      await o.events.record({ type: "token", outcome: "ok", subject: req.params.name, via: "admin", reason: `${req.body?.apiKey ? "API key" : "token"} minted by ${p.subject}`, clientAddr: req.ip, tokenId: t.id });
      reply.status(201);
      return { token: t.token, id: t.id, type: req.body?.apiKey ? "api_key" : "access", expiresAt: t.expiresAt.toISOString() };
    },
  );

  app.post("/serviceaccounts/:name/revoke", { schema: { tags: ["identity"], summary: "Revoke a service account: all its tokens refused, live sessions cut", params: Name } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, "admin");
    const { tokenIds } = await o.serviceAccounts.revoke(req.params.name);
    o.identity.forget(req.params.name);
    await o.events.record({ type: "revoke", outcome: "ok", subject: req.params.name, via: "admin", reason: `service account revoked by ${p.subject}`, clientAddr: req.ip });
    return { name: req.params.name, sessionsCut: cut(tokenIds, req.params.name, new AirlockError("IDENTITY_DISABLED", `service account ${req.params.name} was revoked`)) };
  });

  app.post("/serviceaccounts/:name/enable", { schema: { tags: ["identity"], params: Name } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, "admin");
    await o.serviceAccounts.enable(req.params.name);
    o.identity.forget(req.params.name);
    await o.events.record({ type: "token", outcome: "ok", subject: req.params.name, via: "admin", reason: `service account enabled by ${p.subject}`, clientAddr: req.ip });
    return { name: req.params.name };
  });

  app.get("/users", { schema: { tags: ["identity"], querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }) } }, async (req) => {
    requireRole(principalOf(req), "admin", "auditor");
    const users = await o.users.list({ includeDeleted: req.query.all });
    return {
      users: users.map((u) => ({ id: u.id, name: u.name, provider: u.provider, email: u.email, displayName: u.displayName, groups: u.groups, roles: u.roles, lastLoginAt: iso(u.lastLoginAt), deletedAt: iso(u.deletedAt), createdAt: iso(u.createdAt) })),
    };
  });

  app.delete("/users/:name", { schema: { tags: ["identity"], summary: "Delete a user: tokens refused, sign-ins ended, live sessions cut", params: Name } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, "admin");
    const { tokenIds } = await o.users.delete(req.params.name);
    o.identity.forget(req.params.name);
    await o.events.record({ type: "delete", outcome: "ok", subject: req.params.name, via: "admin", reason: `user deleted by ${p.subject}`, clientAddr: req.ip });
    return { name: req.params.name, sessionsCut: cut(tokenIds, req.params.name, new AirlockError("IDENTITY_DISABLED", `user ${req.params.name} was deleted`)) };
  });

  app.get("/apikeys", { schema: { tags: ["identity"], summary: "API keys with expiry and last use" } }, async (req) => {
    requireRole(principalOf(req), "admin", "auditor");
    const keys = await o.tokens.list({ type: "api_key", includeExpired: true });
    return {
      enabled: o.tokens.apiKeysEnabled,
      apiKeys: keys.map((k) => ({ id: k.id, subject: k.subject, description: k.description, createdBy: k.createdBy, expiresAt: iso(k.expiresAt), lastUsedAt: iso(k.lastUsedAt), revokedAt: iso(k.revokedAt), createdAt: iso(k.createdAt) })),
    };
  });

  app.get(
    "/auth/events",
    {
      schema: {
        tags: ["identity"],
        summary: "Sign-ins, token issuance, logouts, revocations and refused credentials (admins, auditors)",
        querystring: Type.Object({
          subject: Type.Optional(Type.String()),
          type: Type.Optional(Type.String()),
          outcome: Type.Optional(Type.String()),
          code: Type.Optional(Type.String()),
          since: Type.Optional(Type.String({ format: "date-time" })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
      },
    },
    async (req) => {
      requireRole(principalOf(req), "admin", "auditor");
      await o.events.flush();
      const q = req.query;
      const events = await o.events.list({ ...q, since: q.since ? new Date(q.since) : undefined });
      return { events: events.map((e) => ({ ...e, at: e.at.toISOString() })) };
    },
  );
};

function view(sa: { id: string; name: string; groups: string[]; roles: string[]; connections: string[]; tokenTtlSeconds: number; externalIds: string[]; description: string | null; createdBy: string | null; revokedAt: Date | null; createdAt: Date }) {
  return { id: sa.id, name: sa.name, groups: sa.groups, roles: sa.roles, connections: sa.connections, tokenTtlSeconds: sa.tokenTtlSeconds, externalIds: sa.externalIds, description: sa.description, createdBy: sa.createdBy, revokedAt: iso(sa.revokedAt), createdAt: iso(sa.createdAt) };
}
