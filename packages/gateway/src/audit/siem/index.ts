// SIEM streaming of the audit record: session starts/ends and statement
// records/completions, queued by database triggers in the durable outbox and
// forwarded by one loop per configured sink (signed webhook, syslog over
// TCP/TLS). See docs/siem.md.
import { AirlockError, type Logger } from "@airlock/shared";
import type { AuditConfig, SinkConfig } from "../config.js";
import { DEFAULT_DEAD_LETTER_AFTER, SinkForwarder } from "./forwarder.js";
import { Outbox, type SqlQuery } from "./outbox.js";
import { SyslogSink } from "./syslog.js";
import type { SinkTransport } from "./transport.js";
import { DEFAULT_MAX_BATCH_BYTES, WebhookSink } from "./webhook.js";

/**
 * Delivery settings read from the audit section's `delivery`. Besides the
 * validated ones: `deadLetterAfter`, how many refusals of one event by its
 * receiver dead-letter it (default 20).
 */
export type SiemDelivery = NonNullable<AuditConfig["delivery"]> & { deadLetterAfter?: number };

/** A sink as configured; webhook sinks may also set `batchBytes`, the largest POST body (default 1 MiB). */
export type SiemSinkConfig = SinkConfig & { batchBytes?: number };

export { Outbox, type OutboxRow, type OutboxStatus, type SqlQuery } from "./outbox.js";
export { SinkForwarder, backoffMs, DEFAULT_DEAD_LETTER_AFTER, type ForwarderOptions, type ForwarderStats } from "./forwarder.js";
export { toEvent, type SiemEvent } from "./events.js";
export { WebhookSink, deliveryId, DEFAULT_MAX_BATCH_BYTES } from "./webhook.js";
export { SyslogSink } from "./syslog.js";

export interface SiemOptions {
  sinks: SiemSinkConfig[];
  delivery?: SiemDelivery | undefined;
  sql: SqlQuery;
  log: Logger;
  /** First retry delay (default 500 ms). */
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

/** What `GET /api/v1/audit/sinks` shows per sink. */
export interface SinkStatusView {
  name: string;
  /** null for a sink this gateway does not deliver (another gateway may). */
  type: "webhook" | "syslog" | null;
  /** Scheme, host and port only. */
  target: string | null;
  /** Delivered by this gateway. */
  configured: boolean;
  /** The triggers queue events for it (`airlock audit sinks enable|disable`). */
  enabled: boolean;
  /** Waiting for delivery; dead letters not counted. */
  pending: number;
  oldestPendingSeconds: number | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Events the receiver kept refusing: never sent again until `airlock audit sinks retry`. */
  deadLettered: number;
  /** Why the newest dead letter was refused. */
  deadLetterError: string | null;
  /** Events this gateway process delivered since it started. */
  delivered: number;
  lastDeliveredAt: string | null;
}

const DEFAULT_BATCH = 100;

/** An optional integer setting the schema does not check (yet): within bounds, or CONFIG_INVALID. */
function intSetting(what: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new AirlockError("CONFIG_INVALID", `${what} must be an integer from ${min} to ${max}`);
  return v;
}

function transportFor(sink: SiemSinkConfig, timeoutMs: number, fetchFn?: typeof fetch): SinkTransport {
  if (sink.type === "webhook") {
    const maxBatchBytes = intSetting(`SIEM sink ${sink.name}: batchBytes`, sink.batchBytes, 1024, 64 * 1024 * 1024) ?? DEFAULT_MAX_BATCH_BYTES;
    return new WebhookSink({ name: sink.name, url: sink.url, secret: sink.secret, timeoutMs, maxBatchBytes, ...(fetchFn ? { fetch: fetchFn } : {}) });
  }
  return new SyslogSink({
    name: sink.name,
    url: sink.url,
    timeoutMs,
    ...(sink.caPem ? { caPem: sink.caPem } : {}),
    ...(sink.insecure ? { insecure: true } : {}),
    ...(sink.hostname ? { hostname: sink.hostname } : {}),
  });
}

export class SiemForwarding {
  private constructor(
    private readonly outbox: Outbox,
    private readonly forwarders: Map<string, SinkForwarder>,
    private readonly log: Logger,
  ) {}

