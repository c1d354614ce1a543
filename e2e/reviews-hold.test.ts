// Just-in-time approval of one statement, end to end: a review policy holds a
// DELETE at the Postgres front door (real gateway and agent processes, the
// machine's PostgreSQL, node-postgres as the client); a reviewer decides
// through the REST API; the held client gets its result, or the reviewer's
// reason, or an expiry error. Other sessions go on meanwhile.
import { createHmac } from "node:crypto";
import http from "node:http";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";

const POLICY = {
  "access.cedar": `
@id("everyone") permit (principal, action, resource);

@id("deletes-need-review")
@effect("review")
@reviewers("reviewers")
@timeout("10s")
@reason("deletes need a second pair of eyes")
forbid (principal, action == Airlock::Action::"delete", resource);
`,
};

let env: PgEnv;
const tok: Record<string, string> = {};
const SECRET = "e2e-webhook-secret-0123456789";
const hooks: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
let receiver: http.Server;

async function mint(subject: string, roles: string[], groups: string[]) {
  const r = await env.gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject, roles, groups });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  tok[subject] = r.body.token;
}
const decide = (id: string, who: string, verb: "approve" | "reject", body: Record<string, unknown> = {}) =>
  env.gw.api<{ status: string; code?: string; detail?: string }>("POST", `/api/v1/reviews/${id}/${verb}`, body, tok[who]);

/** A client whose next statement we expect to be held: resolves the review id from the NoticeResponse. */
async function client(who: string): Promise<{ c: pg.Client; held: () => Promise<string> }> {
  const c = await env.connect(tok[who]!);
  c.on("error", () => {});
  const ids: string[] = [];
  const waiters: Array<(id: string) => void> = [];
  c.on("notice", (n) => {
    const id = /held for review ([0-9a-f-]{36})/.exec(n.message ?? "")?.[1];
    if (!id) return;
    const w = waiters.shift();
    if (w) w(id);
    else ids.push(id);
  });
  return { c, held: () => (ids.length ? Promise.resolve(ids.shift()!) : new Promise((r) => waiters.push(r))) };
}

const pendingFor = async (p: Promise<unknown>, ms: number) => (await Promise.race([p.then(() => "settled", () => "settled"), new Promise((r) => setTimeout(() => r("pending"), ms))])) === "pending";

beforeAll(async () => {
  // A webhook receiver: the gateway signs every review event it sends here.
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      hooks.push({ headers: req.headers, body });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  env = await startPgEnv({
    name: "reviews",
    policy: POLICY,
    setupSql: "CREATE TABLE items (id int primary key, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g;",
    env: { AIRLOCK_REVIEW_WEBHOOK_URL: hookUrl, AIRLOCK_REVIEW_WEBHOOK_SECRET: SECRET },
  });
  await mint("alice", ["user"], ["developers"]);
  await mint("bob", ["user"], ["developers"]);
  await mint("rita", ["user", "reviewer"], ["reviewers"]);
}, 120_000);

afterAll(async () => {
  await env?.close();
  receiver?.close();
});

