import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { AirlockError } from "@airlock/shared";
import type { Role } from "../auth/principal.js";
import { CALLBACK_DELIVERY_HEADER, checkCallbackSecrets, principalFromUser, ReplayCache, UUID_PATTERN, verifyCallback, type CallbackKeys } from "../reviews/callback.js";
import { SIGNATURE_HEADER } from "../reviews/notify/index.js";
import type { ReviewService } from "../reviews/service.js";
import type { Store } from "../store/index.js";

export interface ReviewCallbackRoutesOptions {
  reviews: ReviewService;
  store: Store;
  /** Shared secrets (current first, then the previous one during a rotation); empty = callbacks off (the route answers 404). */
  secrets: string[];
  /** Roles for the reviewer's groups under the current mappings; default: the roles stored at their last sign-in. */
  rolesFor?: (groups: string[]) => Role[];
  /** Tests only: a replay cache to look into. */
  replay?: ReplayCache;
}

export const CALLBACK_BODY_LIMIT = 16 * 1024;

const CallbackBody = Type.Object(
  {
    reviewId: Type.String({ pattern: UUID_PATTERN }),
    decision: Type.Union([Type.Literal("approve"), Type.Literal("reject")]),
    /** The deciding person: a user's name as records show it. */
    reviewer: Type.String({ minLength: 1, maxLength: 256 }),
    reason: Type.Optional(Type.String({ maxLength: 1000 })),
    scope: Type.Optional(Type.Union([Type.Literal("once"), Type.Literal("session"), Type.Literal("identity")])),
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    windowSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 7 * 86400 })),
  },
  { additionalProperties: false },
);

// Exact bytes or nothing: a lenient decoder would map different bodies to one string.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, (k, v: unknown) => {
      if (k === "__proto__") throw new AirlockError("INVALID_ARGUMENT", 'body must not contain "__proto__"');
      return v;
    });
  } catch (err) {
    if (err instanceof AirlockError) throw err;
    throw new AirlockError("INVALID_ARGUMENT", `body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * A decision from a trusted approval system, signed with a shared secret
 * instead of a bearer token (so the route is public to the auth hook).
 * Order of checks, so that nothing about the body is answered to a caller
 * who cannot sign: size (16 KiB) → signature and timestamp over the raw body
 * → delivery id and replay → JSON and schema → the named reviewer is an
 * active user → the review service's own rules (eligibility, self-approval,
 * closed reviews). Every refusal is problem JSON and changes nothing.
 */
export const reviewCallbackRoutes: FastifyPluginAsyncTypebox<ReviewCallbackRoutesOptions> = async (app, opts) => {
  const { reviews, store, rolesFor } = opts;
  const secrets = [...opts.secrets];
  const routeSchema = {
    tags: ["reviews"],
    summary: "Decide a review from a trusted approval system (HMAC-signed with a shared secret, no bearer token)",
    description:
      `Signed like Airlock's outbound webhooks: ${SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>; ` +
      `${CALLBACK_DELIVERY_HEADER}: a fresh UUID per delivery. Timestamps older or newer than 5 minutes and repeated deliveries are refused.`,
    security: [],
  };

  if (!secrets.length) {
    // Feature off: a clear 404 before any body is read.
    app.post("/reviews/callback", {
      config: { public: true },
      schema: { ...routeSchema, hide: true },
      bodyLimit: CALLBACK_BODY_LIMIT,
      onRequest: async () => {
        throw new AirlockError("NOT_FOUND", "review callbacks are off on this gateway (no callback secret is configured: AIRLOCK_REVIEW_CALLBACK_SECRETS)");
      },
    }, async () => ({}));
    return;
  }
  checkCallbackSecrets(secrets);
  const replay = opts.replay ?? new ReplayCache();
  // What each authenticated request claimed in the replay cache.
  const claimed = new WeakMap<FastifyRequest, CallbackKeys>();

  const authenticate = (req: FastifyRequest, rawBody: string): void => {
    const keys = verifyCallback({ secrets, signature: req.headers[SIGNATURE_HEADER], delivery: req.headers[CALLBACK_DELIVERY_HEADER], rawBody, nowMs: Date.now() }, replay);
    claimed.set(req, keys);
  };

  // This plugin's own context only: JSON alone, kept as raw bytes and
  // authenticated before it is parsed. Other content types get 415 (as 400).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: CALLBACK_BODY_LIMIT }, (req, body, done) => {
    try {
      let raw: string;
      try {
        raw = utf8.decode(body as Buffer);
      } catch {
        throw new AirlockError("INVALID_ARGUMENT", "body is not valid UTF-8");
      }
      authenticate(req, raw);
      done(null, parseJson(raw));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.post(
    "/reviews/callback",
    {
      config: { public: true },
      bodyLimit: CALLBACK_BODY_LIMIT,
      schema: { ...routeSchema, body: CallbackBody },
      // No body at all means no parser ran: authenticate the empty body, so an unsigned caller still gets 401 first.
      preValidation: async (req) => {
        if (!claimed.has(req)) authenticate(req, "");
      },
    },
    async (req) => {
      const keys = claimed.get(req)!;
      const b = req.body;
      try {
        if (b.decision === "reject") {
          if (!b.reason?.trim()) throw new AirlockError("INVALID_ARGUMENT", "body.reason is required to reject a review");
          if (b.scope !== undefined || b.uses !== undefined || b.windowSeconds !== undefined) throw new AirlockError("INVALID_ARGUMENT", "body.scope, body.uses and body.windowSeconds apply to approvals only");
        }
        const user = await store.prisma.user.findUnique({ where: { name: b.reviewer }, select: { name: true, provider: true, groups: true, roles: true, deletedAt: true } });
        const reviewer = principalFromUser(b.reviewer, user, Date.now(), rolesFor);
        const v =
          b.decision === "approve"
            ? await reviews.approve(b.reviewId, reviewer, { reason: b.reason, scope: b.scope, uses: b.uses, windowSeconds: b.windowSeconds })
            : await reviews.reject(b.reviewId, reviewer, b.reason);
        req.log.info({ review: v.id, reviewer: reviewer.subject, decision: b.decision, status: v.status, delivery: req.headers[CALLBACK_DELIVERY_HEADER] }, "review decided by signed callback");
        return v;
      } catch (err) {
        // Our failure (store down, a bug), not the sender's: its retry of this delivery must not be refused as a replay.
        if (AirlockError.from(err).status >= 500) replay.release(keys);
        throw err;
      }
    },
  );
};
