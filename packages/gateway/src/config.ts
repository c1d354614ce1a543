import { resolve } from "node:path";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { AirlockError } from "@airlock/shared";
import { AUDIT_DEFAULTS, AuditConfigSchema, auditFromEnv } from "./audit/config.js";
import { IDENTITY_DEFAULTS, identityFromEnv, IdentityConfigSchema, normalizeIdentity } from "./identity/config.js";

/**
 * The gateway's whole configuration, validated in this one place. Sources, in
 * order of precedence: explicit overrides (CLI flags, tests), AIRLOCK_* env.
 */
export const GatewayConfigSchema = Type.Object({
  dataDir: Type.String({ minLength: 1 }),
  /** PostgreSQL URL; embedded PGlite in dataDir/store when absent. */
  databaseUrl: Type.Optional(Type.String({ pattern: "^postgres(ql)?://" })),
  /** Base64 32-byte key(s), comma separated, first is primary; dataDir/master.key when absent. */
  masterKey: Type.Optional(Type.String({ minLength: 1 })),
  api: Type.Object({
    host: Type.String(),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** How clients reach the API (printed in hints); derived from host:port when absent. */
    publicUrl: Type.Optional(Type.String()),
  }),
  agents: Type.Object({
    host: Type.String(),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** How agents reach the tunnel port (printed by `agents create`). */
    publicAddress: Type.Optional(Type.String()),
    /** Extra names for the generated certificate. */
    tlsNames: Type.Array(Type.String()),
    certFile: Type.Optional(Type.String()),
    keyFile: Type.Optional(Type.String()),
    /** Plaintext tunnel: tests and benchmarks only. */
    insecure: Type.Boolean(),
  }),
  tokens: Type.Object({
    defaultTtlSeconds: Type.Integer({ minimum: 60 }),
    maxTtlSeconds: Type.Integer({ minimum: 60 }),
    enrollmentTtlSeconds: Type.Integer({ minimum: 60 }),
  }),
  tunnel: Type.Object({
    keepaliveIntervalMs: Type.Integer({ minimum: 100 }),
    keepaliveTimeoutMs: Type.Integer({ minimum: 300 }),
    initialWindow: Type.Integer({ minimum: 16 * 1024, maximum: 64 * 1024 * 1024 }),
  }),
  connect: Type.Object({
    /** A client whose socket has not taken bytes for this long is dropped. */
    clientStallTimeoutMs: Type.Integer({ minimum: 100 }),
  }),
  /** The native Postgres front door (psql/drivers with the access token as password). */
  postgres: Type.Object({
    enabled: Type.Boolean(),
    host: Type.String(),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** Accept clients without TLS (the token is then sent in clear). Off unless set. */
    allowPlaintext: Type.Boolean(),
    /** The host clients use for the front door (airlock exec); the API's public host when absent. */
    publicHost: Type.Optional(Type.String({ minLength: 1 })),
  }),
  /** Where review events are sent (generic signed webhooks, Slack incoming webhooks). */
  reviews: Type.Object({
    webhooks: Type.Array(Type.Object({ url: Type.String({ pattern: "^https?://" }), format: Type.Union([Type.Literal("generic"), Type.Literal("slack")]), secret: Type.Optional(Type.String({ minLength: 16 })) })),
    /** Who decides access requests (airlock request), how many approvals, how long a request waits. */
    access: Type.Object({ reviewerGroups: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), approvalsNeeded: Type.Integer({ minimum: 1 }), allGroups: Type.Boolean(), timeoutSeconds: Type.Integer({ minimum: 10 }) }),
    /** Shared secrets (newest first) of systems allowed to post signed decisions to /api/v1/reviews/callback. */
    callbackSecrets: Type.Array(Type.String({ minLength: 16 })),
  }),
  /** People's sign-in (OIDC, SAML), machine JWT issuers, role mappings, token lifetimes, API keys. */
  identity: IdentityConfigSchema,
  /** Tamper evidence, byte recordings, retention, SIEM sinks (audit/config.ts). */
  audit: AuditConfigSchema,
  /** Statement records: wait for the store's WAL flush before forwarding (PostgreSQL store). */
  recordSyncCommit: Type.Boolean(),
  policy: Type.Object({
    /** Policies are read from here (and hot-reloaded) instead of the store's applied versions. */
    dir: Type.Optional(Type.String({ minLength: 1 })),
    /** How often a gateway checks the store for a newer applied bundle (other processes may apply). */
    pollMs: Type.Integer({ minimum: 100 }),
  }),
});

export type GatewayConfig = Static<typeof GatewayConfigSchema>;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };
export type GatewayConfigInput = DeepPartial<GatewayConfig>;

function hostPort(v: string | undefined, fallback: [string, number]): [string, number] {
  if (!v) return fallback;
  const i = v.lastIndexOf(":");
  if (i < 0) return [v, fallback[1]];
  return [v.slice(0, i).replace(/^\[|\]$/g, "") || fallback[0], Number(v.slice(i + 1))];
}

const int = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));
const list = (v: string | undefined) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : undefined);

