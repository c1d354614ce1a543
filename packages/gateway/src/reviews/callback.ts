// Inbound review decisions: a trusted approval system (a chat bot, an internal
// tool) POSTs "<person> approved/rejected review <id>", signed with a shared
// secret in the same layout as our outbound webhooks (x-airlock-signature:
// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>).
//
// The pure parts live here so they can be tested without a server:
// - verifyCallback: signature (any configured secret), timestamp tolerance,
//   delivery id, and replay refusal, in that order;
// - ReplayCache: what was already accepted in the last 10 minutes;
// - principalFromUser: the named reviewer as a Principal, only when the user
//   exists and is not deleted.
//
// Replays: x-airlock-delivery is NOT covered by the signature, so remembering
// delivery ids alone would not stop a captured request re-sent with a fresh
// id. The cache therefore also remembers the signed message itself
// (SHA-256 of "<t>.<raw body>"); a replay is refused if either was seen.
// Entries live 10 minutes from first sight, which covers the whole time a
// signature is accepted (t ± 300 s). The cache is per process: with several
// gateway processes a replay reaching another one still meets the review
// service's own rules (REVIEW_ALREADY_DECIDED / REVIEW_CLOSED), so it cannot
// decide anything twice either way.
import { createHash } from "node:crypto";
import { AirlockError } from "@airlock/shared";
import { isRole, type Principal, type Role } from "../auth/principal.js";
import { DEFAULT_TOLERANCE_SEC, verifyWebhookSignature } from "./notify/index.js";

export const CALLBACK_DELIVERY_HEADER = "x-airlock-delivery";
/** How long accepted deliveries are remembered; at least the signature's whole acceptance window (2 × tolerance). */
export const REPLAY_WINDOW_MS = 10 * 60 * 1000;
/** Bounds memory: more accepted callbacks than this within the window are refused (RATE_LIMITED), never forgotten early. */
export const REPLAY_CACHE_MAX = 10_000;
/** The principal built for one decision is good for this long (it never leaves the request). */
export const CALLBACK_PRINCIPAL_TTL_MS = 60_000;
/** Shortest secret accepted: the outbound webhook secrets have the same floor. */
export const MIN_SECRET_LENGTH = 16;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The same, for JSON schemas. */
export const UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

function replayed(message: string): AirlockError {
  return new AirlockError("WEBHOOK_SIGNATURE_INVALID", `webhook signature is invalid: ${message}`, { details: { reason: "replayed" } });
}

/**
 * Remembers keys (delivery ids, signed-message digests) for a fixed window.
 * A Map keeps insertion order, and every entry lives equally long, so expired
 * entries are always at the front: pruning is O(expired).
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  readonly windowMs: number;
  readonly max: number;

  constructor(opts: { windowMs?: number; max?: number } = {}) {
    this.windowMs = opts.windowMs ?? REPLAY_WINDOW_MS;
    this.max = opts.max ?? REPLAY_CACHE_MAX;
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    for (const [k, until] of this.seen) {
      if (until > nowMs) break;
      this.seen.delete(k);
    }
  }

  /** Whether a key is remembered (and not yet expired). */
  has(key: string, nowMs: number): boolean {
    const until = this.seen.get(key);
    return until !== undefined && until > nowMs;
  }

  /**
   * Records all keys, or none: throws WEBHOOK_SIGNATURE_INVALID (reason
   * "replayed") naming the first key already seen, RATE_LIMITED when full.
   * Keys are labelled ("delivery …", "message …") for the error text.
   */
  claim(keys: Array<{ key: string; label: string }>, nowMs: number): void {
    this.prune(nowMs);
    for (const k of keys) if (this.has(k.key, nowMs)) throw replayed(`${k.label} was already used`);
    // Fail closed: evicting a live entry would reopen its replay window.
    if (this.seen.size + keys.length > this.max) throw new AirlockError("RATE_LIMITED", `more than ${this.max} review callbacks in ${Math.round(this.windowMs / 60_000)} minutes; try again later`);
    for (const k of keys) this.seen.set(k.key, nowMs + this.windowMs);
  }

  /** Forgets keys again (the decision failed for a reason on our side, so the sender's retry must work). */
  release(keys: Array<{ key: string }>): void {
    for (const k of keys) this.seen.delete(k.key);
  }
}

