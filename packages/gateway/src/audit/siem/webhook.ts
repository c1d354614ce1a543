// The webhook sink: each batch is one signed POST whose body is a JSON array of
// events (events.ts):
//
//   content-type: application/json
//   x-airlock-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>   (as review webhooks)
//   x-airlock-delivery: <hash of the batch's event ids>   (same on every retry of the same batch)
//
// A batch is capped in events (the forwarder's lease) and in bytes (here: a
// leased batch goes out as several POSTs when its JSON would be larger; an
// event larger than the cap on its own goes alone). Any 2xx acknowledges a
// POST. A 4xx other than 408/429 is the receiver refusing what was sent
// (413 too large, 400/422 invalid, …): reported as `rejected`, so the
// forwarder splits the batch and can dead-letter an event it keeps refusing.
// Anything else (5xx, 408, 429, timeouts, connection errors, and redirects:
// following one would send the signed audit record somewhere nobody
// configured) is a transport failure, retried for as long as it takes. The URL
// is never logged or shown whole (a path or query may carry a token); the
// secret never at all.
import { createHash } from "node:crypto";
import { AIRLOCK_VERSION, AirlockError } from "@airlock/shared";
import { DELIVERY_HEADER, SIGNATURE_HEADER, signWebhook } from "../../reviews/notify/signature.js";
import type { SiemEvent } from "./events.js";
import { describeError, type DeliveryResult, type SinkTransport } from "./transport.js";
import { answerSnippet } from "../../http/snippet.js";

export interface WebhookSinkOptions {
  name: string;
  url: string;
  secret: string;
  /** Per attempt, including reading the answer. */
  timeoutMs: number;
  /** Largest POST body; a leased batch whose JSON is larger goes out in several POSTs (default 1 MiB). */
  maxBatchBytes?: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

/** Enough of an error answer to explain it in `airlock audit sinks`. */
const ERROR_SNIPPET_BYTES = 200;

export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;

/**
 * A 4xx the same request would get again: the receiver refuses what was sent.
 * 408 (request timeout) and 429 (slow down) are about timing, not content.
 */
export function isRefusal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * Consecutive runs of `events` whose JSON array body stays within `maxBytes`;
 * an event that alone is larger gets a run of its own. The body is exactly
 * JSON.stringify(run).
 */
export function chunkByBytes(events: SiemEvent[], maxBytes: number): Array<{ events: SiemEvent[]; body: string }> {
  const out: Array<{ events: SiemEvent[]; body: string }> = [];
  let run: SiemEvent[] = [];
  let parts: string[] = [];
  let size = 2; // "[" and "]"
  const flush = () => {
    if (run.length) out.push({ events: run, body: `[${parts.join(",")}]` });
    run = [];
    parts = [];
    size = 2;
  };
  for (const e of events) {
    const json = JSON.stringify(e);
    const bytes = Buffer.byteLength(json);
    // +1 for the comma before every event but the first.
    if (run.length && size + 1 + bytes > maxBytes) flush();
    size += bytes + (run.length ? 1 : 0);
    run.push(e);
    parts.push(json);
  }
  flush();
  return out;
}

/** Stable for the same events, different as soon as the batch differs (a retry may carry more events). */
export function deliveryId(events: SiemEvent[]): string {
  return createHash("sha256").update(events.map((e) => e.id).join("\n")).digest("hex").slice(0, 32);
}


export class WebhookSink implements SinkTransport {
  readonly kind = "webhook";
  readonly name: string;
  readonly target: string;
  private readonly url: string;
  private readonly secret: string;
  private readonly timeoutMs: number;
  private readonly maxBatchBytes: number;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => Date;

  constructor(opts: WebhookSinkOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new AirlockError("CONFIG_INVALID", `SIEM sink ${opts.name}: url is not a valid URL`);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new AirlockError("CONFIG_INVALID", `SIEM sink ${opts.name}: url must be http(s)`);
    if (!opts.secret) throw new AirlockError("CONFIG_INVALID", `SIEM sink ${opts.name}: a webhook sink needs a secret to sign with`);
    this.name = opts.name;
    this.target = u.origin;
    this.url = opts.url;
    this.secret = opts.secret;
    this.timeoutMs = opts.timeoutMs;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.fetchFn = opts.fetch ?? fetch;
    this.now = opts.now ?? (() => new Date());
  }

  async deliver(events: SiemEvent[], signal: AbortSignal): Promise<DeliveryResult> {
    let delivered = 0;
    for (const chunk of chunkByBytes(events, this.maxBatchBytes)) {
      if (signal.aborted) return { delivered, error: "gateway is stopping" };
      const r = await this.post(chunk.events, chunk.body, signal);
      if (r.ok) {
        delivered += chunk.events.length;
        continue;
      }
      return { delivered, error: r.error, ...(r.refused ? { rejected: chunk.events.length } : {}) };
    }
    return { delivered };
  }

  /** One signed POST of `body` (the JSON array of `events`). */
  private async post(events: SiemEvent[], body: string, signal: AbortSignal): Promise<{ ok: true } | { ok: false; error: string; refused: boolean }> {
    const headers = {
      "content-type": "application/json",
      "user-agent": `airlock-gateway/${AIRLOCK_VERSION}`,
      // Signed per attempt: a retry after a long outage must not carry a timestamp receivers reject as stale.
      [SIGNATURE_HEADER]: signWebhook(this.secret, body, Math.floor(this.now().getTime() / 1000)),
      [DELIVERY_HEADER]: deliveryId(events),
    };
    try {
      const res = await this.fetchFn(this.url, {
        method: "POST",
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {});
        return { ok: true };
      }
      const text = await answerSnippet(res, ERROR_SNIPPET_BYTES);
      const redirect = res.status >= 300 && res.status < 400 ? " (redirects are not followed)" : "";
      return { ok: false, error: `HTTP ${res.status}${text ? `: ${text}` : ""}${redirect}`, refused: isRefusal(res.status) };
    } catch (err) {
      return { ok: false, error: describeError(err), refused: false };
    }
  }

  async close(): Promise<void> {}
}
