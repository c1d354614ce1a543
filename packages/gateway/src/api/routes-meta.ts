import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AIRLOCK_VERSION } from "@airlock/shared";
import { principalOf } from "./auth.js";

export interface MetaRoutesOptions {
  caPem: string | null;
  ready: () => boolean;
  /** Where the Postgres front door is reached, and the CA of its certificate (null when it is off). */
  postgres?: () => { host: string; port: number; caPem: string } | null;
}

export const metaRoutes: FastifyPluginAsyncTypebox<MetaRoutesOptions> = async (app, opts) => {
  app.get("/healthz", { config: { public: true }, schema: { tags: ["meta"], hide: true } }, async (_req, reply) =>
    opts.ready() ? { status: "ok", version: AIRLOCK_VERSION } : reply.status(503).send({ status: "starting" }),
  );

  app.get(
    "/api/v1/ca",
    { config: { public: true }, schema: { tags: ["meta"], summary: "The CA that signs the agent port's certificate (PEM)" } },
    async (_req, reply) => (opts.caPem ? reply.type("application/x-pem-file").send(opts.caPem) : reply.status(404).send()),
  );

  app.get(
    "/api/v1/meta",
    { config: { public: true }, schema: { tags: ["meta"], summary: "Version and the native front doors' addresses (for clients such as airlock exec)" } },
    async () => ({ version: AIRLOCK_VERSION, postgres: opts.postgres?.() ?? null }),
  );

  app.get(
    "/api/v1/whoami",
    {
      schema: {
        tags: ["meta"],
        summary: "Who the caller is: identity, how it was established, groups, roles, expiry, connection scope",
        response: {
          200: Type.Object({
            subject: Type.String(),
            kind: Type.String(),
            method: Type.String(),
            provider: Type.Union([Type.String(), Type.Null()]),
            roles: Type.Array(Type.String()),
            groups: Type.Array(Type.String()),
            connections: Type.Union([Type.Array(Type.String()), Type.Null()]),
            tokenId: Type.Union([Type.String(), Type.Null()]),
            expiresAt: Type.String(),
          }),
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      return { subject: p.subject, kind: p.kind, method: p.method, provider: p.provider ?? null, roles: p.roles, groups: p.groups, connections: p.connections ?? null, tokenId: p.tokenId, expiresAt: p.expiresAt.toISOString() };
    },
  );
};
