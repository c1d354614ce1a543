// The auditors' search filters as query-string schemas (validation and the
// OpenAPI document), shared by GET /sessions, GET /audit/statements and
// GET /audit/export; and the JSON view of a statement hit.
import { Type, type TSchema } from "@sinclair/typebox";
import { DECISIONS, MAX_QUERY_LENGTH, OUTCOMES, type SessionHit, type StatementHit } from "../audit/search.js";
import { SessionView, StatementView } from "./schemas.js";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** Plain enums (not unions of literals): a bad value yields one error naming the allowed values. */
const Enum = <T extends string>(values: readonly T[], description: string) => Type.Unsafe<T>({ type: "string", enum: [...values], description });
const Time = (description: string) => Type.String({ format: "date-time", description });

export const FilterProperties = {
  user: Type.Optional(Type.String({ maxLength: 512, description: "the subject (identity) of the session; ignored for callers who are not auditors (they see their own)" })),
  subject: Type.Optional(Type.String({ maxLength: 512, description: "older name of `user`" })),
  group: Type.Optional(Type.String({ maxLength: 256, description: "a group the identity had when the session started" })),
  connection: Type.Optional(Type.String({ maxLength: 256 })),
  agent: Type.Optional(Type.String({ maxLength: 256, description: "agent name" })),
  from: Type.Optional(Time("started at or after (inclusive)")),
  to: Type.Optional(Time("started before (exclusive)")),
  outcome: Type.Optional(Enum(OUTCOMES, "session outcome")),
  decision: Type.Optional(Enum(DECISIONS, "a statement was denied, had values masked, or was held for review")),
  q: Type.Optional(Type.String({ maxLength: MAX_QUERY_LENGTH, description: 'full text over statement texts: words, "a phrase", OR, -word (PostgreSQL websearch_to_tsquery, no stemming)' })),
};

export const PageProperties = {
  cursor: Type.Optional(Type.String({ maxLength: 200, description: "nextCursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
};

/** A session as searches list it: the session view plus what auditors filter and judge by. */
export const SessionHitView = Type.Composite([
  SessionView,
  Type.Object({
    groups: Type.Array(Type.String()),
    recordMode: Type.String(),
    unrecorded: Type.Integer({ description: "statements forwarded without a record (best-effort connections)" }),
  }),
]);

export const StatementHitView = Type.Composite([
  StatementView,
  Type.Object({
    sessionId: Type.String(),
    subject: Type.String({ description: "the session's subject" }),
    connectionName: Type.String(),
    agent: Nullable(Type.String()),
    textTruncated: Type.Boolean({ description: "the text was cut for the listing; GET /sessions/{sessionId} has it whole" }),
  }),
]);

/** JSON-safe session: byte counts as numbers (well below 2^53 in practice), times as ISO strings. */
export function sessionHitJson(h: SessionHit) {
  return { ...h, startedAt: h.startedAt.toISOString(), endedAt: h.endedAt?.toISOString() ?? null, bytesUp: Number(h.bytesUp), bytesDown: Number(h.bytesDown) };
}

export function statementHitJson(h: StatementHit) {
  return { ...h, startedAt: h.startedAt.toISOString() };
}
