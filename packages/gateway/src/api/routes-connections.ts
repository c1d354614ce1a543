import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { mayUseConnection, requireConnection, requireRole } from "../auth/principal.js";
import type { ConnectionInput, ConnectionService } from "../connections/service.js";
import { principalOf } from "./auth.js";
import { ConnectionCreate, ConnectionView, NameParam } from "./schemas.js";

export interface ConnectionRoutesOptions {
  connections: ConnectionService;
}

export const connectionRoutes: FastifyPluginAsyncTypebox<ConnectionRoutesOptions> = async (app, { connections }) => {
  // Anyone who may connect can see what exists; only admins change it.
  app.get("/connections", { schema: { tags: ["connections"], response: { 200: Type.Object({ connections: Type.Array(ConnectionView) }) } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, "user", "auditor");
    // A scoped identity (service account) sees only the connections it may use.
    return { connections: (await connections.list()).filter((c) => mayUseConnection(p, c.name)) };
  });

  app.get("/connections/:name", { schema: { tags: ["connections"], params: NameParam, response: { 200: ConnectionView } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, "user", "auditor");
    const c = await connections.get(req.params.name);
    requireConnection(p, c.name);
    return c;
  });

  app.post("/connections", { schema: { tags: ["connections"], body: ConnectionCreate, response: { 201: ConnectionView } } }, async (req, reply) => {
    requireRole(principalOf(req), "admin");
    reply.status(201);
    return connections.create(req.body as ConnectionInput);
  });

  app.patch(
    "/connections/:name",
    { schema: { tags: ["connections"], params: NameParam, body: Type.Partial(ConnectionCreate), response: { 200: ConnectionView } } },
    async (req) => {
      requireRole(principalOf(req), "admin");
      return connections.update(req.params.name, req.body as Partial<ConnectionInput>);
    },
  );

  app.delete("/connections/:name", { schema: { tags: ["connections"], params: NameParam, response: { 204: Type.Null({ description: "deleted" }) } } }, async (req, reply) => {
    requireRole(principalOf(req), "admin");
    await connections.delete(req.params.name);
    return reply.status(204).send();
  });
};
