import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import pg from "pg";
import { AirlockError } from "@airlock/shared";
import { bearer, principalOf } from "./auth.js";

export interface ExecRoutesOptions {
  /** The gateway's own Postgres front door (loopback) and its CA; null when it is off. */
  frontDoor: () => { host: string; port: number; caPem: string } | null;
}

const MAX_ROWS = 10_000;
const MAX_CELL_CHARS = 64 * 1024;
/** The whole answer's budget (all statements, all values): past it rows are read and dropped. */
const MAX_RESULT_BYTES = 16 * 1024 * 1024;
/** Statements reported in one answer (a query string may hold many). */
const MAX_RESULTS = 100;

interface StatementResult {
  command: string;
  rowCount: number | null;
  fields: string[];
  rows: unknown[][];
  truncated: boolean;
}

/**
 * `POST /api/v1/connections/:name/exec`: SQL over HTTP for agents and CI, the
 * same path as `airlock exec`. The gateway connects to its own Postgres front
 * door as the caller (their credential as the password), so policy, masking,
 * recording and reviews apply exactly as for psql. A statement that needs a
 * review answers 202 with the review's id (or, with `wait`, is held until a
 * reviewer decides). Results are bounded: at most MAX_ROWS rows per statement,
 * MAX_RESULTS statements and MAX_RESULT_BYTES in all are kept; every value is
 * clipped by its size; the rest is read and dropped (`truncated: true`).
 */
export const execRoutes: FastifyPluginAsyncTypebox<ExecRoutesOptions> = async (app, { frontDoor }) => {
  app.post(
    "/connections/:name/exec",
    {
      schema: {
        tags: ["connections"],
        summary: "Run SQL through the guardrails (reviews: 202 with the review id, or wait for the decision)",
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }),
        body: Type.Object(
          { sql: Type.String({ minLength: 1, maxLength: 1024 * 1024 }), params: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), { maxItems: 1000 })), wait: Type.Optional(Type.Boolean()), database: Type.Optional(Type.String({ maxLength: 128 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      principalOf(req);
      const fd = frontDoor();
      if (!fd) throw new AirlockError("FEATURE_DISABLED", "the Postgres front door is off on this gateway");
      const client = new pg.Client({
        host: fd.host,
        port: fd.port,
        user: "airlock-exec",
        password: bearer(req),
        database: req.body.database ? `${req.params.name}/${req.body.database}` : req.params.name,
        // Our own front door on loopback: the gateway's CA, the name check skipped (the certificate names the public host).
        ssl: { ca: fd.caPem, checkServerIdentity: () => undefined },
        ...(req.body.wait ? {} : { options: "-c airlock.review=async" }),
        application_name: "airlock exec api",
      });
      const notices: string[] = [];
      client.on("notice", (n) => notices.length < 100 && notices.push(n.message ?? ""));
      client.on("error", () => {});
      // The caller going away (the response closing before we answered) ends the connection, which
      // cancels a held review. Not req.raw's "close": that fires as soon as the request body was read.
      reply.raw.on("close", () => void client.end().catch(() => {}));
      try {
        await client.connect();
      } catch (err) {
        throw new AirlockError(/28P01/.test(String((err as { code?: string }).code)) ? "UNAUTHENTICATED" : "PERMISSION_DENIED", (err as Error).message, { cause: err });
      }
      try {
        const results = await run(client, req.body.sql, req.body.params ?? null);
        return { results, notices };
      } catch (err) {
        const e = err as Error & { code?: string };
        const review = /review required: ([0-9a-f-]{36})/.exec(e.message);
        if (review) {
          reply.status(202);
          return { reviewRequired: review[1], message: e.message, notices };
        }
        const code = e.code === "42501" ? "STATEMENT_DENIED" : e.code === "42601" ? "STATEMENT_UNPARSABLE" : "INVALID_ARGUMENT";
        throw new AirlockError(code, e.message, { details: { sqlstate: e.code ?? null, notices } });
      } finally {
        await client.end().catch(() => {});
      }
    },
  );
};

/** Runs one query string, keeping at most MAX_ROWS rows per result (rows are streamed, not accumulated by pg). */
function run(client: pg.Client, sql: string, params: unknown[] | null): Promise<StatementResult[]> {
  return new Promise((resolve, reject) => {
    // pg hands every row with the Result object of its statement: one entry per Result, in order.
    const byResult = new Map<object, StatementResult>();
    let budget = MAX_RESULT_BYTES;
    // Every value type is clipped by its size: strings by length, anything else by its JSON form.
    const clip = (v: unknown): unknown => {
      if (v === null || typeof v === "number" || typeof v === "boolean") return v;
      if (typeof v === "string") return v.length > MAX_CELL_CHARS ? `${v.slice(0, MAX_CELL_CHARS)}…` : v;
      const text = Buffer.isBuffer(v) ? `\\x${v.subarray(0, MAX_CELL_CHARS / 2).toString("hex")}` : JSON.stringify(v) ?? String(v);
      return text.length > MAX_CELL_CHARS ? `${text.slice(0, MAX_CELL_CHARS)}…` : Buffer.isBuffer(v) ? text : v;
    };
    const sizeOf = (row: unknown[]) => row.reduce<number>((n, c) => n + (typeof c === "string" ? c.length : c === null ? 4 : JSON.stringify(c)?.length ?? 8), 0);
    const entry = (r: pg.QueryResult): StatementResult => {
      let e = byResult.get(r);
      if (!e) byResult.set(r, (e = { command: "", rowCount: null, fields: (r.fields ?? []).map((f) => f.name), rows: [], truncated: false }));
      return e;
    };
    const q = new pg.Query({ text: sql, ...(params ? { values: params } : {}), rowMode: "array" } as pg.QueryConfig);
    q.on("row", (row: unknown[], r?: pg.QueryResult) => {
      if (!r) return;
      const e = entry(r);
      if (e.rows.length >= MAX_ROWS || budget <= 0 || byResult.size > MAX_RESULTS) {
        e.truncated = true;
        return;
      }
      const kept = row.map(clip);
      budget -= sizeOf(kept);
      e.rows.push(kept);
    });
    q.on("end", (res: pg.QueryResult | pg.QueryResult[]) => {
      const all = Array.isArray(res) ? res : [res];
      resolve(all.slice(0, MAX_RESULTS).map((r) => ({ ...entry(r), command: r.command, rowCount: r.rowCount, fields: (r.fields ?? []).map((f) => f.name) })));
    });
    q.on("error", reject);
    client.query(q as unknown as pg.QueryConfig);
  });
}
