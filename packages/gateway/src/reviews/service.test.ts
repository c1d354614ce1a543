// ReviewService on a real embedded store (PGlite): who may decide, N-of-M and
// all-groups approvals, rejection, expiry, cancellation, waiting, and the exact
// binding of an approval to one statement's text and parameters.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Principal } from "../auth/principal.js";
import { openStore, type Store } from "../store/index.js";
import { combineRequirements, parseReviewAnnotations } from "./requirements.js";
import { ReviewService, statementHash, type ReviewView } from "./service.js";

let dir: string;
let store: Store;
let reviews: ReviewService;
const notified: Array<[string, string]> = [];

const who = (subject: string, groups: string[], roles: Principal["roles"] = ["user", "reviewer"]): Principal => ({ subject, kind: "user", roles, groups, tokenId: null, expiresAt: new Date(Date.now() + 3600_000), method: "admin" });
const alice = who("alice", ["developers"], ["user"]);
const rita = who("rita", ["reviewers"]);
const rob = who("rob", ["reviewers", "dba"]);
const dana = who("dana", ["dba"]);
const eve = who("eve", ["developers"]); // reviewer role, wrong group
const req = (o: Record<string, string> = {}) => {
  const r = parseReviewAnnotations(o);
  if (typeof r === "string") throw new Error(r);
  return r;
};
const hold = (statement: string, o: { params?: unknown[]; sessionId?: string; requirements?: ReturnType<typeof req> } = {}) =>
  reviews.createStatementReview({ principal: alice, connectionName: "prod-db", sessionId: o.sessionId ?? null, statement, params: o.params, rule: "deletes-need-review", requirements: o.requirements ?? req() });

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error("expected an error");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-reviews-"));
  store = await openStore({ dataDir: dir, logger: pino({ level: "silent" }) });
  reviews = new ReviewService(store, pino({ level: "silent" }), { notify: (type, r) => notified.push([type, r.id]) });
});

