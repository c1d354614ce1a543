// Asking a human without blocking, end to end: `airlock exec` (built CLI) and
// POST /api/v1/connections/:name/exec answer "review required: ID" (exit 3 /
// HTTP 202) when a policy sends the statement to review, the statement does
// not run; once approved, `airlock reviews run ID` runs exactly it, once.
// `--wait` / `wait: true` hold until the decision. Real gateway and agent
// processes, the machine's PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./harness/cli-helpers.js";
import { startPgEnv, type PgEnv } from "./harness/pg.js";
import { startCli } from "./harness/processes.js";

const POLICY = {
  "access.cedar": `
@id("everyone") permit (principal, action, resource);
@id("deletes-need-review") @effect("review") @reviewers("reviewers") @timeout("5m")
@reason("deletes need a second pair of eyes")
forbid (principal, action == Airlock::Action::"delete", resource);
`,
};

let env: PgEnv;
const tok: Record<string, string> = {};
const as = (who: string) => ({ AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: tok[who] });
const count = async (id: number) => (await env.direct("select count(*)::int AS n FROM items WHERE id = $1", [id])).rows[0].n as number;

beforeAll(async () => {
  env = await startPgEnv({ name: "exec", policy: POLICY, setupSql: "CREATE TABLE items (id int primary key, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g;" });
  for (const [subject, roles, groups] of [["agent-7", ["user"], ["ai-agents"]], ["rita", ["user", "reviewer"], ["reviewers"]]] as const) {
    tok[subject] = (await env.gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject, roles, groups })).body.token;
  }
}, 120_000);

afterAll(async () => {
  await env?.close();
});

describe("airlock exec", () => {
  it("reads run at once; a DELETE under review exits 3 with the review id and does not run", async () => {
    const sel = await runCli(["exec", env.connection, "--sql", "select id, name from items where id <= 2 order by id"], as("agent-7"));
    expect(sel.code, sel.stderr).toBe(0);
    expect(sel.stdout).toMatch(/ID\s+NAME\n1\s+item 1\n2\s+item 2\nSELECT 2/);
    const del = await runCli(["exec", env.connection, "--sql", "DELETE FROM items WHERE id = 1"], as("agent-7"));
    expect(del.code).toBe(3);
    const id = /review required: ([0-9a-f-]{36})/.exec(del.stdout)?.[1];
    expect(id, del.stdout + del.stderr).toBeTruthy();
    expect(del.stderr).toMatch(new RegExp(`airlock reviews run ${id}`));
    expect(await count(1)).toBe(1);
    // Not approved yet: run refuses.
    const early = await runCli(["reviews", "run", id!], as("agent-7"));
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/pending, not approved/);
    expect((await runCli(["reviews", "approve", id!], as("rita"))).code).toBe(0);
    const run = await runCli(["reviews", "run", id!], as("agent-7"));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/DELETE 1/);
    expect(await count(1)).toBe(0);
    const again = await runCli(["reviews", "run", id!], as("agent-7"));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/used up or expired/);
  });

  it("--wait holds until a reviewer decides, then prints the result", async () => {
    const cli = startCli(["exec", env.connection, "--sql", "DELETE FROM items WHERE id = 2", "--wait"], { ...as("agent-7"), AIRLOCK_CONFIG_DIR: "/nonexistent" });
    const line = await cli.waitFor(/held for review [0-9a-f-]{36}/, 20_000);
    const id = /([0-9a-f-]{36})/.exec(line)![1]!;
    expect((await runCli(["reviews", "approve", id], as("rita"))).code).toBe(0);
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/DELETE 1/);
    expect(await count(2)).toBe(0);
  });
});

describe("POST /api/v1/connections/:name/exec", () => {
  const exec = (body: Record<string, unknown>) => env.gw.api<{ results?: Array<{ command: string; rowCount: number; fields: string[]; rows: unknown[][] }>; reviewRequired?: string; code?: string; detail?: string }>("POST", `/api/v1/connections/${env.connection}/exec`, body, tok["agent-7"]);

  it("returns rows as JSON, and 202 with the review id for a statement under review", async () => {
    const r = await exec({ sql: "select id, name from items where id = $1", params: [3] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.results).toEqual([{ command: "SELECT", rowCount: 1, fields: ["id", "name"], rows: [[3, "item 3"]], truncated: false }]);
    const d = await exec({ sql: "DELETE FROM items WHERE id = 3" });
    expect(d.status).toBe(202);
    expect(d.body.reviewRequired).toMatch(/^[0-9a-f-]{36}$/);
    expect(await count(3)).toBe(1);
    const bad = await exec({ sql: "DROP TABLE items; garbage(" });
    expect(bad.status).toBe(403);
    expect(bad.body.code).toBe("STATEMENT_UNPARSABLE");
  });
});