function fromEnv(env: NodeJS.ProcessEnv): GatewayConfigInput {
  const [apiHost, apiPort] = hostPort(env.AIRLOCK_API_LISTEN, ["0.0.0.0", 8080]);
  const [agHost, agPort] = hostPort(env.AIRLOCK_AGENT_LISTEN, ["0.0.0.0", 8443]);
  const pgListen = env.AIRLOCK_POSTGRES_LISTEN === "off" ? undefined : env.AIRLOCK_POSTGRES_LISTEN;
  const [pgHost, pgPort] = hostPort(pgListen, ["0.0.0.0", 15432]);
  return {
    dataDir: env.AIRLOCK_DATA_DIR,
    databaseUrl: env.AIRLOCK_DATABASE_URL || undefined,
    masterKey: env.AIRLOCK_MASTER_KEY || undefined,
    api: { host: apiHost, port: apiPort, publicUrl: env.AIRLOCK_PUBLIC_URL },
    agents: { host: agHost, port: agPort, publicAddress: env.AIRLOCK_AGENT_PUBLIC_ADDRESS, tlsNames: list(env.AIRLOCK_TLS_NAMES) },
    tokens: { defaultTtlSeconds: int(env.AIRLOCK_TOKEN_TTL_SECONDS), maxTtlSeconds: int(env.AIRLOCK_TOKEN_MAX_TTL_SECONDS) },
    connect: { clientStallTimeoutMs: int(env.AIRLOCK_CLIENT_STALL_TIMEOUT_MS) },
    postgres: {
      enabled: env.AIRLOCK_POSTGRES_LISTEN === "off" ? false : undefined,
      host: pgHost,
      port: pgPort,
      allowPlaintext: env.AIRLOCK_POSTGRES_ALLOW_PLAINTEXT === undefined ? undefined : env.AIRLOCK_POSTGRES_ALLOW_PLAINTEXT === "true",
      publicHost: env.AIRLOCK_POSTGRES_PUBLIC_HOST || undefined,
    },
    policy: { dir: env.AIRLOCK_POLICY_DIR || undefined, pollMs: int(env.AIRLOCK_POLICY_POLL_MS) },
    recordSyncCommit: env.AIRLOCK_RECORD_SYNC_COMMIT === undefined ? undefined : env.AIRLOCK_RECORD_SYNC_COMMIT === "true",
    identity: identityFromEnv(env),
    audit: auditFromEnv(env),
    reviews: {
      webhooks: [
        ...(env.AIRLOCK_REVIEW_WEBHOOK_URL ? [{ url: env.AIRLOCK_REVIEW_WEBHOOK_URL, format: "generic" as const, ...(env.AIRLOCK_REVIEW_WEBHOOK_SECRET ? { secret: env.AIRLOCK_REVIEW_WEBHOOK_SECRET } : {}) }] : []),
        ...(env.AIRLOCK_REVIEW_SLACK_WEBHOOK_URL ? [{ url: env.AIRLOCK_REVIEW_SLACK_WEBHOOK_URL, format: "slack" as const }] : []),
      ],
      callbackSecrets: list(env.AIRLOCK_REVIEW_CALLBACK_SECRETS),
      access: { reviewerGroups: list(env.AIRLOCK_ACCESS_REVIEWERS), approvalsNeeded: int(env.AIRLOCK_ACCESS_APPROVALS), timeoutSeconds: int(env.AIRLOCK_ACCESS_REQUEST_TIMEOUT_SECONDS) } as never,
    },
  };
}

const DEFAULTS: GatewayConfig = {
  dataDir: ".airlock",
  api: { host: "0.0.0.0", port: 8080 },
  agents: { host: "0.0.0.0", port: 8443, tlsNames: [], insecure: false },
  tokens: { defaultTtlSeconds: 3600, maxTtlSeconds: 7 * 24 * 3600, enrollmentTtlSeconds: 24 * 3600 },
  tunnel: { keepaliveIntervalMs: 1_000, keepaliveTimeoutMs: 5_000, initialWindow: 4 * 1024 * 1024 },
  connect: { clientStallTimeoutMs: 30_000 },
  postgres: { enabled: true, host: "0.0.0.0", port: 15432, allowPlaintext: false },
  policy: { pollMs: 2_000 },
  recordSyncCommit: false,
  identity: IDENTITY_DEFAULTS,
  audit: AUDIT_DEFAULTS,
  reviews: { webhooks: [], callbackSecrets: [], access: { reviewerGroups: ["reviewers"], approvalsNeeded: 1, allGroups: false, timeoutSeconds: 3600 } },
};

function merge<T>(base: T, ...layers: unknown[]): T {
  let out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const layer of layers) {
    if (!layer || typeof layer !== "object") continue;
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const cur = out[k];
      out[k] = cur && typeof cur === "object" && !Array.isArray(cur) && typeof v === "object" && !Array.isArray(v) ? merge(cur, v) : v;
    }
  }
  return out as T;
}

/** Builds and validates the configuration; every problem is reported at once. */
export function loadConfig(overrides: GatewayConfigInput = {}, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  // Value.Default fills the defaults declared in the schema (identity providers' optional fields).
  const cfg = Value.Default(GatewayConfigSchema, merge(DEFAULTS, fromEnv(env), overrides)) as GatewayConfig;
  const problems = [...Value.Errors(GatewayConfigSchema, cfg)].map((e) => `${e.path || "/"}: ${e.message}`);
  if (cfg.tunnel.keepaliveTimeoutMs <= cfg.tunnel.keepaliveIntervalMs) problems.push("/tunnel/keepaliveTimeoutMs: must exceed keepaliveIntervalMs");
  if (cfg.tokens.defaultTtlSeconds > cfg.tokens.maxTtlSeconds) problems.push("/tokens/defaultTtlSeconds: must not exceed maxTtlSeconds");
  if (!problems.length) cfg.identity = normalizeIdentity(cfg.identity, problems, cfg.tokens.maxTtlSeconds);
  if (problems.length) throw new AirlockError("CONFIG_INVALID", `invalid gateway configuration:\n  ${problems.join("\n  ")}`);
  return { ...cfg, dataDir: resolve(cfg.dataDir) };
}
