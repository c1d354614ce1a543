import formbody from "@fastify/formbody";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import type { AuthEventLog } from "../identity/events.js";
import type { LoginService } from "../identity/logins.js";
import type { ServiceAccountService } from "../identity/service-accounts.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { principalOf } from "./auth.js";

export interface AuthRoutesOptions {
  logins: LoginService;
  events: AuthEventLog;
  serviceAccounts: ServiceAccountService;
  sessions: SessionRecorder;
}

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal("Bearer"),
  expires_in: Type.Integer(),
  expires_at: Type.String(),
  refresh_token: Type.Optional(Type.String()),
  subject: Type.String(),
  roles: Type.Array(Type.String()),
  groups: Type.Array(Type.String()),
  provider: Type.String(),
});

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * Sign-in endpoints are public and each costs a store write or an IdP call:
 * a fixed window per client address keeps one client from flooding the store
 * or getting the gateway's IdP client throttled. Bounded: the table is dropped
 * when it grows past MAX_CLIENTS (a flood from many addresses resets it, which
 * at worst lets through one more window each).
 */
const WINDOW_MS = 60_000;
const PER_WINDOW = 60;
const MAX_CLIENTS = 10_000;
function limiter() {
  const seen = new Map<string, { start: number; n: number }>();
  return (ip: string) => {
    const now = Date.now();
    let e = seen.get(ip);
    if (!e || now - e.start > WINDOW_MS) {
      if (seen.size >= MAX_CLIENTS) seen.clear();
      e = { start: now, n: 0 };
      seen.set(ip, e);
    }
    if (++e.n > PER_WINDOW) throw new AirlockError("RATE_LIMITED", `too many sign-in requests from ${ip}; wait a minute`);
  };
}

/**
 * Sign-in endpoints (public: they are how a token is obtained) and logout /
 * renew (authenticated). Browser flows end with a redirect to the client's
 * loopback address carrying a one-time login code that only the client that
 * started the flow can redeem (PKCE between client and gateway).
 */
