// Signed review callbacks (POST /api/v1/reviews/callback) in a real fastify
// app with the real auth hook, problem handler, ReviewService and an embedded
// PGlite store. Signatures are computed here by hand with node:crypto (not
// with signWebhook), so the test pins the documented layout. Every refusal is
// checked to leave the review exactly as it was.
import { createHmac, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AirlockError } from "@airlock/shared";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Principal } from "../auth/principal.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { checkCallbackSecrets, principalFromUser, ReplayCache, verifyCallback } from "../reviews/callback.js";
import { ReviewService, type ReviewView } from "../reviews/service.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { installProblemHandler } from "./problem.js";
import { reviewCallbackRoutes } from "./routes-review-callback.js";

const logger = pino({ level: "silent" });
const SECRET = "cbsec_current_0123456789abcdef";
const OLD_SECRET = "cbsec_previous_0123456789abcdef";
const URL_ = "/api/v1/reviews/callback";

let dir: string;
let store: Store;
let reviews: ReviewService;
let replay: ReplayCache;
let app: ReturnType<typeof Fastify>;
let off: ReturnType<typeof Fastify>;

const nowSec = () => Math.floor(Date.now() / 1000);
const hmac = (secret: string, data: string) => createHmac("sha256", secret).update(data, "utf8").digest("hex");
const sign = (secret: string, raw: string, t = nowSec()) => `t=${t},v1=${hmac(secret, `${t}.${raw}`)}`;

type Problem = { status: number; code: string; detail: string; reason?: string };

interface Send {
  /** Headers replacing the computed ones; null drops a header. */
  signature?: string | null;
  delivery?: string | null;
  contentType?: string;
  secret?: string;
  t?: number;
  /** Sign this, send `raw` (tampering). */
  signed?: string;
}

async function send(body: unknown, o: Send = {}, to = app) {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": o.contentType ?? "application/json" };
  const signature = o.signature === undefined ? sign(o.secret ?? SECRET, o.signed ?? raw, o.t) : o.signature;
  if (signature !== null) headers["x-airlock-signature"] = signature;
  const delivery = o.delivery === undefined ? randomUUID() : o.delivery;
  if (delivery !== null) headers["x-airlock-delivery"] = delivery;
  const r = await to.inject({ method: "POST", url: URL_, headers, payload: raw });
  return { status: r.statusCode, type: String(r.headers["content-type"]), body: r.json() as Record<string, unknown>, headers, raw };
}

const requester = (subject: string): Principal => ({ subject, kind: "user", roles: ["user"], groups: ["developers"], tokenId: null, expiresAt: new Date(Date.now() + 3600_000), method: "oidc" });

let n = 0;
const held = (o: { requester?: string; approvalsNeeded?: number } = {}) =>
  reviews.createStatementReview({
    principal: requester(o.requester ?? "alice"),
    connectionName: "prod-db",
    statement: `DELETE FROM orders WHERE id = ${++n}`,
    rule: "deletes-need-review",
    requirements: { reviewerGroups: ["reviewers"], approvalsNeeded: o.approvalsNeeded ?? 1, allGroups: false, timeoutSeconds: 600 },
  });

/** The refusal is problem JSON with this code, and the review is exactly as before. */
async function refused(res: Awaited<ReturnType<typeof send>>, status: number, code: string, before: ReviewView | null): Promise<Problem> {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.type).toContain("application/problem+json");
  expect(res.body.code).toBe(code);
  expect(String(res.body.detail).length).toBeGreaterThan(10);
  if (before) expect(await reviews.get(before.id)).toEqual(before);
  return res.body as unknown as Problem;
}