describe("a DELETE under a review policy", () => {
  it("is held (other sessions go on), then runs once a reviewer approves: the client gets its result", async () => {
    const { c, held } = await client("alice");
    const q = c.query("DELETE FROM items WHERE id = 1");
    const id = await held();
    // Meanwhile another session is not held.
    const other = await env.connect(tok.bob!);
    expect((await other.query("select count(*)::int AS n from items")).rows[0].n).toBe(20);
    await other.end();
    expect(await pendingFor(q, 300)).toBe(true);
    const self = await decide(id, "alice", "approve");
    expect(self.status).toBe(403);
    expect(self.body.code).toBe("REVIEW_SELF_APPROVAL");
    expect(await pendingFor(q, 200)).toBe(true);
    expect((await decide(id, "rita", "approve", { reason: "ticket 42" })).body.status).toBe("approved");
    const r = await q;
    expect(r.rowCount).toBe(1);
    expect((await env.direct("select count(*)::int AS n from items WHERE id = 1")).rows[0].n).toBe(0);
    // The session's record keeps the decision, the approval and the outcome.
    let rec: Awaited<ReturnType<PgEnv["statements"]>>[number] | undefined;
    for (let i = 0; i < 30 && rec?.status !== "ok"; i++) {
      rec = (await env.statements((await env.sessions("alice"))[0]!.id)).find((x) => x.text === "DELETE FROM items WHERE id = 1");
      if (rec?.status !== "ok") await new Promise((res) => setTimeout(res, 100));
    }
    expect(rec).toMatchObject({ decision: "review", status: "ok", rows: "1", rule: "deletes-need-review" });
    expect(rec!.reason).toMatch(new RegExp(`approved in review ${id}`));
    // The approval was for that one run: the same text again is held again.
    const again = c.query("DELETE FROM items WHERE id = 1");
    const id2 = await held();
    expect(id2).not.toBe(id);
    await decide(id2, "rita", "reject", { reason: "already done" });
    expect((await errorOf(again)).message).toMatch(/rejected by rita: already done/);
    await c.end();
    // Reviewers were told: signed webhook events for the review's creation and decision.
    const events = hooks.filter((h) => h.body.includes(id));
    expect(events.map((h) => h.headers["x-airlock-event"])).toEqual(expect.arrayContaining(["review.created", "review.approved"]));
    for (const h of events) {
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(h.headers["x-airlock-signature"]));
      expect(m).not.toBeNull();
      expect(createHmac("sha256", SECRET).update(`${m![1]}.${h.body}`).digest("hex")).toBe(m![2]);
    }
    expect(JSON.parse(events[0]!.body)).toMatchObject({ type: "review.created", review: { id, requester: "alice", statement: "DELETE FROM items WHERE id = 1", reviewerGroups: ["reviewers"] } });
  });

  it("a rejected one gets the reviewer's reason; the session stays usable", async () => {
    const { c, held } = await client("alice");
    const q = c.query("DELETE FROM items WHERE id = 2");
    const id = await held();
    await decide(id, "rita", "reject", { reason: "not during the freeze" });
    const err = await errorOf(q);
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/review .* was rejected by rita: not during the freeze/);
    expect((await c.query("select count(*)::int AS n from items WHERE id = 2")).rows[0].n).toBe(1);
    await c.end();
  });

  it("approving statement A does not release statement B", async () => {
    const a = await client("alice");
    const b = await client("bob");
    const qa = a.c.query("DELETE FROM items WHERE id = 3");
    const qb = b.c.query("DELETE FROM items WHERE id = 4");
    const [ida, idb] = await Promise.all([a.held(), b.held()]);
    await decide(ida, "rita", "approve");
    expect((await qa).rowCount).toBe(1);
    expect(await pendingFor(qb, 500)).toBe(true);
    await decide(idb, "rita", "reject", { reason: "no" });
    await errorOf(qb);
    expect((await env.direct("select id from items WHERE id IN (3, 4)")).rows.map((r) => r.id)).toEqual([4]);
    await a.c.end();
    await b.c.end();
  });

  it("a client that goes away cancels its review", async () => {
    const { c, held } = await client("alice");
    void c.query("DELETE FROM items WHERE id = 5").catch(() => {});
    const id = await held();
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    let status = "pending";
    for (let i = 0; i < 50 && status === "pending"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await env.gw.api<{ status: string }>("GET", `/api/v1/reviews/${id}`, undefined, tok.rita)).body.status;
    }
    expect(status).toBe("cancelled");
    expect((await decide(id, "rita", "approve")).body.code).toBe("REVIEW_CLOSED");
  });

  it("an undecided one expires and the client gets an error saying so", async () => {
    const { c, held } = await client("alice");
    const q = c.query("DELETE FROM items WHERE id = 6");
    await held();
    const err = await errorOf(q);
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/nobody approved it before/);
    await c.end();
  }, 30_000);
});
