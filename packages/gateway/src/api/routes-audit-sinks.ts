import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type TSchema } from "@sinclair/typebox";
import { requireRole } from "../auth/principal.js";
import type { SinkStatusView } from "../audit/siem/index.js";
import { principalOf } from "./auth.js";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const SinkStatus = Type.Object({
  name: Type.String(),
  type: Nullable(Type.Union([Type.Literal("webhook"), Type.Literal("syslog")])),
  target: Nullable(Type.String({ description: "scheme, host and port only" })),
  configured: Type.Boolean(),
  enabled: Type.Boolean(),
  pending: Type.Integer({ description: "events waiting in the outbox" }),
  oldestPendingSeconds: Nullable(Type.Number()),
  lastError: Nullable(Type.String()),
  lastErrorAt: Nullable(Type.String({ format: "date-time" })),
  delivered: Type.Integer({ description: "events this gateway process delivered since it started" }),
  lastDeliveredAt: Nullable(Type.String({ format: "date-time" })),
});

export interface AuditSinkRoutesOptions {
  siem: { status(): Promise<SinkStatusView[]> };
}

/**
 * SIEM delivery status for admins and auditors: per sink what waits in the
 * outbox, how old the oldest event is, why delivery last failed, and what this
 * gateway delivered since it started. Targets show scheme, host and port only.
 */
export const auditSinkRoutes: FastifyPluginAsyncTypebox<AuditSinkRoutesOptions> = async (app, { siem }) => {
  app.get(
    "/audit/sinks",
    {
      schema: {
        tags: ["audit"],
        summary: "SIEM sinks: pending events, oldest pending age, last error, delivered since start",
        response: { 200: Type.Object({ sinks: Type.Array(SinkStatus) }, { description: "one entry per sink, configured or left from an earlier configuration" }) },
      },
    },
    async (req) => {
      requireRole(principalOf(req), "auditor");
      return { sinks: await siem.status() };
    },
  );
};
