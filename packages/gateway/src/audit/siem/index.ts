// SIEM streaming of the audit record: session starts/ends and statement
// records/completions, queued by database triggers in the durable outbox and
// forwarded by one loop per configured sink (signed webhook, syslog over
// TCP/TLS). See docs/siem.md.
import { AirlockError, type Logger } from "@airlock/shared";
import type { AuditConfig, SinkConfig } from "../config.js";
import { SinkForwarder } from "./forwarder.js";
import { Outbox, type SqlQuery } from "./outbox.js";
import { SyslogSink } from "./syslog.js";
import type { SinkTransport } from "./transport.js";
import { WebhookSink } from "./webhook.js";

export { Outbox, type OutboxRow, type OutboxStatus, type SqlQuery } from "./outbox.js";
export { SinkForwarder, backoffMs, type ForwarderOptions, type ForwarderStats } from "./forwarder.js";
export { toEvent, type SiemEvent } from "./events.js";
export { WebhookSink, deliveryId } from "./webhook.js";
export { SyslogSink } from "./syslog.js";

export interface SiemOptions {
  sinks: SinkConfig[];
  delivery?: AuditConfig["delivery"];
  sql: SqlQuery;
  log: Logger;
  /** First retry delay (default 500 ms). */
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

/** What `GET /api/v1/audit/sinks` shows per sink. */
export interface SinkStatusView {
  name: string;
  /** null for a sink row left from an earlier configuration. */
  type: "webhook" | "syslog" | null;
  /** Scheme, host and port only. */
  target: string | null;
  configured: boolean;
  enabled: boolean;
  pending: number;
  oldestPendingSeconds: number | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Events this gateway process delivered since it started. */
  delivered: number;
  lastDeliveredAt: string | null;
}

const DEFAULT_BATCH = 100;

function transportFor(sink: SinkConfig, timeoutMs: number, fetchFn?: typeof fetch): SinkTransport {
  if (sink.type === "webhook") return new WebhookSink({ name: sink.name, url: sink.url, secret: sink.secret, timeoutMs, ...(fetchFn ? { fetch: fetchFn } : {}) });
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
  ) {}

  /**
   * Registers exactly the configured sinks (others are disabled, so the
   * outbox stops growing for them) and starts delivering. Throws
   * CONFIG_INVALID for a duplicate name or an unusable URL.
   */
  static async start(opts: SiemOptions): Promise<SiemForwarding> {
    const names = opts.sinks.map((s) => s.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new AirlockError("CONFIG_INVALID", `SIEM sink name ${dup} is used twice`);
    const timeoutMs = (opts.delivery?.timeoutSeconds ?? 10) * 1000;
    const transports = opts.sinks.map((s) => ({ sink: s, transport: transportFor(s, timeoutMs, opts.fetch) }));
    const outbox = new Outbox(opts.sql);
    await outbox.syncSinks(names);
    const forwarders = new Map<string, SinkForwarder>();
    for (const { sink, transport } of transports) {
      const f = new SinkForwarder(transport, outbox, {
        batch: sink.type === "webhook" ? (sink.batch ?? DEFAULT_BATCH) : DEFAULT_BATCH,
        pollMs: opts.delivery?.pollMs ?? 500,
        retryBaseMs: opts.retryBaseMs ?? 500,
        retryMaxMs: (opts.delivery?.retryMaxSeconds ?? 60) * 1000,
        // Connect plus write (syslog) each within the timeout, with room to spare.
        leaseMs: 2 * timeoutMs + 30_000,
        log: opts.log,
      });
      forwarders.set(sink.name, f);
      f.start();
      opts.log.info({ sink: sink.name, type: sink.type, target: transport.target }, "SIEM sink enabled");
    }
    return new SiemForwarding(outbox, forwarders);
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
        delivered: s?.delivered ?? 0,
        lastDeliveredAt: s?.lastDeliveredAt?.toISOString() ?? null,
      };
    });
  }

  /** Stops every loop; undelivered events stay in the outbox for the next start. */
  async stop(): Promise<void> {
    await Promise.all([...this.forwarders.values()].map((f) => f.stop()));
  }
}