export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (app, { logins, events, serviceAccounts, sessions }) => {
  await app.register(formbody, { bodyLimit: 512 * 1024 });
  const pub = { public: true };
  const limit = limiter();
  app.addHook("onRequest", async (req) => {
    if (req.method === "POST" && req.routeOptions.config?.public) limit(req.ip);
  });

  /** Refusals before a sign-in is identified (unknown state, replay) are recorded here. */
  const refused = (err: unknown, via: string, clientAddr: string) => {
    const e = AirlockError.from(err, "LOGIN_FAILED");
    if (e.status === 401) events.note({ type: "login", outcome: "denied", via, code: e.code, reason: e.message, clientAddr });
    return e;
  };

  app.get("/auth/providers", { config: pub, schema: { tags: ["auth"], summary: "Sign-in providers configured on this gateway" } }, async () => ({ providers: logins.providers() }));

  app.post(
    "/auth/login",
    {
      config: pub,
      schema: {
        tags: ["auth"],
        summary: "Start a browser sign-in (OIDC code + PKCE, or SAML): returns the identity provider URL to open",
        body: Type.Object(
          { provider: Type.String({ minLength: 1, maxLength: 64 }), redirectUri: Type.String({ minLength: 1, maxLength: 2048 }), codeChallenge: Type.String({ minLength: 43, maxLength: 128 }), state: Type.Optional(Type.String({ maxLength: 256 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ authorizationUrl: Type.String(), expiresAt: Type.String() }) },
      },
    },
    async (req) => logins.start({ provider: req.body.provider, redirectUri: req.body.redirectUri, codeChallenge: req.body.codeChallenge, clientState: req.body.state }),
  );

  app.get("/auth/oidc/callback", { config: pub, schema: { tags: ["auth"], summary: "OIDC redirect URI (register this at the identity provider)" } }, async (req, reply) => {
    const url = new URL(req.url, logins.publicUrl());
    try {
      return reply.redirect(await logins.oidcCallback(url, req.ip), 302);
    } catch (err) {
      throw refused(err, "oidc", req.ip);
    }
  });

  app.post(
    "/auth/saml/:provider/acs",
    { config: pub, schema: { tags: ["auth"], summary: "SAML Assertion Consumer Service (HTTP-POST binding)", params: Type.Object({ provider: Type.String() }) } },
    async (req, reply) => {
      const body = (req.body ?? {}) as { SAMLResponse?: string; RelayState?: string };
      try {
        return reply.redirect(await logins.samlAcs(req.params.provider, body, req.ip), 302);
      } catch (err) {
        throw refused(err, "saml", req.ip);
      }
    },
  );

  app.get(
    "/auth/saml/:provider/metadata",
    { config: pub, schema: { tags: ["auth"], summary: "SAML service provider metadata", params: Type.Object({ provider: Type.String() }) } },
    async (req, reply) => reply.type("application/samlmetadata+xml").send(logins.samlMetadata(req.params.provider)),
  );

  app.post(
    "/auth/device",
    {
      config: pub,
      schema: {
        tags: ["auth"],
        summary: "Start a device sign-in (for shells without a browser)",
        body: Type.Object({ provider: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
      },
    },
    async (req) => logins.startDevice(req.body.provider),
  );

  app.post(
    "/auth/token",
    {
      config: pub,
      schema: {
        tags: ["auth"],
        summary: "Trade a login code (+ PKCE verifier), a device code or a refresh token for a gateway access token",
        body: Type.Object(
          {
            grant_type: Type.Union([Type.Literal("authorization_code"), Type.Literal(DEVICE_GRANT), Type.Literal("refresh_token")]),
            code: Type.Optional(Type.String({ maxLength: 256 })),
            code_verifier: Type.Optional(Type.String({ minLength: 43, maxLength: 128 })),
            device_code: Type.Optional(Type.String({ maxLength: 256 })),
            refresh_token: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: TokenResponse },
      },
    },
    async (req) => {
      const b = req.body;
      if (b.grant_type === "authorization_code") {
        if (!b.code || !b.code_verifier) throw new AirlockError("INVALID_ARGUMENT", "authorization_code needs code and code_verifier");
        return logins.exchangeCode(b.code, b.code_verifier, req.ip);
      }
      if (b.grant_type === "refresh_token") {
        if (!b.refresh_token) throw new AirlockError("INVALID_ARGUMENT", "refresh_token grant needs refresh_token");
        return logins.refresh(b.refresh_token, req.ip);
      }
      if (!b.device_code) throw new AirlockError("INVALID_ARGUMENT", "device_code grant needs device_code");
      return logins.pollDevice(b.device_code, req.ip);
    },
  );

  app.post(
    "/auth/logout",
    { schema: { tags: ["auth"], summary: "End the caller's sign-in: its tokens are refused and its live sessions cut", response: { 200: Type.Object({ tokensRevoked: Type.Integer(), sessionsCut: Type.Integer() }) } } },
    async (req) => {
      const p = principalOf(req);
      const ids = await logins.logout(p, req.ip);
      const err = new AirlockError("TOKEN_REVOKED", `${p.subject} signed out`);
      const sessionsCut = ids.reduce((n, id) => n + sessions.abortByToken(id, err), 0);
      return { tokensRevoked: ids.length, sessionsCut };
    },
  );

  app.post(
    "/auth/renew",
    {
      schema: {
        tags: ["auth"],
        summary: "A service account renews its own short-lived token (same scope, fresh expiry)",
        body: Type.Optional(Type.Object({ ttlSeconds: Type.Optional(Type.Integer({ minimum: 60 })) }, { additionalProperties: false })),
        response: { 200: Type.Object({ token: Type.String(), id: Type.String(), expiresAt: Type.String() }) },
      },
    },
    async (req) => {
      const p = principalOf(req);
      if (p.kind !== "service" || p.method !== "service") throw new AirlockError("PERMISSION_DENIED", "only service account tokens renew themselves; people sign in again or use their refresh token");
      const r = await serviceAccounts.mintToken(p.subject, { ttlSeconds: req.body?.ttlSeconds, createdBy: p.subject, description: "renewed" });
      await events.record({ type: "token", outcome: "ok", subject: p.subject, via: "rest", clientAddr: req.ip, tokenId: r.id, reason: "renewed" });
      return { token: r.token, id: r.id, expiresAt: r.expiresAt.toISOString() };
    },
  );
};