afterAll(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("policy annotations", () => {
  it("parse reviewers, approvals and timeout, and say what is wrong with a bad one", () => {
    expect(parseReviewAnnotations({ reviewers: "dba, security", approvals: "2", timeout: "15m" })).toEqual({ reviewerGroups: ["dba", "security"], approvalsNeeded: 2, allGroups: false, timeoutSeconds: 900 });
    expect(parseReviewAnnotations({ approvals: "all" })).toMatchObject({ reviewerGroups: ["reviewers"], allGroups: true, timeoutSeconds: 600 });
    expect(parseReviewAnnotations({ approvals: "0" })).toMatch(/@approvals/);
    expect(parseReviewAnnotations({ timeout: "1s" })).toMatch(/@timeout/);
    expect(parseReviewAnnotations({ reviewers: "a b" })).toMatch(/@reviewers/);
    expect(combineRequirements([{ annotations: { reviewers: "dba", approvals: "2", timeout: "1h" } }, { annotations: { reviewers: "security", timeout: "5m" } }])).toEqual({ reviewerGroups: ["dba", "security"], approvalsNeeded: 2, allGroups: false, timeoutSeconds: 300 });
  });
});

describe("deciding", () => {
  it("one approval from a reviewer group member approves; the requester and outsiders cannot decide", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 1");
    expect(r).toMatchObject({ status: "pending", requester: "alice", reviewerGroups: ["reviewers"], statementHash: statementHash("DELETE FROM orders WHERE id = 1", []) });
    expect((await errorOf(reviews.approve(r.id, alice))).code).toBe("REVIEW_SELF_APPROVAL");
    expect((await errorOf(reviews.approve(r.id, eve))).code).toBe("REVIEW_NOT_ELIGIBLE");
    expect((await errorOf(reviews.approve(r.id, who("nora", ["reviewers"], ["user"])))).message).toMatch(/reviewer role/);
    expect((await reviews.get(r.id)).decisions).toEqual([]); // refusals change nothing
    const v = await reviews.approve(r.id, rita, { reason: "looks right" });
    expect(v).toMatchObject({ status: "approved", decidedReason: "looks right", usesLeft: 1, scope: "once" });
    expect(v.decisions).toMatchObject([{ reviewer: "rita", decision: "approve", groups: ["reviewers"] }]);
    expect(notified).toContainEqual(["review.created", r.id]);
    expect(notified).toContainEqual(["review.approved", r.id]);
  });

  it("finished reviews stay finished: approving again, rejecting after, unknown ids are clear errors", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 2");
    await reviews.reject(r.id, rita, "not during the freeze");
    const again = await errorOf(reviews.approve(r.id, rob));
    expect(again.code).toBe("REVIEW_CLOSED");
    expect(again.message).toMatch(/already rejected/);
    expect((await reviews.get(r.id)).status).toBe("rejected");
    expect((await errorOf(reviews.approve("00000000-0000-0000-0000-000000000000", rita))).code).toBe("NOT_FOUND");
    expect((await errorOf(reviews.get("not-a-uuid"))).code).toBe("NOT_FOUND");
  });

  it("N of M: two distinct approvers; one person cannot approve twice", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 3", { requirements: req({ reviewers: "reviewers,dba", approvals: "2" }) });
    expect((await reviews.approve(r.id, rita)).status).toBe("pending");
    expect((await errorOf(reviews.approve(r.id, rita))).code).toBe("REVIEW_ALREADY_DECIDED");
    expect((await reviews.approve(r.id, dana)).status).toBe("approved");
  });

  it("all groups: one approval from every reviewer group", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 4", { requirements: req({ reviewers: "reviewers,dba", approvals: "all" }) });
    expect((await reviews.approve(r.id, rita)).status).toBe("pending"); // reviewers only
    expect((await reviews.approve(r.id, dana)).status).toBe("approved"); // + dba
  });

  it("two reviewers deciding at once: the review closes exactly once", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 5");
    const results = await Promise.allSettled([reviews.approve(r.id, rita), reviews.reject(r.id, rob, "no")]);
    expect(results.filter((x) => x.status === "fulfilled")).toHaveLength(1);
    const final = await reviews.get(r.id);
    expect(final.decisions).toHaveLength(1);
    expect(["approved", "rejected"]).toContain(final.status);
  });

  it("a pending review expires; deciding it then is refused", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 6", { requirements: { ...req(), timeoutSeconds: 1 } });
    await new Promise((res) => setTimeout(res, 1100));
    expect((await errorOf(reviews.approve(r.id, rita))).code).toBe("REVIEW_CLOSED");
    expect((await reviews.get(r.id)).status).toBe("expired");
    expect(notified).toContainEqual(["review.expired", r.id]);
  });

  it("the requester can cancel (a client that went away), others cannot", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 7");
    expect((await errorOf(reviews.cancel(r.id, eve, "x"))).code).toBe("PERMISSION_DENIED");
    expect((await reviews.cancel(r.id, alice, "client disconnected")).status).toBe("cancelled");
    expect((await errorOf(reviews.cancel(r.id, alice, "again"))).code).toBe("REVIEW_CLOSED");
  });
});

