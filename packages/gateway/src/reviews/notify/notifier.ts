// Delivers review events to the configured webhooks in the background.
//
// Reviews must never wait on Slack: notify() only queues and returns. The
// queue is bounded (a dead receiver must not grow memory without limit), at
// most MAX_IN_FLIGHT requests run at once (a slow receiver must not pile up
// sockets), and a delivery is retried with exponential backoff on network
// errors, timeouts, 5xx and 429 only; other answers will not change on retry.
//
// Target URLs are never logged whole: Slack incoming-webhook URLs carry their
// secret in the path. Logs name a target by index, format and origin.
import { randomUUID } from "node:crypto";
import { AIRLOCK_VERSION, AirlockError, type Logger } from "@airlock/shared";
import { genericBody } from "./generic.js";
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook } from "./signature.js";
import { slackMessage } from "./slack.js";
import type { ReviewEventType, ReviewSummary, WebhookTarget } from "./types.js";
import { answerSnippet } from "../../http/snippet.js";

const MAX_IN_FLIGHT = 4;
const BACKOFF_BASE_MS = 500;
/** Longest wait a receiver's Retry-After can ask for; beyond that we give up sooner rather than hold the queue. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Enough of an error answer to explain it in the log (Slack answers e.g. "invalid_payload"). */
const ERROR_SNIPPET_BYTES = 200;

export interface ReviewNotifierOptions {
  log: Logger;
  /** Per attempt, including reading the answer. Default 5000. */
  timeoutMs?: number;
  /** Attempts after the first. Default 3 (waits 0.5 s, 1 s, 2 s). */
  retries?: number;
  /** Deliveries accepted but not finished (waiting, in flight, backing off). Default 1000. */
  maxQueue?: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

interface Target extends WebhookTarget {
  index: number;
  /** What logs may show: scheme, host and port. */
  origin: string;
}

interface Job {
  target: Target;
  type: ReviewEventType;
  body: string;
  /** Same on every attempt, so receivers can drop duplicates. */
  deliveryId: string;
  attempts: number;
  done: Promise<void>;
  finish: () => void;
}

type Outcome = { ok: true; status: number } | { ok: false; retry: boolean; reason: string; retryAfterMs?: number };

function checkTargets(targets: WebhookTarget[]): Target[] {
  if (!Array.isArray(targets)) throw new AirlockError("CONFIG_INVALID", "webhook targets must be a list");
  return targets.map((t, index) => {
    // Messages never quote the URL or the secret: both may be secret.
    let u: URL;
    try {
      u = new URL(t.url);
    } catch {
      throw new AirlockError("CONFIG_INVALID", `webhook target #${index + 1}: url is not a valid URL`);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new AirlockError("CONFIG_INVALID", `webhook target #${index + 1}: url must be http(s), not ${u.protocol}`);
    if (t.format !== "generic" && t.format !== "slack") throw new AirlockError("CONFIG_INVALID", `webhook target #${index + 1}: format must be "generic" or "slack"`);
    if (t.format === "generic" && (typeof t.secret !== "string" || t.secret.length === 0)) {
      throw new AirlockError("CONFIG_INVALID", `webhook target #${index + 1}: the generic format needs a secret to sign with`);
    }
    return { url: t.url, format: t.format, secret: t.secret, index, origin: u.origin };
  });
}

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new AirlockError("CONFIG_INVALID", `webhook ${name} must be a whole number >= ${min}`);
  return value;
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (!value) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - nowMs;
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}


function failureReason(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "timed out";
  if (!(err instanceof Error)) return String(err);
  // undici reports "fetch failed" and hides the socket error in `cause`.
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  return detail === undefined ? err.message : `${err.message} (${detail})`;
}

export class ReviewNotifier {
  private readonly targets: Target[];
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxQueue: number;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => Date;
  /** Every accepted, unfinished delivery; its size is what maxQueue bounds. */
  private readonly jobs = new Set<Job>();
  /** Deliveries waiting for one of the MAX_IN_FLIGHT slots. */
  private readonly ready: Job[] = [];
  private inFlight = 0;
  private overflowing = false;
  private readonly counts = { delivered: 0, failed: 0, dropped: 0 };

  constructor(targets: WebhookTarget[], opts: ReviewNotifierOptions) {
    this.targets = checkTargets(targets);
    this.log = opts.log;
    this.timeoutMs = checkCount("timeoutMs", opts.timeoutMs ?? 5000, 1);
    this.retries = checkCount("retries", opts.retries ?? 3, 0);
    this.maxQueue = checkCount("maxQueue", opts.maxQueue ?? 1000, 1);
    this.fetchFn = opts.fetch ?? fetch;
    this.now = opts.now ?? (() => new Date());
  }

  /** A snapshot of the counters. */
  get stats(): { delivered: number; failed: number; dropped: number } {
    return { ...this.counts };
  }

