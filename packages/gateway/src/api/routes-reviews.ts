import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import { hasRole, requireConnection } from "../auth/principal.js";
import type { ConnectionService } from "../connections/service.js";
import type { ReviewService, ReviewView } from "../reviews/service.js";
import type { ReviewRequirements } from "../reviews/requirements.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { principalOf } from "./auth.js";
/** Review ids are UUIDs: anything else is a 400 here, not a database error later. */
const IdParam = Type.Object({ id: Type.String({ pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$" }) });

export interface ReviewRoutesOptions {
  reviews: ReviewService;
  sessions: SessionRecorder;
  connections: ConnectionService;
  /** Who decides access requests, how many, how long they wait. */
  access: ReviewRequirements;
}

/**
 * The reviewers' side: list what waits for me, look at one, approve or reject
 * it; the requester sees and can cancel their own. Admins and auditors see all.
 * Every decision is recorded on the review itself (who, in which groups, when, why).
 */
export const reviewRoutes: FastifyPluginAsyncTypebox<ReviewRoutesOptions> = async (app, { reviews, sessions, connections, access }) => {
  const visible = (r: ReviewView, p: ReturnType<typeof principalOf>) =>
    hasRole(p, "auditor") || r.requester === p.subject || (hasRole(p, "reviewer") && p.groups.some((g) => r.reviewerGroups.includes(g)));

  app.get(
    "/reviews",
    {
      schema: {
        tags: ["reviews"],
        summary: "Reviews the caller may see: their own, those they may decide, or all (admins, auditors)",
        querystring: Type.Object({ status: Type.Optional(Type.String()), mine: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }),
      },
    },
    async (req) => {
      const p = principalOf(req);
      const list = await reviews.list({ status: req.query.status, requester: req.query.mine ? p.subject : undefined, limit: req.query.limit });
      return { reviews: list.filter((r) => visible(r, p)).map((r) => ({ ...r, canDecide: r.status === "pending" && reviews.eligibility(r, p) === null })) };
    },
  );

  app.get("/reviews/:id", { schema: { tags: ["reviews"], params: IdParam } }, async (req) => {
    const p = principalOf(req);
    const r = await reviews.get(req.params.id);
    if (!visible(r, p)) throw new AirlockError("NOT_FOUND", `no review ${req.params.id}`);
    return { ...r, canDecide: r.status === "pending" && reviews.eligibility(r, p) === null };
  });

  app.post(
    "/reviews/:id/approve",
    {
      schema: {
        tags: ["reviews"],
        summary: "Approve exactly what the review shows (once by default; or for the session/identity, N uses, a window)",
        params: IdParam,
        body: Type.Optional(
          Type.Object(
            {
              reason: Type.Optional(Type.String({ maxLength: 1000 })),
              scope: Type.Optional(Type.Union([Type.Literal("once"), Type.Literal("session"), Type.Literal("identity")])),
              uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
              windowSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 7 * 86400 })),
            },
            { additionalProperties: false },
          ),
        ),
      },
    },
    async (req) => {
      const p = principalOf(req);
      return reviews.approve(req.params.id, p, req.body ?? {});
    },
  );

  app.post(
    "/reviews/:id/reject",
    { schema: { tags: ["reviews"], params: IdParam, body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false }) } },
    async (req) => {
      const p = principalOf(req);
      return reviews.reject(req.params.id, p, req.body.reason);
    },
  );

  app.post(
    "/access-requests",
    {
      schema: {
        tags: ["reviews"],
        summary: "Ask for temporary access: a role (or group) on one connection, for a while, with a reason; reviewers decide",
        body: Type.Object(
          {
            connection: Type.String({ minLength: 1, maxLength: 128 }),
            role: Type.String({ minLength: 1, maxLength: 128 }),
            durationSeconds: Type.Integer({ minimum: 60, maximum: 7 * 86400 }),
            reason: Type.String({ minLength: 1, maxLength: 1000 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      // The connection must exist and be one the caller may name (service accounts are scoped); stored by its real name.
      const c = await connections.resolve(req.body.connection);
      requireConnection(p, c.name);
      const r = await reviews.createAccessRequest({ principal: p, connectionName: c.name, role: req.body.role, durationSeconds: req.body.durationSeconds, reason: req.body.reason, requirements: access });
      reply.status(201);
      return r;
    },
  );

  app.post(
    "/reviews/:id/revoke",
    { schema: { tags: ["reviews"], summary: "End an access grant early: its live sessions are cut", params: IdParam, body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false }) } },
    async (req) => {
      const p = principalOf(req);
      const r = await reviews.revokeGrant(req.params.id, p, req.body.reason);
      const sessionsCut = sessions.abortByGrant(r.id, new AirlockError("PERMISSION_DENIED", `the access grant ${r.id} was revoked by ${p.subject}`));
      return { ...r, sessionsCut };
    },
  );

  app.post(
    "/reviews/:id/cancel",
    { schema: { tags: ["reviews"], params: IdParam, body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false })) } },
    async (req) => {
      const p = principalOf(req);
      return reviews.cancel(req.params.id, p, req.body?.reason ?? `cancelled by ${p.subject}`);
    },
  );
};