async function user(name: string, roles: string[], groups: string[], deletedAt: Date | null = null) {
  await store.prisma.user.create({ data: { name, provider: "corp-idp", externalId: `ext-${name}`, roles, groups, deletedAt } });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-review-callback-"));
  store = await openStore({ dataDir: dir, logger });
  reviews = new ReviewService(store, logger);
  const access = new AccessTokenService(store, { defaultTtlSeconds: 600, maxTtlSeconds: 3600 });
  const identity = await tokenOnlyIdentity(store, access, logger);
  replay = new ReplayCache();
  // Same options as server.ts where they matter; the auth hook is there to show the route needs no token.
  const build = async (secrets: string[]) => {
    const a = Fastify({ logger: false, bodyLimit: 1024 * 1024, ajv: { customOptions: { removeAdditional: false } } }).withTypeProvider<TypeBoxTypeProvider>();
    installProblemHandler(a);
    await a.register(authPlugin, { identity });
    await a.register(async (v1) => v1.register(reviewCallbackRoutes, { reviews, store, secrets, replay }), { prefix: "/api/v1" });
    await a.ready();
    return a as unknown as ReturnType<typeof Fastify>;
  };
  app = await build([SECRET, OLD_SECRET]);
  off = await build([]);
  await user("alice", ["user"], ["developers"]);
  await user("rita", ["user", "reviewer"], ["reviewers"]);
  await user("rex", ["reviewer", "not-a-role"], ["reviewers", "oncall"]);
  await user("bob", ["user"], ["reviewers"]); // in the group, without the reviewer role
  await user("dora", ["reviewer"], ["reviewers"], new Date("2024-01-02T03:04:05Z"));
}, 120_000);

