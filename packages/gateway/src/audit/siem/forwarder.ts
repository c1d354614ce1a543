// One delivery loop per sink: lease a batch from the outbox, hand it to the
// transport, delete what was acknowledged, put the rest back with a backoff.
//
// At least once: a row leaves the outbox only after its sink took it, so a
// sink outage, a gateway restart or a crash between delivery and delete means
// a later redelivery, never a loss. Receivers dedupe by event id.
//
// Two kinds of failure:
// - The transport's (connection refused, 5xx, timeouts): retried with a
//   backoff for as long as it takes, nothing is ever given up. The failed rows
//   hold back newer ones (outbox.ts), so the loop itself waits out the backoff.
// - The receiver refusing what it was sent (DeliveryResult.rejected: a 4xx, a
//   collector breaking the connection on one message): the batch is split and
//   its events are sent one at a time, so the others get through. An event
//   refused on its own is noted (`rejected k/n`), retried with a backoff
//   without holding anything back, and dead-lettered on its n-th refusal.
//   Refusals only count while the receiver takes other events (in the same
//   round, or in the last one when a round holds nothing but events it
//   refused before): a receiver that refuses everything (a wrong token, a
//   proxy in the way) is misconfigured or down, and is treated like an outage.
//
// Idle cost is one indexed UPDATE that matches nothing per poll. Memory is one
// batch.
import type { Logger } from "@airlock/shared";
import { toEvent } from "./events.js";
import { DEAD_LETTER_PREFIX, REJECTED_PREFIX, refusalsOf, type Outbox, type OutboxRow } from "./outbox.js";
import { describeError, type DeliveryResult, type SinkTransport } from "./transport.js";

export interface ForwarderOptions {
  batch: number;
  pollMs: number;
  /** First retry delay; doubles per attempt. */
  retryBaseMs: number;
  /** Longest retry delay (tests use a small one). */
  retryMaxMs: number;
  /** How long a leased batch is ours; must outlast a delivery attempt. */
  leaseMs: number;
  /** An event the receiver refused this many times is dead-lettered (default 20). */
  deadLetterAfter?: number;
  log: Logger;
  random?: () => number;
}

export interface ForwarderStats {
  delivered: number;
  failures: number;
  /** Single events the receiver refused (each refusal counted). */
  refused: number;
  /** Events this process dead-lettered. */
  deadLettered: number;
  lastDeliveredAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

/** Exponential in the attempt number, capped, with half of it random so many gateways don't retry in step. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export const DEFAULT_DEAD_LETTER_AFTER = 20;

const refusedBefore = (r: OutboxRow) => r.lastError?.startsWith(REJECTED_PREFIX) ?? false;

/**
 * A leased batch as the requests to send: rows the receiver refused before go
 * alone (so one bad event does not fail a whole batch again), the rows
 * between them together.
 */
export function groupsOf(rows: OutboxRow[]): OutboxRow[][] {
  const out: OutboxRow[][] = [];
  let run: OutboxRow[] = [];
  for (const r of rows) {
    if (refusedBefore(r)) {
      if (run.length) out.push(run);
      out.push([r]);
      run = [];
    } else run.push(r);
  }
  if (run.length) out.push(run);
  return out;
}

export class SinkForwarder {
  private readonly stats: ForwarderStats = { delivered: 0, failures: 0, refused: 0, deadLettered: 0, lastDeliveredAt: null, lastError: null, lastErrorAt: null };
  private readonly abort = new AbortController();
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  /** Store errors are logged once per streak, not once per poll. */
  private storeFailing = false;
  /** The sink failed last time: its recovery is worth a log line. */
  private sinkFailing = false;
  /** The last round showed the receiver taking events: refusals then are about the events refused. */
  private takingEvents = false;

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
    const groups = groupsOf(rows);
    /** Single events the receiver refused this round, settled once the round shows whether it took anything. */
    const refused: Array<{ row: OutboxRow; error: string }> = [];
    let accepted = 0;
    let failed: OutboxRow[] = [];
    let failure: string | null = null;
    for (let group = groups.shift(); group; group = groups.shift()) {
      const result = await this.transport.deliver(group.map(toEvent), this.abort.signal).catch((err: unknown): DeliveryResult => ({ delivered: 0, error: describeError(err) }));
      const n = Math.max(0, Math.min(result.delivered, group.length));
      await this.delivered(group.slice(0, n));
      accepted += n;
      const rest = group.slice(n);
      if (!rest.length) continue;
      const error = result.error ?? "not delivered";
      if (result.rejected && !this.stopped) {
        // Refused as a unit: try them one by one (the receiver may refuse just one of them); the rest as before.
        const k = Math.max(1, Math.min(result.rejected, rest.length));
        if (rest.length > k) groups.unshift(rest.slice(k));
        if (k === 1) refused.push({ row: rest[0]!, error });
        else groups.unshift(...rest.slice(0, k).map((r) => [r]));
        continue;
      }
      // A transport failure: this request's rows and every one not tried yet wait.
      failed = [...rest, ...groups.flat()];
      failure = error;
      break;
    }
    // Whether the receiver takes events: it took some now, or it did last round and all it got now were
    // events it had refused before. New events refused one and all say more about the receiver (a wrong
    // token, a proxy refusing everything) than about them: an outage, and no refusal counts.
    this.takingEvents = accepted > 0 || (this.takingEvents && failure === null && rows.every(refusedBefore));
    if (refused.length && !this.takingEvents) {
      failed = [...refused.map((r) => r.row), ...failed];
      failure ??= refused[0]!.error;
      refused.length = 0;
    }
    for (const { row, error } of refused) await this.refuse(row, error);
    if (!failed.length) return 0;
    const error = failure ?? "not delivered";
    if (this.stopped) {
      // Shutting down is not the sink's fault: due again at once, no error recorded.
      await this.outbox.release(failed.map((r) => r.id)).catch(() => {});
      return 0;
    }
    const attempts = Math.max(...failed.map((r) => r.attempts));
    const delay = backoffMs(attempts, this.opts.retryBaseMs, this.opts.retryMaxMs, this.opts.random);
    this.failed(error);
    this.opts.log.warn({ sink, target: this.transport.target, events: failed.length, attempts, retryInMs: delay, err: error }, "SIEM delivery failed; retrying");
    try {
      await this.outbox.retry(failed.map((r) => r.id), delay, error);
    } catch (err) {
      // The lease still protects the rows; when it runs out they are due again.
      this.opts.log.warn({ sink, err: describeError(err) }, "cannot reschedule failed SIEM events");
    }
    return delay;
  }

