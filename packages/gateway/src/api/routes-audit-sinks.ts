import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type TSchema } from "@sinclair/typebox";
import { requireRole } from "../auth/principal.js";
import type { SiemForwarding } from "../audit/siem/index.js";
import { principalOf } from "./auth.js";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const SinkStatus = Type.Object({
  name: Type.String(),
  type: Nullable(Type.Union([Type.Literal("webhook"), Type.Literal("syslog")])),
  target: Nullable(Type.String({ description: "scheme, host and port only" })),
  configured: Type.Boolean({ description: "this gateway delivers it" }),
  enabled: Type.Boolean({ description: "the triggers queue events for it" }),
  pending: Type.Integer({ description: "events waiting in the outbox (dead letters not counted)" }),
  oldestPendingSeconds: Nullable(Type.Number()),
  lastError: Nullable(Type.String()),
  lastErrorAt: Nullable(Type.String({ format: "date-time" })),
  deadLettered: Type.Integer({ description: "events the receiver kept refusing; sent again only after POST …/retry" }),
  deadLetterError: Nullable(Type.String({ description: "why the newest dead letter was refused" })),
  delivered: Type.Integer({ description: "events this gateway process delivered since it started" }),
  lastDeliveredAt: Nullable(Type.String({ format: "date-time" })),
});

const NameParam = Type.Object({ name: Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,62}$" }) });

export interface AuditSinkRoutesOptions {
  siem: Pick<SiemForwarding, "status" | "setEnabled" | "retryDeadLetters">;
}

/**
 * SIEM delivery status for admins and auditors: per sink what waits in the
 * outbox, how old the oldest event is, why delivery last failed, how many
 * events were dead-lettered, and what this gateway delivered since it
 * started. Targets show scheme, host and port only. Admins can make a sink's
 * dead letters due again, and stop or start the queueing for a sink (on every
 * gateway of the store).
 */
export const auditSinkRoutes: FastifyPluginAsyncTypebox<AuditSinkRoutesOptions> = async (app, { siem }) => {
  app.get(
    "/audit/sinks",
    {
      schema: {
        tags: ["audit"],
        summary: "SIEM sinks: pending events, oldest pending age, last error, dead letters, delivered since start",
        response: { 200: Type.Object({ sinks: Type.Array(SinkStatus) }, { description: "one entry per sink in the store or configured on this gateway" }) },
      },
    },
    async (req) => {
      requireRole(principalOf(req), "auditor");
      return { sinks: await siem.status() };
    },
  );

  app.post(
    "/audit/sinks/:name/retry",
    {
      schema: {
        tags: ["audit"],
        summary: "make a sink's dead-lettered events due again (admins)",
        params: NameParam,
        response: { 200: Type.Object({ name: Type.String(), requeued: Type.Integer({ description: "dead letters made due again" }) }, { description: "the sink's dead letters are due again, with a fresh count of refusals" }) },
      },
    },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, "admin");
      return { name: req.params.name, requeued: await siem.retryDeadLetters(req.params.name, p.subject) };
    },
  );

  for (const [action, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    app.post(
      `/audit/sinks/:name/${action}`,
      {
        schema: {
          tags: ["audit"],
          summary: enabled ? "queue events for a sink again (admins)" : "stop queueing events for a sink; what is queued is still delivered (admins)",
          params: NameParam,
          response: { 200: Type.Object(SinkStatus.properties, { description: "the sink's status after the change" }) },
        },
      },
      async (req) => {
        const p = principalOf(req);
        requireRole(p, "admin");
        return siem.setEnabled(req.params.name, enabled, p.subject);
      },
    );
  }
};
