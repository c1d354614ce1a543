import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { AirlockError } from "@airlock/shared";
import { hasRole } from "../auth/principal.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import type { StatementLog, StatementRow } from "../sessions/statements.js";
import { parseFilter, searchSessions, visibleFilter } from "../audit/search.js";
import type { Store } from "../store/index.js";
import { FilterProperties, PageProperties, SessionHitView, sessionHitJson } from "./audit-filters.js";
import { principalOf } from "./auth.js";
import { IdParam, SessionView, StatementView } from "./schemas.js";

export interface SessionRoutesOptions {
  sessions: SessionRecorder;
  /** Searched directly (audit/search.ts). */
  store: Store;
  /** Statement records (Postgres front door). Without it, session views carry no statements. */
  statements?: StatementLog;
}

type Row = Awaited<ReturnType<SessionRecorder["get"]>>;

/** Statements embedded in GET /sessions/:id; the rest are paged from /sessions/:id/statements. */
const EMBEDDED_STATEMENTS = 1000;

const Nullable = <T extends import("@sinclair/typebox").TSchema>(t: T) => Type.Union([t, Type.Null()]);


const SessionDetail = Type.Composite([
  SessionView,
  Type.Object({
    statements: Type.Optional(Type.Array(StatementView, { description: `the first ${EMBEDDED_STATEMENTS}, by seq` })),
    statementsTruncated: Type.Optional(Type.Boolean({ description: "more statements than embedded: page them from /sessions/{id}/statements" })),
    statementCounts: Type.Optional(Type.Object({ total: Type.Integer(), denied: Type.Integer() })),
  }),
]);

function view(r: Row) {
  return {
    id: r.id,
    subject: r.subject,
    subjectKind: r.subjectKind,
    authMethod: r.authMethod,
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

const statementView = (s: StatementRow) => ({ ...s, startedAt: s.startedAt.toISOString() });

export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (app, { sessions, statements, store }) => {
  /** The session if the caller may see it: auditors and admins all, others their own. */
  async function visibleSession(req: FastifyRequest, id: string): Promise<Row> {
    const p = principalOf(req);
    const row = await sessions.get(id).catch(() => null);
    // Someone else's session looks the same as a missing one.
    if (!row || (!hasRole(p, "auditor") && row.subject !== p.subject)) throw new AirlockError("NOT_FOUND", `no session ${id}`);
    return row;
  }

  app.get(
    "/sessions",
    {
      schema: {
        tags: ["sessions"],
        summary: "Search sessions, newest first (admins and auditors see all, others their own)",
        description:
          "Filters combine with AND. `decision` and `q` select sessions with at least one statement that matches both. " +
          "Pages are keyset pages: pass `nextCursor` back as `cursor` with the same filters.",
        querystring: Type.Object({
          ...FilterProperties,
          before: Type.Optional(Type.String({ format: "date-time", description: "older name of `to`" })),
          ...PageProperties,
        }),
        response: { 200: Type.Object({ sessions: Type.Array(SessionHitView), nextCursor: Nullable(Type.String()) }) },
      },
    },
    async (req) => {
      const { cursor, limit = 50, ...q } = req.query;
      const page = await searchSessions(store, visibleFilter(principalOf(req), parseFilter(q)), { limit, cursor });
      return { sessions: page.items.map(sessionHitJson), nextCursor: page.nextCursor };
    },
  );

  app.get(
    "/sessions/:id",
    {
      schema: {
        tags: ["sessions"],
        summary: `A session with its first ${EMBEDDED_STATEMENTS} statements`,
        params: IdParam,
        response: { 200: SessionDetail },
      },
    },
    async (req) => {
      const row = await visibleSession(req, req.params.id);
      if (!statements) return view(row);
      // One more than embedded tells whether there are more, without a count.
      const [list, counts] = await Promise.all([statements.list(row.id, { limit: EMBEDDED_STATEMENTS + 1 }), statements.counts(row.id)]);
      return {
        ...view(row),
        statements: list.slice(0, EMBEDDED_STATEMENTS).map(statementView),
        statementsTruncated: list.length > EMBEDDED_STATEMENTS,
        statementCounts: counts,
      };
    },
  );

  if (!statements) return;
  app.get(
    "/sessions/:id/statements",
    {
      schema: {
        tags: ["sessions"],
        summary: "A session's statements by seq; pass the previous page's nextAfterSeq as afterSeq",
        params: IdParam,
        querystring: Type.Object({
          afterSeq: Type.Optional(Type.Integer({ minimum: 0, description: "return statements with a greater seq" })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: {
          200: Type.Object({
            statements: Type.Array(StatementView),
            nextAfterSeq: Nullable(Type.Integer({ description: "afterSeq for the next page; null on the last page" })),
          }),
        },
      },
    },
    async (req) => {
      const row = await visibleSession(req, req.params.id);
      const limit = req.query.limit ?? 100;
      const list = await statements.list(row.id, { limit: limit + 1, afterSeq: req.query.afterSeq });
      const page = list.slice(0, limit);
      return { statements: page.map(statementView), nextAfterSeq: list.length > limit ? page.at(-1)!.seq : null };
    },
  );
};