  /** The sink took `done`: out of the outbox. */
  private async delivered(done: OutboxRow[]): Promise<void> {
    if (!done.length) return;
    const sink = this.transport.name;
    try {
      await this.outbox.ack(done.map((r) => r.id));
    } catch (err) {
      // Delivered but still queued: the lease runs out and the events go again (duplicates, not losses).
      this.opts.log.warn({ sink, events: done.length, err: describeError(err) }, "delivered SIEM events could not be removed from the outbox; they will be sent again");
    }
    this.stats.delivered += done.length;
    this.stats.lastDeliveredAt = new Date();
    if (this.sinkFailing) this.opts.log.info({ sink, target: this.transport.target }, "SIEM sink is taking events again");
    this.sinkFailing = false;
  }

  private failed(error: string): void {
    this.stats.failures++;
    this.sinkFailing = true;
    this.stats.lastError = error;
    this.stats.lastErrorAt = new Date();
  }

  /** The receiver refused `row` on its own while taking others: noted and retried later, or dead-lettered. */
  private async refuse(row: OutboxRow, error: string): Promise<void> {
    const sink = this.transport.name;
    const limit = this.opts.deadLetterAfter ?? DEFAULT_DEAD_LETTER_AFTER;
    const times = refusalsOf(row.lastError) + 1;
    this.stats.refused++;
    this.stats.lastError = error;
    this.stats.lastErrorAt = new Date();
    try {
      if (times >= limit) {
        await this.outbox.deadLetter([row.id], `${DEAD_LETTER_PREFIX}refused ${times} times: ${error}`);
        this.stats.deadLettered++;
        this.opts.log.error(
          { sink, target: this.transport.target, event: row.eventId, refusals: times, err: error },
          `SIEM receiver keeps refusing an event: dead-lettered (it holds nothing back and is not sent again until \`airlock audit sinks retry ${sink}\`)`,
        );
      } else {
        const delay = backoffMs(times, this.opts.retryBaseMs, this.opts.retryMaxMs, this.opts.random);
        await this.outbox.refuse([row.id], delay, `${REJECTED_PREFIX}${times}/${limit}: ${error}`);
        this.opts.log.warn({ sink, target: this.transport.target, event: row.eventId, refusals: times, deadLetterAfter: limit, retryInMs: delay, err: error }, "SIEM receiver refused an event; retrying it alone");
      }
    } catch (err) {
      // The lease still protects the row; when it runs out it is due again (this refusal not counted).
      this.opts.log.warn({ sink, err: describeError(err) }, "cannot reschedule a refused SIEM event");
    }
  }
}