afterAll(async () => {
  await app?.close();
  await off?.close();
  // close() exists once the service polls/listens for decisions elsewhere; nothing here waits, but stop it if present.
  await (reviews as { close?: () => Promise<void> } | undefined)?.close?.();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("POST /api/v1/reviews/callback: decisions", () => {
  it("a signed approval approves, recorded under the named reviewer (no bearer token needed)", async () => {
    const r = await held();
    const res = await send({ reviewId: r.id, decision: "approve", reviewer: "rita", reason: "looked at it in Slack", uses: 2, windowSeconds: 120 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: r.id, status: "approved", usesLeft: 2, scope: "once", decidedReason: "looked at it in Slack" });
    const stored = await reviews.get(r.id);
    expect(stored.status).toBe("approved");
    expect(stored.decisions).toEqual([expect.objectContaining({ reviewer: "rita", groups: ["reviewers"], decision: "approve", reason: "looked at it in Slack" })]);
    const window = Date.parse(stored.validUntil!) - Date.parse(stored.decidedAt!);
    expect(window).toBe(120_000);
  });

  it("a signed rejection with a reason rejects", async () => {
    const r = await held();
    const res = await send({ reviewId: r.id, decision: "reject", reviewer: "rex", reason: "not during the freeze" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await reviews.get(r.id)).toMatchObject({ status: "rejected", decidedReason: "not during the freeze", decisions: [expect.objectContaining({ reviewer: "rex", decision: "reject", groups: ["reviewers"] })] });
  });

  it("accepts the previous secret during a rotation, and a header carrying both signatures", async () => {
    const a = await held();
    const old = await send({ reviewId: a.id, decision: "approve", reviewer: "rita" }, { secret: OLD_SECRET });
    expect(old.status, JSON.stringify(old.body)).toBe(200);
    expect((await reviews.get(a.id)).status).toBe("approved");

    const b = await held();
    const raw = JSON.stringify({ reviewId: b.id, decision: "approve", reviewer: "rex" });
    const t = nowSec();
    const both = await send(raw, { signature: `t=${t},v1=${hmac(OLD_SECRET, `${t}.${raw}`)},v1=${hmac(SECRET, `${t}.${raw}`)}` });
    expect(both.status, JSON.stringify(both.body)).toBe(200);
    expect((await reviews.get(b.id)).decisions.map((d) => d.reviewer)).toEqual(["rex"]);
  });

  it("the signature covers the exact bytes: whitespace and key order as sent are fine", async () => {
    const r = await held();
    const raw = `{\n  "reviewer": "rita",  "decision": "approve",\n  "reviewId": "${r.id}"\n}\n`;
    const res = await send(raw);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await reviews.get(r.id)).status).toBe("approved");
  });
});

describe("POST /api/v1/reviews/callback: authentication refusals leave the review unchanged", () => {
  it("a tampered body (signature over another body) is 401 mismatch", async () => {
    const r = await held();
    const signed = JSON.stringify({ reviewId: r.id, decision: "reject", reviewer: "rita", reason: "no" });
    const tampered = JSON.stringify({ reviewId: r.id, decision: "approve", reviewer: "rita" });
    const p = await refused(await send(tampered, { signed }), 401, "WEBHOOK_SIGNATURE_INVALID", r);
    expect(p.reason).toBe("mismatch");
    expect(p.detail).toMatch(/no v1 signature matches the body/);
    // One changed byte is enough.
    const oneByte = signed.replace('"no"', '"No"');
    expect((await refused(await send(oneByte, { signed }), 401, "WEBHOOK_SIGNATURE_INVALID", r)).reason).toBe("mismatch");
    const after = await reviews.get(r.id);
    expect(after).toMatchObject({ status: "pending", decisions: [] });
  });

  it("a signature made with an unknown secret is 401 mismatch", async () => {
    const r = await held();
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "rita" }, { secret: "cbsec_someone_else_0123456789" }), 401, "WEBHOOK_SIGNATURE_INVALID", r);
    expect(p.reason).toBe("mismatch");
  });

  it("stale and future timestamps are 401 expired / future, even when correctly signed", async () => {
    const r = await held();
    const body = { reviewId: r.id, decision: "approve", reviewer: "rita" };
    const stale = await refused(await send(body, { t: nowSec() - 301 }), 401, "WEBHOOK_SIGNATURE_INVALID", r);
    expect(stale.reason).toBe("expired");
    expect(stale.detail).toMatch(/s old \(tolerance 300 s\)/);
    const future = await refused(await send(body, { t: nowSec() + 3600 }), 401, "WEBHOOK_SIGNATURE_INVALID", r);
    expect(future.reason).toBe("future");
  });

  it("a missing or malformed signature header is 401", async () => {
    const r = await held();
    const body = { reviewId: r.id, decision: "approve", reviewer: "rita" };
    const missing = await refused(await send(body, { signature: null }), 401, "WEBHOOK_SIGNATURE_INVALID", r);
    expect(missing.reason).toBe("missing");
    expect(missing.detail).toMatch(/x-airlock-signature header is missing/);
    expect((await refused(await send(body, { signature: "sha256=deadbeef" }), 401, "WEBHOOK_SIGNATURE_INVALID", r)).reason).toBe("malformed");
    // No body at all, unsigned: still 401 first, not a schema error.
    const empty = await app.inject({ method: "POST", url: URL_, headers: { "x-airlock-delivery": randomUUID() } });
    expect(empty.statusCode).toBe(401);
    expect(empty.json()).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", reason: "missing" });
  });

  it("an unsigned request learns nothing about its body: malformed JSON without a valid signature is 401, not 400", async () => {
    const res = await send("{not json", { signature: sign("cbsec_someone_else_0123456789", "{not json") });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", reason: "mismatch" });
  });

  it("a replayed delivery is refused, even with a fresh delivery id; the decision it would have made is not made", async () => {
    const r = await held({ approvalsNeeded: 2 });
    const first = await send({ reviewId: r.id, decision: "approve", reviewer: "rita" });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const afterFirst = await reviews.get(r.id);
    expect(afterFirst).toMatchObject({ status: "pending", decisions: [expect.objectContaining({ reviewer: "rita" })] });

    // Same delivery id on a different (validly signed) decision: refused by the replay cache, not by the review rules.
    const sameId = await send({ reviewId: r.id, decision: "approve", reviewer: "rex" }, { delivery: first.headers["x-airlock-delivery"]!.toUpperCase() });
    const p = await refused(sameId, 401, "WEBHOOK_SIGNATURE_INVALID", afterFirst);
    expect(p.reason).toBe("replayed");
    expect(p.detail).toContain(`delivery ${first.headers["x-airlock-delivery"]} was already used`);

    // The captured request re-sent byte for byte with a made-up delivery id (the id is not signed).
    const resent = await app.inject({ method: "POST", url: URL_, headers: { ...first.headers, "x-airlock-delivery": randomUUID() }, payload: first.raw });
    expect(resent.statusCode).toBe(401);
    expect(resent.json()).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", reason: "replayed" });
    expect(await reviews.get(r.id)).toEqual(afterFirst);

    // A genuine second decision still goes through.
    const second = await send({ reviewId: r.id, decision: "approve", reviewer: "rex" });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect((await reviews.get(r.id)).status).toBe("approved");
  });

  it("the delivery id is required and must be a UUID (400)", async () => {
    const r = await held();
    const body = { reviewId: r.id, decision: "approve", reviewer: "rita" };
    expect((await refused(await send(body, { delivery: null }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/x-airlock-delivery header is required/);
    expect((await refused(await send(body, { delivery: "delivery-1" }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/x-airlock-delivery must be a UUID/);
  });
});

describe("POST /api/v1/reviews/callback: who decides, and the review's own rules", () => {
  it("an unknown reviewer is 403 REVIEW_NOT_ELIGIBLE", async () => {
    const r = await held();
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "mallory" }), 403, "REVIEW_NOT_ELIGIBLE", r);
    expect(p.detail).toMatch(/reviewer mallory is not a known user/);
  });

  it("a deleted reviewer is 403 REVIEW_NOT_ELIGIBLE", async () => {
    const r = await held();
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "dora" }), 403, "REVIEW_NOT_ELIGIBLE", r);
    expect(p.detail).toMatch(/dora was deleted on 2024-01-02/);
  });

  it("a user without the reviewer role is refused by the review service (REVIEW_NOT_ELIGIBLE)", async () => {
    const r = await held();
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "bob" }), 403, "REVIEW_NOT_ELIGIBLE", r);
    expect(p.detail).toMatch(/bob does not hold the reviewer role/);
  });

  it("the requester approving their own review is REVIEW_SELF_APPROVAL", async () => {
    const r = await held({ requester: "rita" });
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "rita" }), 403, "REVIEW_SELF_APPROVAL", r);
    expect(p.detail).toMatch(/rita requested review/);
  });

  it("a finished review is REVIEW_CLOSED (409) and stays as it was", async () => {
    const r = await held();
    const rita = principalFromUser("rita", { name: "rita", provider: "corp-idp", groups: ["reviewers"], roles: ["reviewer"], deletedAt: null }, Date.now());
    const done = await reviews.reject(r.id, rita, "no");
    const p = await refused(await send({ reviewId: r.id, decision: "approve", reviewer: "rex" }), 409, "REVIEW_CLOSED", done);
    expect(p.detail).toMatch(/already rejected/);
  });

  it("an unknown review is 404", async () => {
    await refused(await send({ reviewId: "00000000-0000-4000-8000-000000000000", decision: "approve", reviewer: "rita" }), 404, "NOT_FOUND", null);
  });
});