describe("waiting and exact binding", () => {
  it("a waiter is released by the decision, and an abort stops the wait", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 8");
    const waiting = reviews.waitForDecision(r.id);
    setTimeout(() => void reviews.approve(r.id, rita), 50);
    expect((await waiting).status).toBe("approved");
    const r2 = await hold("DELETE FROM orders WHERE id = 9");
    const ac = new AbortController();
    const w2 = reviews.waitForDecision(r2.id, ac.signal);
    ac.abort();
    expect((await errorOf(w2)).code).toBe("REVIEW_CLOSED");
  });

  it("an approval covers that exact text and parameters, for that requester, once", async () => {
    const session = "11111111-1111-4111-8111-111111111111";
    const r = await hold("DELETE FROM orders WHERE id = $1", { params: ["10"], sessionId: session });
    await reviews.approve(r.id, rita);
    const use = (statement: string, params: unknown[], o: { requester?: string; sessionId?: string | null } = {}) =>
      reviews.consumeApproval({ requester: o.requester ?? "alice", connectionName: "prod-db", sessionId: o.sessionId === undefined ? session : o.sessionId, statement, params });
    expect(await use("DELETE FROM orders WHERE id = $1", ["11"])).toBeNull(); // other parameters
    expect(await use("DELETE FROM orders WHERE id = $1 OR true", ["10"])).toBeNull(); // other text
    expect(await use("DELETE FROM orders WHERE id = $1", ["10"], { requester: "mallory" })).toBeNull(); // someone else
    expect(await use("DELETE FROM orders WHERE id = $1", ["10"], { sessionId: "22222222-2222-4222-8222-222222222222" })).toBeNull(); // another session
    expect(await use("DELETE FROM orders WHERE id = $1", ["10"])).toBe(r.id);
    expect(await use("DELETE FROM orders WHERE id = $1", ["10"])).toBeNull(); // once
  });

  it("a reviewer may approve for the identity, N times", async () => {
    const r = await hold("VACUUM orders", { sessionId: "33333333-3333-4333-8333-333333333333" });
    const v: ReviewView = await reviews.approve(r.id, rita, { scope: "identity", uses: 2, windowSeconds: 60 });
    expect(v).toMatchObject({ scope: "identity", usesLeft: 2 });
    const use = () => reviews.consumeApproval({ requester: "alice", connectionName: "prod-db", sessionId: null, statement: "VACUUM orders" });
    expect(await use()).toBe(r.id);
    expect(await use()).toBe(r.id);
    expect(await use()).toBeNull();
  });
});

describe("review hardening", () => {
  it("with several approvers the narrowest of what each allowed applies", async () => {
    const r = await hold("DELETE FROM orders WHERE id = 20", { requirements: req({ reviewers: "reviewers,dba", approvals: "2" }) });
    await reviews.approve(r.id, rob, { scope: "identity", uses: 50, windowSeconds: 3600 });
    const v = await reviews.approve(r.id, dana, { scope: "session", uses: 2, windowSeconds: 120 });
    expect(v).toMatchObject({ status: "approved", scope: "session", usesLeft: 2 });
    const left = new Date(v.validUntil!).getTime() - Date.now();
    expect(left).toBeLessThanOrEqual(120_000);
    expect(left).toBeGreaterThan(100_000);
  });

  it("an approval covers the database it was asked for, not another one on the same connection", async () => {
    const r = await reviews.createStatementReview({ principal: alice, connectionName: "prod-db", database: "staging", statement: "TRUNCATE scratch", requirements: req() });
    await reviews.approve(r.id, rita, { scope: "identity" });
    const use = (database: string) => reviews.consumeApproval({ requester: "alice", connectionName: "prod-db", database, sessionId: null, statement: "TRUNCATE scratch" });
    expect(await use("prod")).toBeNull();
    expect(await use("staging")).toBe(r.id);
  });

  it("an access grant never outlasts what was asked for; gateway-wide roles cannot be asked for", async () => {
    const r = await reviews.createAccessRequest({ principal: alice, connectionName: "prod-db", role: "oncall", durationSeconds: 300, reason: "incident", requirements: req() });
    const v = await reviews.approve(r.id, rita, { windowSeconds: 86400 });
    expect(new Date(v.validUntil!).getTime() - Date.now()).toBeLessThanOrEqual(300_000);
    expect(await reviews.activeGrants("alice", "prod-db")).toEqual([{ id: r.id, role: "oncall" }]);
    expect((await errorOf(reviews.createAccessRequest({ principal: alice, connectionName: "prod-db", role: "admin", durationSeconds: 300, reason: "x", requirements: req() }))).code).toBe("INVALID_ARGUMENT");
  });
});