export interface CallbackRequest {
  secrets: readonly string[];
  /** x-airlock-signature as received. */
  signature: string | string[] | undefined;
  /** x-airlock-delivery as received. */
  delivery: string | string[] | undefined;
  /** The body exactly as received (decoded from strict UTF-8). */
  rawBody: string;
  nowMs: number;
  toleranceSec?: number;
}

/** The replay-cache keys of a verified callback; hand them back to release() if the decision fails on our side. */
export type CallbackKeys = Array<{ key: string; label: string }>;

/**
 * Authenticates a callback before anything in its body is looked at:
 * signature over the raw body with any of the secrets (rotation), timestamp
 * within tolerance, a UUID delivery id, and neither the delivery id nor the
 * signed message seen before. Throws WEBHOOK_SIGNATURE_INVALID (401) with
 * details.reason missing|malformed|expired|future|mismatch|replayed,
 * INVALID_ARGUMENT (400) for a bad delivery id, RATE_LIMITED (429) when the
 * replay cache is full. On success the keys are already recorded.
 */
export function verifyCallback(r: CallbackRequest, replay: ReplayCache): CallbackKeys {
  if (Array.isArray(r.signature)) throw new AirlockError("WEBHOOK_SIGNATURE_INVALID", "webhook signature is invalid: x-airlock-signature appears more than once", { details: { reason: "malformed" } });
  verifyWebhookSignature([...r.secrets], r.signature, r.rawBody, Math.floor(r.nowMs / 1000), r.toleranceSec ?? DEFAULT_TOLERANCE_SEC);
  const delivery = typeof r.delivery === "string" ? r.delivery.trim() : undefined;
  if (!delivery) throw new AirlockError("INVALID_ARGUMENT", `${CALLBACK_DELIVERY_HEADER} header is required (a UUID that identifies this delivery)`);
  if (!UUID.test(delivery)) throw new AirlockError("INVALID_ARGUMENT", `${CALLBACK_DELIVERY_HEADER} must be a UUID`);
  // The header verified, so it holds exactly one well-formed t= (parsed as signature.ts does).
  const t = Number(r.signature!.split(",").map((p) => [p.slice(0, p.indexOf("=")).trim(), p.slice(p.indexOf("=") + 1).trim()] as const).find(([k]) => k === "t")![1]);
  const digest = createHash("sha256").update(`${t}.${r.rawBody}`, "utf8").digest("hex");
  const keys: CallbackKeys = [
    { key: `delivery:${delivery.toLowerCase()}`, label: `delivery ${delivery.toLowerCase()}` },
    { key: `message:${digest}`, label: "this signed request (same timestamp and body)" },
  ];
  replay.claim(keys, r.nowMs);
  return keys;
}

/** What a decision needs from a stored user (prisma `user`). */
export interface CallbackUser {
  name: string;
  provider: string;
  groups: string[];
  roles: string[];
  deletedAt: Date | null;
}

/**
 * The named reviewer as a Principal, built from the store: groups and roles as
 * of their last sign-in (or `rolesFor(groups)`, the current role mappings, when
 * given). Unknown and deleted users get REVIEW_NOT_ELIGIBLE: a callback can
 * only speak for someone who could sign in and decide themselves.
 */
export function principalFromUser(name: string, user: CallbackUser | null, nowMs: number, rolesFor?: (groups: string[]) => Role[]): Principal {
  if (!user) throw new AirlockError("REVIEW_NOT_ELIGIBLE", `reviewer ${name} is not a known user of this gateway`, { details: { reviewer: name } });
  if (user.deletedAt) throw new AirlockError("REVIEW_NOT_ELIGIBLE", `reviewer ${name} was deleted on ${user.deletedAt.toISOString()} and cannot decide reviews`, { details: { reviewer: name } });
  return {
    subject: user.name,
    kind: "user",
    roles: rolesFor ? rolesFor(user.groups) : user.roles.filter(isRole),
    groups: [...user.groups],
    tokenId: null,
    expiresAt: new Date(nowMs + CALLBACK_PRINCIPAL_TTL_MS),
    method: "oidc",
    provider: user.provider,
  };
}

/** Registration-time check of the configured secrets (empty list = feature off, allowed). */
export function checkCallbackSecrets(secrets: readonly string[]): void {
  for (const s of secrets) {
    if (typeof s !== "string" || s.length < MIN_SECRET_LENGTH) throw new AirlockError("CONFIG_INVALID", `review callback secrets must be at least ${MIN_SECRET_LENGTH} characters`);
  }
}
