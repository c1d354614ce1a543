// One delivery loop per sink: lease a batch from the outbox, hand it to the
// transport, delete what was acknowledged, put the rest back with a backoff.
//
// At least once: a row leaves the outbox only after its sink took it, so a
// sink outage, a gateway restart or a crash between delivery and delete means
// a later redelivery, never a loss. Receivers dedupe by event id.
//
// Idle cost is one indexed UPDATE that matches nothing per poll. Memory is one
// batch. After a failure the loop itself waits out the backoff: the failed
// rows hold back newer ones (outbox.ts), so there is nothing else to send.
import type { Logger } from "@airlock/shared";
import { toEvent } from "./events.js";
import type { Outbox, OutboxRow } from "./outbox.js";
import { describeError, type SinkTransport } from "./transport.js";

export interface ForwarderOptions {
  batch: number;
  pollMs: number;
  /** First retry delay; doubles per attempt. */
  retryBaseMs: number;
  /** Longest retry delay (tests use a small one). */
  retryMaxMs: number;
  /** How long a leased batch is ours; must outlast a delivery attempt. */
  leaseMs: number;
  log: Logger;
  random?: () => number;
}

export interface ForwarderStats {
  delivered: number;
  failures: number;
  lastDeliveredAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

/** Exponential in the attempt number, capped, with half of it random so many gateways don't retry in step. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export class SinkForwarder {
  private readonly stats: ForwarderStats = { delivered: 0, failures: 0, lastDeliveredAt: null, lastError: null, lastErrorAt: null };
  private readonly abort = new AbortController();
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  /** Store errors are logged once per streak, not once per poll. */
  private storeFailing = false;
  /** The sink failed last time: its recovery is worth a log line. */
  private sinkFailing = false;

  constructor(
    readonly transport: SinkTransport,
    private readonly outbox: Outbox,
    private readonly opts: ForwarderOptions,
  ) {}

  get snapshot(): ForwarderStats {
    return { ...this.stats };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the loop; a delivery in flight is aborted and its rows come due again at once. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
    await this.transport.close().catch(() => {});
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** A pause stop() can cut short. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let rows: OutboxRow[];
      try {
        rows = await this.outbox.lease(this.transport.name, this.opts.batch, this.opts.leaseMs);
        if (this.storeFailing) this.opts.log.info({ sink: this.transport.name }, "SIEM outbox readable again");
        this.storeFailing = false;
      } catch (err) {
        if (!this.storeFailing) this.opts.log.warn({ sink: this.transport.name, err: describeError(err) }, "cannot read the SIEM outbox; retrying");
        this.storeFailing = true;
        await this.sleep(Math.max(this.opts.pollMs, 1_000));
        continue;
      }
      if (!rows.length) {
        await this.sleep(this.opts.pollMs);
        continue;
      }
      const wait = await this.deliver(rows);
      // A full batch means more is probably waiting: go on without a pause.
      if (wait > 0) await this.sleep(wait);
      else if (rows.length < this.opts.batch) await this.sleep(this.opts.pollMs);
    }
  }

  /** Delivers one leased batch; returns how long to wait before the next one. */
  private async deliver(rows: OutboxRow[]): Promise<number> {
    const sink = this.transport.name;
    const result = await this.transport.deliver(rows.map(toEvent), this.abort.signal).catch((err: unknown) => ({ delivered: 0, error: describeError(err) }));
    const done = rows.slice(0, result.delivered);
    const failed = rows.slice(result.delivered);
    try {
      await this.outbox.ack(done.map((r) => r.id));
    } catch (err) {
      // Delivered but still queued: the lease runs out and the events go again (duplicates, not losses).
      this.opts.log.warn({ sink, events: done.length, err: describeError(err) }, "delivered SIEM events could not be removed from the outbox; they will be sent again");
    }
    if (done.length) {
      this.stats.delivered += done.length;
      this.stats.lastDeliveredAt = new Date();
      if (this.sinkFailing) this.opts.log.info({ sink, target: this.transport.target }, "SIEM sink is taking events again");
      this.sinkFailing = false;
    }
    if (!failed.length) return 0;
    const error = result.error ?? "not delivered";
    if (this.stopped) {
      // Shutting down is not the sink's fault: due again at once, no error recorded.
      await this.outbox.retry(failed.map((r) => r.id), 0, error).catch(() => {});
      return 0;
    }
    const attempts = Math.max(...failed.map((r) => r.attempts));
    const delay = backoffMs(attempts, this.opts.retryBaseMs, this.opts.retryMaxMs, this.opts.random);
    this.stats.failures++;
    this.sinkFailing = true;
    this.stats.lastError = error;
    this.stats.lastErrorAt = new Date();
    this.opts.log.warn({ sink, target: this.transport.target, events: failed.length, attempts, retryInMs: delay, err: error }, "SIEM delivery failed; retrying");
    try {
      await this.outbox.retry(failed.map((r) => r.id), delay, error);
    } catch (err) {
      // The lease still protects the rows; when it runs out they are due again.
      this.opts.log.warn({ sink, err: describeError(err) }, "cannot reschedule failed SIEM events");
    }
    return delay;
  }
}
