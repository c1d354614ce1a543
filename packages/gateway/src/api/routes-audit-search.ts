// GET /audit/statements: the auditors' statement-level search (user + time
// range + full text over every recorded statement). Auditors and admins search
// everything; anyone else only their own statements. Read-only.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { parseFilter, searchStatements, visibleFilter } from "../audit/search.js";
import type { Store } from "../store/index.js";
import { FilterProperties, PageProperties, StatementHitView, statementHitJson } from "./audit-filters.js";
import { principalOf } from "./auth.js";

export interface AuditSearchRoutesOptions {
  store: Store;
}

/** Characters of each statement text in a listing; a page of 64 KiB texts would be megabytes. */
export const LISTED_TEXT_CHARS = 4096;

export const auditSearchRoutes: FastifyPluginAsyncTypebox<AuditSearchRoutesOptions> = async (app, { store }) => {
  app.get(
    "/audit/statements",
    {
      schema: {
        tags: ["audit"],
        summary: "Search recorded statements, newest first (admins and auditors see all, others their own)",
        description:
          "Filters combine with AND; `from`/`to` bound the statement's time, the other session filters (group, connection, agent, outcome) " +
          `its session's. Texts longer than ${LISTED_TEXT_CHARS} characters are cut (textTruncated). Pass \`nextCursor\` back as \`cursor\` with the same filters.`,
        querystring: Type.Object({ ...FilterProperties, ...PageProperties }),
        response: { 200: Type.Object({ statements: Type.Array(StatementHitView), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (req) => {
      const { cursor, limit = 50, ...q } = req.query;
      const page = await searchStatements(store, visibleFilter(principalOf(req), parseFilter(q)), { limit, cursor }, { textLimit: LISTED_TEXT_CHARS });
      return { statements: page.items.map(statementHitJson), nextCursor: page.nextCursor };
    },
  );
};
