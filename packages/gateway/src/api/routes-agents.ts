import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { AgentService } from "../agents/service.js";
import { requireRole } from "../auth/principal.js";
import { principalOf } from "./auth.js";
import { AgentView, NameParam } from "./schemas.js";

export interface AgentRoutesOptions {
  agents: AgentService;
  /** What agents should dial, and how they pin our CA: printed with the enrollment token. */
  agentEndpoint: () => { address: string; caPin: string | null };
}

export const agentRoutes: FastifyPluginAsyncTypebox<AgentRoutesOptions> = async (app, { agents, agentEndpoint }) => {
  app.addHook("preHandler", async (req) => requireRole(principalOf(req), "admin"));

  app.post(
    "/agents",
    {
      schema: {
        tags: ["agents"],
        summary: "Create an agent and its one-time enrollment token",
        body: Type.Object(
          { name: Type.String(), group: Type.Optional(Type.String()), enrollmentTtlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            agent: AgentView,
            enrollmentToken: Type.String({ description: "shown once; only its hash is stored" }),
            expiresAt: Type.String(),
            gateway: Type.String(),
            caPin: Type.Union([Type.String(), Type.Null()]),
            command: Type.String(),
          }),
        },
      },
    },
    async (req, reply) => {
      const r = await agents.create(req.body.name, req.body.group, req.body.enrollmentTtlSeconds);
      const ep = agentEndpoint();
      const pin = ep.caPin ? ` --ca-pin ${ep.caPin}` : "";
      reply.status(201);
      return {
        ...r,
        expiresAt: r.expiresAt.toISOString(),
        gateway: ep.address,
        caPin: ep.caPin,
        command: `airlock agent --gateway ${ep.address} --token ${r.enrollmentToken}${pin}`,
      };
    },
  );

  app.get("/agents", { schema: { tags: ["agents"], response: { 200: Type.Object({ agents: Type.Array(AgentView) }) } } }, async () => ({
    agents: await agents.list(),
  }));

  app.get("/agents/:name", { schema: { tags: ["agents"], params: NameParam, response: { 200: AgentView } } }, async (req) => agents.get(req.params.name));

  app.post(
    "/agents/:name/revoke",
    { schema: { tags: ["agents"], summary: "Revoke an agent and cut its links at once", params: NameParam, response: { 200: AgentView } } },
    async (req) => agents.revoke(req.params.name),
  );

  app.delete("/agents/:name", { schema: { tags: ["agents"], params: NameParam, response: { 204: Type.Null({ description: "deleted; its links are cut" }) } } }, async (req, reply) => {
    await agents.delete(req.params.name);
    return reply.status(204).send();
  });
};
