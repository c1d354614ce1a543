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
import { fields, wire, wireLogin, type BackendMsg } from "./harness/pg-wire.js";

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

  it("a SQL PREPARE of a statement that needs review is refused, not held (its EXECUTEs would escape review)", async () => {
    const { c } = await client("alice");
    const err = await errorOf(c.query("PREPARE d(int) AS DELETE FROM items WHERE id = $1"));
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/requires approval/);
    await c.end();
  });

  it("a statement too large to show a reviewer is refused with the reason, and the session goes on", async () => {
    const { c } = await client("alice");
    const err = await errorOf(c.query(`DELETE FROM items WHERE id = 1 OR name = '${"x".repeat(300 * 1024)}'`));
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/cannot be sent to review/);
    expect((await c.query("select 1 AS one")).rows).toEqual([{ one: 1 }]);
    await c.end();
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

describe("extended protocol", () => {
  // What node-postgres sends for a query with values: Parse, Bind (the values), Describe, Execute, Sync.
  const DEL = "DELETE FROM items WHERE id = $1";
  const review = (id: string) => env.gw.api<{ status: string; statement: string; params: unknown[] | null }>("GET", `/api/v1/reviews/${id}`, undefined, tok.rita);
  /** The settled record of `text` in the newest session of `who`. */
  async function recordOf(who: string, text: string, status: string) {
    let rec: Awaited<ReturnType<PgEnv["statements"]>>[number] | undefined;
    for (let i = 0; i < 30 && rec?.status !== status; i++) {
      if (i) await new Promise((res) => setTimeout(res, 100));
      rec = (await env.statements((await env.sessions(who))[0]!.id)).filter((x) => x.text === text).at(-1);
    }
    return rec;
  }

  it("a parameterised DELETE is held at Execute; approved, it runs with its values", async () => {
    const { c, held } = await client("alice");
    const q = c.query(DEL, [7]);
    const id = await held();
    expect(await pendingFor(q, 300)).toBe(true);
    // The reviewer sees the text and the bound values.
    expect((await review(id)).body).toMatchObject({ status: "pending", statement: DEL, params: ["7"] });
    await decide(id, "rita", "approve");
    expect((await q).rowCount).toBe(1);
    expect((await env.direct("select count(*)::int AS n from items WHERE id = 7")).rows[0].n).toBe(0);
    const rec = await recordOf("alice", DEL, "ok");
    expect(rec).toMatchObject({ decision: "review", status: "ok", rows: "1", rule: "deletes-need-review" });
    expect(rec!.reason).toMatch(new RegExp(`approved in review ${id}`));
    await c.end();
  });

  it("an approval covers the text AND the values: not another id; the same id again by the same identity runs without a new review", async () => {
    const { c, held } = await client("alice");
    const q8 = c.query(DEL, [8]);
    const id8 = await held();
    await decide(id8, "rita", "approve", { scope: "identity", uses: 5 });
    expect((await q8).rowCount).toBe(1);
    // Same text, other value: held again, under a review of its own.
    const q9 = c.query(DEL, [9]);
    const id9 = await held();
    expect(id9).not.toBe(id8);
    expect((await review(id9)).body.params).toEqual(["9"]);
    await decide(id9, "rita", "reject", { reason: "not that one" });
    const err = await errorOf(q9);
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/rejected by rita: not that one/);
    expect((await env.direct("select count(*)::int AS n from items WHERE id = 9")).rows[0].n).toBe(1);
    await c.end();
    // Another session of alice: the identity-wide approval of (text, [8]) covers it, no hold.
    const other = await client("alice");
    expect((await other.c.query(DEL, [8])).rowCount).toBe(0);
    expect((await recordOf("alice", DEL, "ok"))!.reason).toMatch(new RegExp(`approved in review ${id8}`));
    await other.c.end();
  });

  it("a rejected one fails with the reviewer's reason and the connection goes on", async () => {
    const { c, held } = await client("alice");
    const q = c.query(DEL, [10]);
    const id = await held();
    await decide(id, "rita", "reject", { reason: "not during the freeze" });
    const err = await errorOf(q);
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/review .* was rejected by rita: not during the freeze/);
    // The server skipped to Sync as after its own error: the pipeline is in step again.
    expect((await c.query("select 1 AS one")).rows).toEqual([{ one: 1 }]);
    expect((await c.query("select count(*)::int AS n from items WHERE id = $1", [10])).rows[0].n).toBe(1);
    expect(await recordOf("alice", DEL, "denied")).toMatchObject({ decision: "review", status: "denied" });
    expect((await recordOf("alice", DEL, "denied"))!.reason).toMatch(/rejected by rita: not during the freeze/);
    await c.end();
  });

  it("rejected inside a transaction: the transaction is aborted as after an error; ROLLBACK works", async () => {
    const { c, held } = await client("alice");
    await c.query("BEGIN");
    await c.query("UPDATE items SET name = 'changed' WHERE id = 11");
    const q = c.query(DEL, [11]);
    const id = await held();
    await decide(id, "rita", "reject", { reason: "no" });
    expect((await errorOf(q)).code).toBe("42501");
    const aborted = await errorOf(c.query("select 1"));
    expect(aborted.code).toBe("25P02");
    expect(aborted.message).toMatch(/current transaction is aborted/);
    await c.query("ROLLBACK");
    expect((await c.query("select name from items WHERE id = $1", [11])).rows).toEqual([{ name: "item 11" }]);
    await c.end();
  });

  it("a named prepared statement that needs a review cannot be run with SQL EXECUTE; reused, it is held again", async () => {
    const { c, held } = await client("alice");
    const named = { name: "del", text: DEL };
    const q = c.query({ ...named, values: [12] });
    await decide(await held(), "rita", "reject", { reason: "later" });
    await errorOf(q);
    // The gateway keeps it as the server's unnamed statement: there is no "del" for SQL to run.
    expect((await errorOf(c.query("EXECUTE del(12)"))).code).toBe("26000");
    // node-postgres reuses "del" with a Bind only; the gateway parses it again and holds it again.
    const again = c.query({ ...named, values: [12] });
    const id = await held();
    expect((await review(id)).body.params).toEqual(["12"]);
    await decide(id, "rita", "approve");
    expect((await again).rowCount).toBe(1);
    // And statements of its own go on as usual in between.
    expect((await c.query({ name: "sel", text: "select count(*)::int AS n from items WHERE id > $1", values: [12] })).rows[0].n).toBe(8);
    await c.end();
  });

  it("values too large to show a reviewer are refused at Bind", async () => {
    const { c } = await client("alice");
    const err = await errorOf(c.query("DELETE FROM items WHERE name = $1", ["x".repeat(70_000)]));
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/not held for review: its parameters take \d+ bytes/);
    expect((await c.query("select 1 AS one")).rows).toEqual([{ one: 1 }]);
    await c.end();
  });
});

