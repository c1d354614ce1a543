import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import { hasRole } from "../auth/principal.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { principalOf } from "./auth.js";
import { IdParam, SessionView } from "./schemas.js";

export interface SessionRoutesOptions {
  sessions: SessionRecorder;
}

type Row = Awaited<ReturnType<SessionRecorder["get"]>>;

function view(r: Row) {
  return {
    id: r.id,
    subject: r.subject,
    connectionName: r.connectionName,
    protocol: r.protocol,
    agent: r.agent?.name ?? null,
    clientAddr: r.clientAddr,
    startedAt: r.startedAt.toISOString(),
    endedAt: r.endedAt?.toISOString() ?? null,
    bytesUp: Number(r.bytesUp),
    bytesDown: Number(r.bytesDown),
    outcome: r.outcome,
    errorCode: r.errorCode,
    error: r.error,
  };
}

export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (app, { sessions }) => {
  app.get(
    "/sessions",
    {
      schema: {
        tags: ["sessions"],
        summary: "List sessions, newest first (admins and auditors see all, others their own)",
        querystring: Type.Object({
          subject: Type.Optional(Type.String()),
          connection: Type.Optional(Type.String()),
          outcome: Type.Optional(Type.String()),
          before: Type.Optional(Type.String({ format: "date-time" })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
        }),
        response: { 200: Type.Object({ sessions: Type.Array(SessionView) }) },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const subject = hasRole(p, "auditor") ? req.query.subject : p.subject;
      return { sessions: (await sessions.list({ ...req.query, subject })).map(view) };
    },
  );

  app.get("/sessions/:id", { schema: { tags: ["sessions"], params: IdParam, response: { 200: SessionView } } }, async (req) => {
    const p = principalOf(req);
    const row = await sessions.get(req.params.id).catch(() => null);
    // Someone else's session looks the same as a missing one.
    if (!row || (!hasRole(p, "auditor") && row.subject !== p.subject)) throw new AirlockError("NOT_FOUND", `no session ${req.params.id}`);
    return view(row);
  });
};