describe("POST /api/v1/reviews/callback: bad bodies (correctly signed) are 400", () => {
  it("malformed JSON", async () => {
    const p = await refused(await send('{"reviewId": '), 400, "INVALID_ARGUMENT", null);
    expect(p.detail).toMatch(/body is not valid JSON/);
  });

  it("schema violations: unknown decision, unknown property, bad review id, bad uses, missing reviewer", async () => {
    const r = await held();
    const base = { reviewId: r.id, decision: "approve", reviewer: "rita" };
    expect((await refused(await send({ ...base, decision: "maybe" }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/body\.decision/);
    expect((await refused(await send({ ...base, admin: true }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/unknown property "admin"/);
    expect((await refused(await send({ ...base, reviewId: "1; DROP TABLE reviews" }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/body\.reviewId/);
    expect((await refused(await send({ ...base, uses: 0 }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/body\.uses/);
    const { reviewer: _drop, ...noReviewer } = base;
    expect((await refused(await send(noReviewer), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/reviewer/);
    expect((await refused(await send([base]), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/object/);
  });

  it("a rejection needs a reason; approval options on a rejection are refused", async () => {
    const r = await held();
    expect((await refused(await send({ reviewId: r.id, decision: "reject", reviewer: "rita" }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/reason is required/);
    expect((await refused(await send({ reviewId: r.id, decision: "reject", reviewer: "rita", reason: "no", uses: 3 }), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/approvals only/);
  });

  it("__proto__ keys, invalid UTF-8, other content types and bodies over 16 KiB are refused", async () => {
    const r = await held();
    const proto = `{"reviewId":"${r.id}","decision":"approve","reviewer":"rita","__proto__":{"x":1}}`;
    expect((await refused(await send(proto), 400, "INVALID_ARGUMENT", r)).detail).toMatch(/__proto__/);

    const bad = Buffer.concat([Buffer.from(`{"reviewId":"${r.id}","decision":"approve","reviewer":"rit`), Buffer.from([0xff]), Buffer.from('a"}')]);
    const t = nowSec();
    const badUtf8 = await app.inject({ method: "POST", url: URL_, headers: { "content-type": "application/json", "x-airlock-delivery": randomUUID(), "x-airlock-signature": `t=${t},v1=${createHmac("sha256", SECRET).update(`${t}.`).update(bad).digest("hex")}` }, payload: bad });
    expect(badUtf8.statusCode).toBe(400);
    expect(badUtf8.json()).toMatchObject({ code: "INVALID_ARGUMENT", detail: "body is not valid UTF-8" });

    const form = await send(`reviewId=${r.id}&decision=approve&reviewer=rita`, { contentType: "application/x-www-form-urlencoded" });
    expect(form.status).toBe(400);
    expect(form.body.code).toBe("INVALID_ARGUMENT");

    const big = await send({ reviewId: r.id, decision: "approve", reviewer: "rita", reason: "x".repeat(17 * 1024) });
    expect(big.status).toBe(400);
    expect(String(big.body.detail)).toMatch(/too large/i);
    expect(await reviews.get(r.id)).toMatchObject({ status: "pending", decisions: [] });
  });
});

describe("POST /api/v1/reviews/callback: feature off", () => {
  it("without secrets the route answers 404 with the reason, whatever is sent", async () => {
    const r = await held();
    const res = await send({ reviewId: r.id, decision: "approve", reviewer: "rita" }, {}, off);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: "NOT_FOUND" });
    expect(String(res.body.detail)).toMatch(/review callbacks are off.*AIRLOCK_REVIEW_CALLBACK_SECRETS/);
    expect(await reviews.get(r.id)).toMatchObject({ status: "pending", decisions: [] });
  });

  it("secrets shorter than 16 characters are a configuration error", () => {
    expect(() => checkCallbackSecrets(["short"])).toThrow(/at least 16 characters/);
    expect(() => checkCallbackSecrets([])).not.toThrow();
    expect(() => checkCallbackSecrets([SECRET, OLD_SECRET])).not.toThrow();
  });
});

describe("reviews/callback (pure parts)", () => {
  const code = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof AirlockError) return { code: err.code, reason: err.details?.reason, message: err.message };
      throw err;
    }
    throw new Error("expected a failure");
  };

  it("ReplayCache remembers keys for its window, all or none, and forgets them on release", () => {
    const c = new ReplayCache({ windowMs: 1000, max: 10 });
    c.claim([{ key: "a", label: "delivery a" }, { key: "m1", label: "message" }], 0);
    expect(code(() => c.claim([{ key: "b", label: "delivery b" }, { key: "m1", label: "this message" }], 500))).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", reason: "replayed", message: expect.stringContaining("this message was already used") });
    expect(c.has("b", 500)).toBe(false); // nothing of a refused claim is kept
    expect(c.size).toBe(2);
    c.claim([{ key: "a", label: "delivery a" }], 1000); // the window has passed
    expect(c.size).toBe(1);
    c.release([{ key: "a" }]);
    c.claim([{ key: "a", label: "delivery a" }], 1001);
    expect(c.has("a", 1001)).toBe(true);
  });

  it("ReplayCache refuses (RATE_LIMITED) rather than forget live entries when full", () => {
    const c = new ReplayCache({ windowMs: 1000, max: 3 });
    c.claim([{ key: "1", label: "1" }, { key: "2", label: "2" }], 0);
    c.claim([{ key: "3", label: "3" }], 10);
    expect(code(() => c.claim([{ key: "4", label: "4" }], 20)).code).toBe("RATE_LIMITED");
    expect(c.has("1", 20)).toBe(true);
    c.claim([{ key: "4", label: "4" }], 1005); // 1 and 2 expired
    expect(c.size).toBe(2);
  });

  it("verifyCallback keys a request by delivery id and by the signed message", () => {
    const c = new ReplayCache();
    const raw = '{"a":1}';
    const t = 1_700_000_000;
    const now = t * 1000 + 5000;
    const delivery = randomUUID();
    const keys = verifyCallback({ secrets: [SECRET], signature: `t=${t},v1=${hmac(SECRET, `${t}.${raw}`)}`, delivery, rawBody: raw, nowMs: now }, c);
    expect(keys.map((k) => k.key)).toEqual([`delivery:${delivery}`, expect.stringMatching(/^message:[0-9a-f]{64}$/)]);
    // Extra unknown entries in the header do not make it a new message.
    const padded = `v2=abc, t=${t} ,v1=${hmac(SECRET, `${t}.${raw}`)}`;
    expect(code(() => verifyCallback({ secrets: [SECRET], signature: padded, delivery: randomUUID(), rawBody: raw, nowMs: now }, c))).toMatchObject({ reason: "replayed" });
    expect(code(() => verifyCallback({ secrets: [SECRET], signature: ["a", "b"], delivery, rawBody: raw, nowMs: now }, c))).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", reason: "malformed" });
    expect(code(() => verifyCallback({ secrets: [], signature: "t=1,v1=00", delivery, rawBody: raw, nowMs: now }, c)).code).toBe("CONFIG_INVALID");
  });

  it("principalFromUser: a user principal with known roles only; unknown and deleted users are not eligible", () => {
    const u = { name: "rex", provider: "corp-idp", groups: ["reviewers"], roles: ["reviewer", "superuser"], deletedAt: null };
    const p = principalFromUser("rex", u, 1_000_000);
    expect(p).toEqual({ subject: "rex", kind: "user", roles: ["reviewer"], groups: ["reviewers"], tokenId: null, expiresAt: new Date(1_060_000), method: "oidc", provider: "corp-idp" });
    expect(principalFromUser("rex", u, 0, (g) => (g.includes("reviewers") ? ["reviewer", "auditor"] : [])).roles).toEqual(["reviewer", "auditor"]);
    expect(code(() => principalFromUser("ghost", null, 0))).toMatchObject({ code: "REVIEW_NOT_ELIGIBLE", message: expect.stringContaining("ghost is not a known user") });
    expect(code(() => principalFromUser("rex", { ...u, deletedAt: new Date(0) }, 0)).code).toBe("REVIEW_NOT_ELIGIBLE");
  });
});
