// The signed webhook sink: one POST per batch, a JSON array of events.
//
//   content-type: application/json
//   x-airlock-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>   (as review webhooks)
//   x-airlock-delivery: <hash of the batch's event ids>   (same on every retry of the same batch)
//
// Any 2xx acknowledges the whole batch; anything else (redirects included:
// following one would send the signed audit record somewhere nobody
// configured) fails it and the forwarder retries. The URL is never logged or
// shown whole (a path or query may carry a token); the secret never at all.
import { createHash } from "node:crypto";
import { AIRLOCK_VERSION, AirlockError } from "@airlock/shared";
import { DELIVERY_HEADER, SIGNATURE_HEADER, signWebhook } from "../../reviews/notify/signature.js";
import type { SiemEvent } from "./events.js";
import { describeError, type DeliveryResult, type SinkTransport } from "./transport.js";

export interface WebhookSinkOptions {
  name: string;
  url: string;
  secret: string;
  /** Per attempt, including reading the answer. */
  timeoutMs: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

/** Enough of an error answer to explain it in `airlock audit sinks`. */
const ERROR_SNIPPET_BYTES = 200;

/** Stable for the same events, different as soon as the batch differs (a retry may carry more events). */
export function deliveryId(events: SiemEvent[]): string {
  return createHash("sha256").update(events.map((e) => e.id).join("\n")).digest("hex").slice(0, 32);
}

async function snippet(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Only for the error text; a broken answer changes nothing.
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, ERROR_SNIPPET_BYTES).toString("utf8").replace(/\s+/g, " ").trim();
}

export class WebhookSink implements SinkTransport {
  readonly kind = "webhook";
  readonly name: string;
  readonly target: string;
  private readonly url: string;
  private readonly secret: string;
  private readonly timeoutMs: number;
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
    this.fetchFn = opts.fetch ?? fetch;
    this.now = opts.now ?? (() => new Date());
  }

  async deliver(events: SiemEvent[], signal: AbortSignal): Promise<DeliveryResult> {
    if (!events.length) return { delivered: 0 };
    const body = JSON.stringify(events);
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
        return { delivered: events.length };
      }
      const text = await snippet(res);
      const redirect = res.status >= 300 && res.status < 400 ? " (redirects are not followed)" : "";
      return { delivered: 0, error: `HTTP ${res.status}${text ? `: ${text}` : ""}${redirect}` };
    } catch (err) {
      return { delivered: 0, error: describeError(err) };
    }
  }

  async close(): Promise<void> {}
}
