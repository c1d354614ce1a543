import { Type } from "@sinclair/typebox";

/** Shared response shapes; they feed both validation/serialization and the OpenAPI document. */
export const Problem = Type.Object(
  { type: Type.String(), title: Type.String(), status: Type.Integer(), detail: Type.String(), code: Type.String() },
  { $id: "Problem", additionalProperties: true },
);

export const NameParam = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
export const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

const Nullable = <T extends import("@sinclair/typebox").TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** Serialized as ISO 8601; handlers may return Date objects. */
const Time = Type.Unsafe<string | Date>({ type: "string", format: "date-time" });

export const AgentView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  group: Nullable(Type.String()),
  status: Type.Union([Type.Literal("online"), Type.Literal("offline"), Type.Literal("pending"), Type.Literal("revoked")]),
  version: Nullable(Type.String()),
  hostname: Nullable(Type.String()),
  lastSeenAt: Nullable(Time),
  enrolledAt: Nullable(Time),
  createdAt: Time,
  streams: Type.Integer(),
});

export const TargetTls = Type.Object(
  {
    enabled: Type.Boolean(),
    verify: Type.Boolean({ default: true }),
    serverName: Type.Optional(Type.String()),
    caPem: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const TYPES = ["tcp", "postgres", "mysql", "ssh", "kubernetes", "http"] as const;
/** A plain enum (not a union of literals) so a bad value yields one error naming the allowed values. */
export const ConnectionType = Type.Unsafe<(typeof TYPES)[number]>({ type: "string", enum: [...TYPES] });

export const ConnectionView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  host: Type.String(),
  port: Type.Integer(),
  agent: Nullable(Type.String()),
  agentGroup: Nullable(Type.String()),
  tls: TargetTls,
  labels: Type.Record(Type.String(), Type.String()),
  database: Nullable(Type.String()),
  recordMode: Type.Union([Type.Literal("closed"), Type.Literal("best_effort")]),
  hasSecrets: Type.Boolean(),
  createdAt: Time,
  updatedAt: Time,
});

export const ConnectionCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    type: ConnectionType,
    host: Type.String({ minLength: 1, maxLength: 253 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    agent: Type.Optional(Type.String()),
    agentGroup: Type.Optional(Type.String()),
    tls: Type.Optional(TargetTls),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    database: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: "default database on the target (postgres)" })),
    secrets: Type.Optional(Type.Record(Type.String(), Type.String(), { description: "write-only; encrypted at rest, never returned" })),
    recordMode: Type.Optional(Type.Union([Type.Literal("closed"), Type.Literal("best_effort")], { description: "closed (default): a statement that cannot be recorded is refused; best_effort: it runs and is counted as unrecorded" })),
  },
  { additionalProperties: false },
);

export const TokenView = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  kind: Type.String(),
  roles: Type.Array(Type.String()),
  groups: Type.Array(Type.String()),
  description: Nullable(Type.String()),
  createdBy: Nullable(Type.String()),
  expiresAt: Time,
  revokedAt: Nullable(Time),
  lastUsedAt: Nullable(Time),
  createdAt: Time,
});

export const SessionView = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  /** user | service */
  subjectKind: Type.String(),
  /** How the identity was established: oidc, device, saml, jwt, service, api_key, admin, dev. */
  authMethod: Nullable(Type.String()),
  connectionName: Type.String(),
  protocol: Type.String(),
  agent: Nullable(Type.String()),
  clientAddr: Nullable(Type.String()),
  startedAt: Time,
  endedAt: Nullable(Time),
  bytesUp: Type.Integer(),
  bytesDown: Type.Integer(),
  outcome: Type.String(),
  errorCode: Nullable(Type.String()),
  error: Nullable(Type.String()),
});

/** One recorded SQL statement (GET /sessions/:id, and the base of search hits). */
export const StatementView = Type.Object({
  id: Type.String(),
  seq: Type.Integer(),
  text: Type.String({ description: "as received; texts over 64 KiB end in `…[truncated N bytes]`" }),
  kind: Type.String(),
  command: Nullable(Type.String()),
  objects: Type.Array(Type.String()),
  decision: Type.String({ description: "allow | deny | review" }),
  rule: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  status: Type.String({ description: "pending | ok | error | denied | skipped" }),
  startedAt: Time,
  durationMs: Nullable(Type.Number()),
  rows: Nullable(Type.String({ description: "rows returned or affected; a decimal string (may exceed 2^53)" })),
  commandTag: Nullable(Type.String()),
  masked: Type.Integer(),
  errorCode: Nullable(Type.String()),
  error: Nullable(Type.String()),
});