  /** Queues a delivery to every target; never throws, never blocks the caller. */
  notify(type: ReviewEventType, r: ReviewSummary): void {
    if (!this.targets.length) return;
    let bodies: { generic?: string; slack?: string };
    try {
      bodies = this.render(type, r);
    } catch (err) {
      this.counts.failed += this.targets.length;
      this.log.error({ event: type, review: r?.id, err: failureReason(err) }, "review notification could not be rendered");
      return;
    }
    for (const target of this.targets) {
      const body = target.format === "generic" ? bodies.generic! : bodies.slack!;
      this.enqueue(target, type, body, r.id);
    }
  }

  /** Resolves when everything queued so far was delivered or given up. */
  async flush(): Promise<void> {
    await Promise.all([...this.jobs].map((j) => j.done));
  }

  private render(type: ReviewEventType, r: ReviewSummary): { generic?: string; slack?: string } {
    const out: { generic?: string; slack?: string } = {};
    if (this.targets.some((t) => t.format === "generic")) out.generic = genericBody(type, r, this.now());
    if (this.targets.some((t) => t.format === "slack")) out.slack = JSON.stringify(slackMessage(type, r));
    return out;
  }

  private enqueue(target: Target, type: ReviewEventType, body: string, reviewId: string): void {
    if (this.jobs.size >= this.maxQueue) {
      this.counts.dropped++;
      // One line when an overflow starts and every 100th drop after: an
      // unreachable receiver under load must not flood the log as well.
      if (!this.overflowing || this.counts.dropped % 100 === 0) {
        this.log.warn(
          { event: type, review: reviewId, target: target.index, origin: target.origin, dropped: this.counts.dropped, maxQueue: this.maxQueue },
          "review notification queue is full; dropping deliveries",
        );
      }
      this.overflowing = true;
      return;
    }
    this.overflowing = false;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const job: Job = { target, type, body, deliveryId: randomUUID(), attempts: 0, done, finish };
    this.jobs.add(job);
    this.ready.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.ready.length) {
      const job = this.ready.shift()!;
      this.inFlight++;
      void this.run(job).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** One attempt; then done, or back into the queue after a backoff that holds no slot. */
  private async run(job: Job): Promise<void> {
    job.attempts++;
    const outcome = await this.attempt(job);
    const ctx = { event: job.type, delivery: job.deliveryId, target: job.target.index, format: job.target.format, origin: job.target.origin, attempt: job.attempts };
    if (outcome.ok) {
      this.counts.delivered++;
      this.log.info({ ...ctx, status: outcome.status }, "review notification delivered");
      return this.complete(job);
    }
    if (outcome.retry && job.attempts <= this.retries) {
      const backoff = BACKOFF_BASE_MS * 2 ** (job.attempts - 1);
      const delay = Math.max(backoff, outcome.retryAfterMs ?? 0);
      this.log.warn({ ...ctx, reason: outcome.reason, retryInMs: delay }, "review notification failed; retrying");
      setTimeout(() => {
        this.ready.push(job);
        this.pump();
      }, delay);
      return;
    }
    this.counts.failed++;
    this.log.error({ ...ctx, reason: outcome.reason }, outcome.retry ? "review notification failed; giving up" : "review notification was refused");
    this.complete(job);
  }

  private complete(job: Job): void {
    this.jobs.delete(job);
    job.finish();
  }

  private async attempt(job: Job): Promise<Outcome> {
    const { target } = job;
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": `airlock-gateway/${AIRLOCK_VERSION}`,
    };
    if (target.format === "generic") {
      // Signed per attempt with the current time: a retry after backoff must
      // not arrive with a timestamp the receiver already considers stale.
      headers[SIGNATURE_HEADER] = signWebhook(target.secret!, job.body, Math.floor(this.now().getTime() / 1000));
      headers[EVENT_HEADER] = job.type;
      headers[DELIVERY_HEADER] = job.deliveryId;
    }
    try {
      const res = await this.fetchFn(target.url, {
        method: "POST",
        headers,
        body: job.body,
        // A redirect would re-send the signed body somewhere nobody configured.
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {});
        return { ok: true, status: res.status };
      }
      const text = await answerSnippet(res, ERROR_SNIPPET_BYTES);
      const reason = `HTTP ${res.status}${text ? `: ${text}` : ""}`;
      if (res.status === 429 || res.status >= 500) {
        const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), this.now().getTime());
        return retryAfterMs === undefined ? { ok: false, retry: true, reason } : { ok: false, retry: true, reason, retryAfterMs };
      }
      return { ok: false, retry: false, reason: res.status >= 300 && res.status < 400 ? `${reason} (redirects are not followed)` : reason };
    } catch (err) {
      return { ok: false, retry: true, reason: failureReason(err) };
    }
  }
}
