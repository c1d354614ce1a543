import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { AirlockError } from "@airlock/shared";
import type { Principal } from "../auth/principal.js";
import type { IdentityService } from "../identity/verify.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Routes that need no token (health, CA, OpenAPI). */
    public?: boolean;
  }
}

export interface AuthPluginOptions {
  identity: IdentityService;
}

/** Pulls the bearer token from Authorization (or, for browsers' WebSockets, a subprotocol). */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h?.startsWith("Bearer ")) return h.slice(7).trim();
  return undefined;
}

/** Authenticates every request unless its route is marked public; same validation for REST and WebSocket. */
export const authPlugin = fp<AuthPluginOptions>(async (app: FastifyInstance, opts) => {
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.config?.public) return;
    const via = req.headers.upgrade?.toLowerCase() === "websocket" ? "websocket" : "rest";
    req.principal = await opts.identity.verify(bearer(req), { via, clientAddr: req.ip });
  });
});

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AirlockError("UNAUTHENTICATED");
  return req.principal;
}
