import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import { hasRole, requireRole, ROLES, type Role } from "../auth/principal.js";
import type { AuthEventLog } from "../identity/events.js";
import type { ServiceAccountService } from "../identity/service-accounts.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { principalOf } from "./auth.js";
import { IdParam, TokenView } from "./schemas.js";

export interface TokenRoutesOptions {
  tokens: AccessTokenService;
  sessions: SessionRecorder;
  events: AuthEventLog;
  serviceAccounts: ServiceAccountService;
}

const Roles = Type.Array(Type.Union(ROLES.map((r) => Type.Literal(r))), { minItems: 1 });

export const tokenRoutes: FastifyPluginAsyncTypebox<TokenRoutesOptions> = async (app, { tokens, sessions, events, serviceAccounts }) => {
  app.post(
    "/tokens",
    {
      schema: {
        tags: ["tokens"],
        summary: "Mint a short-lived access token for a user or service account (admin)",
        body: Type.Object(
          {
            subject: Type.String({ minLength: 1, maxLength: 128 }),
            roles: Type.Optional(Roles),
            groups: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 64 })),
            kind: Type.Optional(Type.Union([Type.Literal("user"), Type.Literal("service")])),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
            description: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ id: Type.String(), token: Type.String(), subject: Type.String(), roles: Type.Array(Type.String()), groups: Type.Array(Type.String()), expiresAt: Type.String() }) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      requireRole(p, "admin");
      const roles = (req.body.roles ?? ["user"]) as Role[];
      // A service account's tokens come from the account (scope, revocation), not from here.
      if (await serviceAccounts.exists(req.body.subject)) throw new AirlockError("INVALID_ARGUMENT", `${req.body.subject} is a service account: use airlock serviceaccounts token ${req.body.subject}`);
      const r = await tokens.mint({ ...req.body, roles, createdBy: p.subject });
      await events.record({ type: "token", outcome: "ok", subject: req.body.subject, via: "admin", reason: `minted by ${p.subject}`, clientAddr: req.ip, tokenId: r.id });
      reply.status(201);
      return { id: r.id, token: r.token, subject: req.body.subject, roles, groups: req.body.groups ?? [], expiresAt: r.expiresAt.toISOString() };
    },
  );

  app.get(
    "/tokens",
    {
      schema: {
        tags: ["tokens"],
        querystring: Type.Object({ subject: Type.Optional(Type.String()), all: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ tokens: Type.Array(TokenView) }) },
      },
    },
    async (req) => {
      const p = principalOf(req);
      // Non-admins see only their own tokens.
      const subject = hasRole(p, "admin") ? req.query.subject : p.subject;
      return { tokens: await tokens.list({ subject, includeExpired: req.query.all }) };
    },
  );

  app.post(
    "/tokens/:id/revoke",
    { schema: { tags: ["tokens"], summary: "Revoke a token and cut its live sessions", params: IdParam, response: { 200: Type.Object({ id: Type.String(), sessionsCut: Type.Integer() }) } } },
    async (req) => {
      const p = principalOf(req);
      const owned = (await tokens.get(req.params.id))?.subject === p.subject;
      if (!owned) requireRole(p, "admin");
      const { subject } = await tokens.revoke(req.params.id);
      await events.record({ type: "revoke", outcome: "ok", subject, via: "rest", reason: `revoked by ${p.subject}`, clientAddr: req.ip, tokenId: req.params.id });
      const sessionsCut = sessions.abortByToken(req.params.id, new AirlockError("TOKEN_REVOKED", "the access token of this session was revoked"));
      return { id: req.params.id, sessionsCut };
    },
  );
};