  /**
   * Registers the configured sinks that are new to the store (enabled) and
   * starts delivering. Never disables a sink: several gateways share the
   * store, and one with a stale configuration must not stop the queueing for
   * sinks the others deliver. It warns instead, about enabled sinks it does
   * not deliver and configured ones an admin disabled. Throws CONFIG_INVALID
   * for a duplicate name, an unusable URL or an out-of-range setting.
   */
  static async start(opts: SiemOptions): Promise<SiemForwarding> {
    const names = opts.sinks.map((s) => s.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new AirlockError("CONFIG_INVALID", `SIEM sink name ${dup} is used twice`);
    const timeoutMs = (opts.delivery?.timeoutSeconds ?? 10) * 1000;
    const deadLetterAfter = intSetting("audit delivery.deadLetterAfter", opts.delivery?.deadLetterAfter, 1, 1_000_000) ?? DEFAULT_DEAD_LETTER_AFTER;
    const transports = opts.sinks.map((s) => ({ sink: s, transport: transportFor(s, timeoutMs, opts.fetch) }));
    const outbox = new Outbox(opts.sql);
    const known = await outbox.registerSinks(names);
    const elsewhere = known.filter((k) => k.enabled && !names.includes(k.name)).map((k) => k.name);
    if (elsewhere.length) {
      opts.log.warn(
        { sinks: elsewhere },
        `SIEM sinks enabled in the store but not configured on this gateway: events are queued for them, and only a gateway that has them configured delivers them. If no gateway does any more, disable them (\`airlock audit sinks disable NAME\`) or the outbox keeps growing`,
      );
    }
    const off = known.filter((k) => !k.enabled && names.includes(k.name)).map((k) => k.name);
    if (off.length) {
      opts.log.warn({ sinks: off }, "configured SIEM sinks are disabled in the store: nothing new is queued for them (`airlock audit sinks enable NAME` resumes); what is queued is still delivered");
    }
    const forwarders = new Map<string, SinkForwarder>();
    for (const { sink, transport } of transports) {
      const f = new SinkForwarder(transport, outbox, {
        batch: sink.type === "webhook" ? (sink.batch ?? DEFAULT_BATCH) : DEFAULT_BATCH,
        pollMs: opts.delivery?.pollMs ?? 500,
        retryBaseMs: opts.retryBaseMs ?? 500,
        retryMaxMs: (opts.delivery?.retryMaxSeconds ?? 60) * 1000,
        // Connect plus write (syslog) each within the timeout, with room to spare.
        leaseMs: 2 * timeoutMs + 30_000,
        deadLetterAfter,
        log: opts.log,
      });
      forwarders.set(sink.name, f);
      f.start();
      opts.log.info({ sink: sink.name, type: sink.type, target: transport.target }, "delivering to SIEM sink");
    }
    return new SiemForwarding(outbox, forwarders, opts.log);
  }

  async status(): Promise<SinkStatusView[]> {
    const rows = await this.outbox.status();
    const byName = new Map(rows.map((r) => [r.sink, r]));
    const names = [...new Set([...this.forwarders.keys(), ...byName.keys()])].sort();
    return names.map((name) => {
      const row = byName.get(name);
      const f = this.forwarders.get(name);
      const s = f?.snapshot;
      return {
        name,
        type: f?.transport.kind ?? null,
        target: f?.transport.target ?? null,
        configured: Boolean(f),
        enabled: row?.enabled ?? Boolean(f),
        pending: row?.pending ?? 0,
        oldestPendingSeconds: row?.oldestPendingSeconds ?? null,
        lastError: row?.lastError ?? s?.lastError ?? null,
        lastErrorAt: s?.lastErrorAt?.toISOString() ?? null,
        deadLettered: row?.deadLettered ?? 0,
        deadLetterError: row?.deadLetterError ?? null,
        delivered: s?.delivered ?? 0,
        lastDeliveredAt: s?.lastDeliveredAt?.toISOString() ?? null,
      };
    });
  }

  /** One sink's status; NOT_FOUND when the store has no such sink. */
  async sinkStatus(name: string): Promise<SinkStatusView> {
    const view = (await this.status()).find((s) => s.name === name);
    if (!view) throw new AirlockError("NOT_FOUND", `no SIEM sink ${name}`);
    return view;
  }

  /**
   * Starts (enabled) or stops the triggers queueing events for `name`, on
   * every gateway of the store. Events already queued stay and are still
   * delivered. NOT_FOUND when the store has no such sink.
   */
  async setEnabled(name: string, enabled: boolean, by: string): Promise<SinkStatusView> {
    if (!(await this.outbox.setEnabled(name, enabled))) throw new AirlockError("NOT_FOUND", `no SIEM sink ${name}`);
    this.log.warn({ sink: name, by }, enabled ? "SIEM sink enabled: events are queued for it again" : "SIEM sink disabled: no events are queued for it until it is enabled again");
    return this.sinkStatus(name);
  }

  /** Makes `name`'s dead-lettered events due again (with a fresh count of refusals); returns how many. */
  async retryDeadLetters(name: string, by: string): Promise<number> {
    await this.sinkStatus(name);
    const n = await this.outbox.redeliverDeadLetters(name);
    this.log.info({ sink: name, by, events: n }, "dead-lettered SIEM events are due again");
    return n;
  }

  /** Stops every loop; undelivered events stay in the outbox for the next start. */
  async stop(): Promise<void> {
    await Promise.all([...this.forwarders.values()].map((f) => f.stop()));
  }
}