describe("extended protocol: a held statement cannot run by another way", () => {
  const DEL = "DELETE FROM items WHERE id = $1";
  const summary = (msgs: BackendMsg[]) => msgs.map((m) => (m.type === "E" || m.type === "N" ? `${m.type}:${fields(m).C}` : m.type));
  const exists = async (id: number) => (await env.direct("select count(*)::int AS n from items WHERE id = $1", [id])).rows[0].n === 1;

  it("a Parse the server skipped (after an error) does not leave the held statement under a checked one's name", async () => {
    const { conn } = await wireLogin(env.pgPort, tok.alice!, env.connection);
    // One write: the gateway handles every message before the server's error comes back. The server
    // skips the Parse of "select 1" (it follows an error), so its unnamed statement is still the DELETE.
    conn.send(Buffer.concat([wire.parse(DEL), wire.sync(), wire.parse("select * from no_such_table", "bad"), wire.parse("select 1"), wire.sync(), wire.bind(["13"]), wire.execute(), wire.sync()]));
    expect(summary(await conn.untilReady())).toEqual(["1", "Z"]);
    expect(summary(await conn.untilReady())).toEqual(["E:42P01", "Z"]);
    // The Bind is of "select 1" (parsed again by the gateway), which takes no value: an error, no DELETE, no hold.
    expect(summary(await conn.untilReady())).toEqual(["E:08P01", "Z"]);
    expect(await exists(13)).toBe(true);
    conn.close();
  });

  it("a named portal of a held statement cannot be run with SQL FETCH", async () => {
    const { conn } = await wireLogin(env.pgPort, tok.alice!, env.connection);
    conn.send(wire.query("BEGIN"));
    await conn.untilReady();
    conn.send(Buffer.concat([wire.parse(`${DEL} RETURNING id`), wire.bind(["14"], [], "", "p"), wire.sync()]));
    expect(summary(await conn.untilReady())).toEqual(["1", "2", "Z"]);
    // PostgreSQL would run the DELETE … RETURNING for a FETCH from portal "p"; the server has no "p".
    conn.send(wire.query("FETCH ALL FROM p"));
    expect(summary(await conn.untilReady())).toEqual(["E:34000", "Z"]);
    conn.send(wire.query("ROLLBACK"));
    await conn.untilReady();
    expect(await exists(14)).toBe(true);
    conn.close();
  });

  it("an unnamed portal the gateway does not track is not run: Execute \"\" after a held named portal is refused", async () => {
    const { conn } = await wireLogin(env.pgPort, tok.alice!, env.connection);
    // The held DELETE goes to the server's unnamed slots whatever its client names; the client then executes "".
    conn.send(Buffer.concat([wire.parse(DEL, "s"), wire.bind(["16"], [], "s", "p"), wire.execute(""), wire.sync()]));
    const got = await conn.untilReady();
    expect(summary(got)).toEqual(["1", "2", "E:34000", "Z"]);
    expect(await exists(16)).toBe(true);
    conn.close();
  });

  it("a Bind of an unnamed statement the gateway never saw parsed is refused, not bound to the held one", async () => {
    const { conn } = await wireLogin(env.pgPort, tok.alice!, env.connection);
    conn.send(Buffer.concat([wire.parse(DEL, "s"), wire.bind(["17"], [], "s", "p"), wire.bind(["18"], [], "", ""), wire.execute(""), wire.sync()]));
    const got = await conn.untilReady();
    expect(summary(got)).toEqual(["1", "2", "E:26000", "Z"]);
    expect(await exists(17)).toBe(true);
    expect(await exists(18)).toBe(true);
    conn.close();
  });

  it("a held portal another Bind replaced is gone: its Execute fails without a hold", async () => {
    const { conn } = await wireLogin(env.pgPort, tok.alice!, env.connection);
    conn.send(Buffer.concat([wire.parse(DEL), wire.bind(["15"], [], "", "p"), wire.parse("select 2"), wire.bind([]), wire.execute("p"), wire.sync()]));
    const got = await conn.untilReady();
    expect(summary(got)).toEqual(["1", "2", "1", "2", "E:34000", "Z"]);
    expect(fields(got[4]!).M).toBe('portal "p" does not exist');
    expect(await exists(15)).toBe(true);
    conn.close();
  });
});
