// The contract between the forwarder (queue, retries) and a sink's wire format.
import type { SiemEvent } from "./events.js";

/**
 * How far a delivery got: the first `delivered` events (in the order given)
 * reached the sink and may be removed from the outbox; the rest failed with
 * `error`. A transport may stop midway (webhook requests are capped in bytes,
 * syslog writes event by event).
 *
 * `rejected` says the receiver refused the next `rejected` events (right after
 * the delivered prefix, sent as one request) with an answer that sending the
 * same thing again cannot change: a webhook's 4xx other than 408/429, or a
 * collector breaking a working connection while taking that event. The
 * forwarder then splits them up and, for a single event refused over and
 * over, dead-letters it. Without `rejected` the failure is the transport's
 * (refused connection, 5xx, timeout): retried for as long as it takes.
 * Events after the rejected ones were not tried.
 */
export interface DeliveryResult {
  delivered: number;
  error?: string;
  rejected?: number;
}

export interface SinkTransport {
  readonly name: string;
  readonly kind: "webhook" | "syslog";
  /** What status and logs may show about the destination: scheme, host, port; never a path or secret. */
  readonly target: string;
  /** Never throws: failures come back in the result. `signal` aborts it on shutdown. */
  deliver(events: SiemEvent[], signal: AbortSignal): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/** A socket or fetch error as one line: undici hides the socket error in `cause`. */
export function describeError(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "timed out";
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  const own = (err as { code?: unknown }).code;
  const base = typeof own === "string" && !err.message.includes(own) ? `${err.message} (${own})` : err.message;
  return detail === undefined ? base : `${base} (${detail})`;
}
