// GET /audit/export: sessions or statements as JSON Lines or CSV, streamed.
// The same filters as the search; auditors and admins export everything,
// anyone else only their own records. No size limit: rows are read a page at a
// time as the client reads (audit/export.ts), so a slow client holds one page,
// not the export. A failure after the first page cuts the response (the body
// ends without its final chunk), which clients see as an incomplete download.
import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { exportLines, type ExportFormat, type ExportKind } from "../audit/export.js";
import { parseFilter, visibleFilter } from "../audit/search.js";
import type { Store } from "../store/index.js";
import { FilterProperties } from "./audit-filters.js";
import { principalOf } from "./auth.js";

export interface AuditExportRoutesOptions {
  store: Store;
}

const KINDS = ["sessions", "statements"] as const;
const FORMATS = ["jsonl", "csv"] as const;

const CONTENT_TYPE: Record<ExportFormat, string> = {
  jsonl: "application/x-ndjson; charset=utf-8",
  // https://www.rfc-editor.org/rfc/rfc4180#section-3
  csv: "text/csv; charset=utf-8; header=present",
};

/** airlock-statements-20240501T120000Z.csv */
export function exportFileName(kind: ExportKind, format: ExportFormat, at = new Date()): string {
  return `airlock-${kind}-${at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}.${format}`;
}

export const auditExportRoutes: FastifyPluginAsyncTypebox<AuditExportRoutesOptions> = async (app, { store }) => {
  app.get(
    "/audit/export",
    {
      schema: {
        tags: ["audit"],
        summary: "Export sessions or statements as JSON Lines or CSV, oldest first, streamed (admins and auditors: all; others: their own)",
        description:
          "Filters as in GET /sessions (kind=sessions) and GET /audit/statements (kind=statements). Without `to` the export ends at the time of the request. " +
          "CSV follows RFC 4180 with a header row and CRLF line ends; arrays are JSON; text starting with = + - @ gets a leading ' (no formulas). JSON Lines is exact.",
        querystring: Type.Object({
          kind: Type.Unsafe<ExportKind>({ type: "string", enum: [...KINDS] }),
          format: Type.Optional(Type.Unsafe<ExportFormat>({ type: "string", enum: [...FORMATS], default: "jsonl" })),
          ...FilterProperties,
        }),
        produces: [CONTENT_TYPE.jsonl, CONTENT_TYPE.csv],
      },
    },
    async (req, reply) => {
      const { kind, format = "jsonl", ...q } = req.query;
      const lines = await exportLines(store, { kind, format, filter: visibleFilter(principalOf(req), parseFilter(q)) });
      // Readable.from pulls the generator only as the socket drains (backpressure; byte mode, so at most
      // one page is buffered rather than 16 of them); Fastify destroys
      // the stream when the client goes away, which ends the generator and its queries.
      return reply
        .type(CONTENT_TYPE[format])
        .header("content-disposition", `attachment; filename="${exportFileName(kind, format)}"`)
        .header("cache-control", "no-store")
        .send(Readable.from(lines, { objectMode: false }));
    },
  );
};
