// Just-in-time access grants end to end: `airlock request` (built CLI) asks for
// a group on one connection for a while; a reviewer approves with `airlock
// reviews approve`; the requester's sessions on that connection see the group
// in policy until the grant is revoked (live sessions cut at once) or its
// window ends (cut by the gateway's sweep). Real gateway and agent processes,
// the machine's PostgreSQL, node-postgres.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./harness/cli-helpers.js";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";

const POLICY = {
  "access.cedar": `
@id("connect") permit (principal, action == Airlock::Action::"connect", resource);
@id("oncall-reads") @reason("on-call engineers read production")
permit (principal in Airlock::Group::"oncall", action in Airlock::Action::"read", resource);
`,
};

let env: PgEnv;
const tok: Record<string, string> = {};
const as = (who: string) => ({ AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: tok[who] });

beforeAll(async () => {
  env = await startPgEnv({ name: "access", policy: POLICY, setupSql: "CREATE TABLE incidents (id int); INSERT INTO incidents VALUES (12);" });
  for (const [subject, roles, groups] of [["bob", ["user"], ["developers"]], ["rita", ["user", "reviewer"], ["reviewers"]]] as const) {
    tok[subject] = (await env.gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject, roles, groups })).body.token;
  }
}, 120_000);

afterAll(async () => {
  await env?.close();
});

async function request(forWhat: string): Promise<string> {
  const r = await runCli(["request", env.connection, "--role", "oncall", "--for", forWhat, "--reason", "incident 12", "--json"], as("bob"));
  expect(r.code, r.stderr).toBe(0);
  const review = JSON.parse(r.stdout) as { id: string; status: string; role: string; reason: string };
  expect(review).toMatchObject({ status: "pending", role: "oncall", reason: "incident 12" });
  return review.id;
}

describe("airlock request", () => {
  it("grants a group for one connection once approved; revoking cuts the live session", async () => {
    const before = await env.connect(tok.bob!);
    expect((await errorOf(before.query("select * from incidents"))).code).toBe("42501");
    await before.end();

    const id = await request("2h");
    // The requester cannot grant themselves.
    expect((await runCli(["reviews", "approve", id], as("bob"))).code).not.toBe(0);
    const ok = await runCli(["reviews", "approve", id, "--reason", "on call this week"], as("rita"));
    expect(ok.stdout, ok.stderr).toMatch(/Approved/);

    const c = await env.connect(tok.bob!);
    c.on("error", () => {});
    expect((await c.query("select id from incidents")).rows).toEqual([{ id: 12 }]);
    const gone = new Promise<void>((resolve) => c.on("end", () => resolve()));
    const rv = await runCli(["reviews", "revoke", id, "--reason", "incident closed"], as("rita"));
    expect(rv.stdout, rv.stderr).toMatch(/1 live session\(s\) cut/);
    await gone;
    const after = await env.connect(tok.bob!);
    expect((await errorOf(after.query("select * from incidents"))).code).toBe("42501");
    await after.end();
  });

  it("a grant ends on its own: the sweep cuts the session when the window passes", async () => {
    const id = await request("1h");
    // The reviewer may grant less than asked: 10 seconds here.
    await runCli(["reviews", "approve", id, "--for", "10s"], as("rita"));
    const c = await env.connect(tok.bob!);
    c.on("error", () => {});
    expect((await c.query("select count(*)::int AS n from incidents")).rows[0].n).toBe(1);
    const t0 = Date.now();
    await new Promise<void>((resolve) => c.on("end", () => resolve()));
    expect(Date.now() - t0).toBeGreaterThan(5_000);
    const again = await env.connect(tok.bob!);
    expect((await errorOf(again.query("select * from incidents"))).code).toBe("42501");
    await again.end();
  }, 40_000);
});
