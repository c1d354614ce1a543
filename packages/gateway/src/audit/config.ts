// The `audit` section of the gateway configuration: checkpoints, byte
// recordings, their retention, and SIEM sinks. Validated with the rest of the
// config (config.ts); env: AIRLOCK_AUDIT_FILE holds the whole section as JSON,
// single values come from the AIRLOCK_AUDIT_* / AIRLOCK_RECORDINGS_* /
// AIRLOCK_SIEM_* variables below.
import { readFileSync } from "node:fs";
import { Type, type Static } from "@sinclair/typebox";

const Sink = Type.Union([
  Type.Object({
    type: Type.Literal("webhook"),
    name: Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,62}$" }),
    url: Type.String({ pattern: "^https?://" }),
    /** HMAC-SHA256 key for x-airlock-signature (t=…,v1=…), as for review webhooks. */
    secret: Type.String({ minLength: 16 }),
    /** Events per POST (a JSON array). */
    batch: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Bytes per POST at most (default 1 MiB); a bigger event goes alone. */
    batchBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 })),
  }),
  Type.Object({
    type: Type.Literal("syslog"),
    name: Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,62}$" }),
    /** tcp://host:port or tls://host:port (RFC 5424 messages, RFC 6587 octet counting; RFC 5425 over TLS). */
    url: Type.String({ pattern: "^(tcp|tls)://" }),
    /** PEM of the CA that signed the collector's certificate (tls); default: the system's roots. */
    caPem: Type.Optional(Type.String()),
    /** Skip certificate verification (tls; tests only). */
    insecure: Type.Optional(Type.Boolean()),
    hostname: Type.Optional(Type.String()),
  }),
]);

export const AuditConfigSchema = Type.Object({
  /** Open sessions with new records get a signed checkpoint this often. */
  checkpointSeconds: Type.Number({ minimum: 0.1 }),
  recordings: Type.Object({
    /**
     * Where byte recordings of stream sessions go: the store (db), a directory (fs), or nowhere (none).
     * auto (default): db on the PostgreSQL store; fs on the embedded store, whose in-process cache
     * would otherwise fill with recorded bytes (the gateway's memory grew ~100 MB in bad-input.test).
     */
    storage: Type.Union([Type.Literal("auto"), Type.Literal("db"), Type.Literal("fs"), Type.Literal("none")]),
    /** Directory for storage=fs (default: <dataDir>/recordings). */
    dir: Type.Optional(Type.String({ minLength: 1 })),
    /** A chunk is written when it holds this many bytes, or after flushMs. */
    chunkBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
    flushMs: Type.Integer({ minimum: 10 }),
  }),
  /** Recording retention by connection label: the first rule whose labels all match applies. */
  retention: Type.Array(Type.Object({ labels: Type.Record(Type.String(), Type.String()), recordingDays: Type.Number({ exclusiveMinimum: 0 }) })),
  /** How often retention runs. */
  retentionSweepSeconds: Type.Number({ minimum: 1 }),
  sinks: Type.Array(Sink),
  /** SIEM delivery tuning (audit/siem/): retry backoff cap, poll interval, per-attempt timeout. */
  delivery: Type.Optional(
    Type.Object({
      retryMaxSeconds: Type.Optional(Type.Number({ minimum: 0.01, maximum: 3600 })),
      pollMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 60_000 })),
      timeoutSeconds: Type.Optional(Type.Number({ minimum: 0.1, maximum: 300 })),
      /** An event a receiver refuses (4xx) this many times is dead-lettered (`airlock audit sinks retry`). */
      deadLetterAfter: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    }),
  ),
});

export type AuditConfig = Static<typeof AuditConfigSchema>;
export type SinkConfig = Static<typeof Sink>;

export const AUDIT_DEFAULTS: AuditConfig = {
  checkpointSeconds: 30,
  recordings: { storage: "auto", chunkBytes: 64 * 1024, flushMs: 1_000 },
  retention: [],
  retentionSweepSeconds: 3600,
  sinks: [],
};

const num = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));

export function auditFromEnv(env: NodeJS.ProcessEnv): Partial<AuditConfig> {
  const file = env.AIRLOCK_AUDIT_FILE ? (JSON.parse(readFileSync(env.AIRLOCK_AUDIT_FILE, "utf8")) as Partial<AuditConfig>) : {};
  const sinks: SinkConfig[] = [...(file.sinks ?? [])];
  if (env.AIRLOCK_SIEM_WEBHOOK_URL) sinks.push({ type: "webhook", name: "webhook", url: env.AIRLOCK_SIEM_WEBHOOK_URL, secret: env.AIRLOCK_SIEM_WEBHOOK_SECRET ?? "" });
  if (env.AIRLOCK_SIEM_SYSLOG_URL) sinks.push({ type: "syslog", name: "syslog", url: env.AIRLOCK_SIEM_SYSLOG_URL, ...(env.AIRLOCK_SIEM_SYSLOG_INSECURE === "true" ? { insecure: true } : {}) });
  const storage = env.AIRLOCK_RECORDINGS_STORAGE as AuditConfig["recordings"]["storage"] | undefined;
  return {
    ...file,
    checkpointSeconds: num(env.AIRLOCK_AUDIT_CHECKPOINT_SECONDS) ?? file.checkpointSeconds,
    recordings: { ...file.recordings, ...(storage ? { storage } : {}), ...(env.AIRLOCK_RECORDINGS_DIR ? { dir: env.AIRLOCK_RECORDINGS_DIR } : {}) } as AuditConfig["recordings"],
    ...(sinks.length ? { sinks } : {}),
    ...(env.AIRLOCK_SIEM_RETRY_MAX_SECONDS ? { delivery: { ...file.delivery, retryMaxSeconds: Number(env.AIRLOCK_SIEM_RETRY_MAX_SECONDS) } } : {}),
  };
}
