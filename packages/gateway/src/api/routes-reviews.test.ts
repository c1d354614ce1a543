// The reviewers' API and CLI against a whole in-process gateway (embedded
// store): who sees which review, deciding through REST and through the built
// CLI (`airlock reviews list|show|approve|reject`; run `pnpm build` first),
// and bad input (unknown, finished, self-approval, double approval, malformed
// bodies) answered with problem JSON while the review stays as it was.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Principal } from "../auth/principal.js";
import { loadConfig } from "../config.js";
import { startGateway, type Gateway } from "../server.js";

const CLI = join(fileURLToPath(new URL("../../../../", import.meta.url)), "packages/cli/dist/main.js");
let dir: string;
let gw: Gateway;
const tokens: Record<string, string> = {};
const principal = (subject: string, groups: string[]): Principal => ({ subject, kind: "user", roles: ["user"], groups, tokenId: null, expiresAt: new Date(Date.now() + 3600_000), method: "admin" });

async function call<T = Record<string, unknown>>(method: string, path: string, who: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(gw.apiUrl + path, { method, headers: { authorization: `Bearer ${tokens[who]}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

function cli(args: string[], who: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, AIRLOCK_URL: gw.apiUrl, AIRLOCK_TOKEN: tokens[who], AIRLOCK_CONFIG_DIR: "/nonexistent" } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

const held = (statement: string, groups = "reviewers") =>
  gw.reviews.createStatementReview({ principal: principal("alice", ["developers"]), connectionName: "prod-db", statement, rule: "deletes-need-review", ruleReason: "deletes need a second pair of eyes", requirements: { reviewerGroups: groups.split(","), approvalsNeeded: 1, allGroups: false, timeoutSeconds: 600 } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-reviews-api-"));
  gw = await startGateway(loadConfig({ dataDir: dir, api: { host: "127.0.0.1", port: 0 }, agents: { host: "127.0.0.1", port: 0, insecure: true }, postgres: { enabled: false, host: "127.0.0.1", port: 0, allowPlaintext: false } } as never, {}), pino({ level: "silent" }));
  const mint = async (subject: string, roles: Principal["roles"], groups: string[]) => (tokens[subject] = (await gw.tokens.mint({ subject, roles, groups })).token);
  await mint("alice", ["user"], ["developers"]);
  await mint("rita", ["user", "reviewer"], ["reviewers"]);
  await mint("bob", ["user"], ["developers"]);
  await mint("audrey", ["auditor"], []);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("reviews API", () => {
  it("shows a review to its requester, its reviewers and auditors, nobody else", async () => {
    const r = await held("DELETE FROM orders WHERE id = 1");
    const forRita = await call<{ reviews: Array<{ id: string; canDecide: boolean }> }>("GET", "/api/v1/reviews?status=pending", "rita");
    expect(forRita.body.reviews.find((x) => x.id === r.id)?.canDecide).toBe(true);
    const forAlice = await call<{ id: string; canDecide: boolean }>("GET", `/api/v1/reviews/${r.id}`, "alice");
    expect(forAlice.body).toMatchObject({ id: r.id, canDecide: false });
    expect((await call("GET", `/api/v1/reviews/${r.id}`, "audrey")).status).toBe(200);
    expect((await call("GET", `/api/v1/reviews/${r.id}`, "bob")).status).toBe(404);
    expect((await call<{ reviews: unknown[] }>("GET", "/api/v1/reviews", "bob")).body.reviews).toEqual([]);
  });

  it("bad decisions are clear errors and change nothing", async () => {
    const r = await held("DELETE FROM orders WHERE id = 2");
    const self = await call<{ code: string; detail: string }>("POST", `/api/v1/reviews/${r.id}/approve`, "alice", {});
    expect(self.status).toBe(403);
    expect(self.body.code).toBe("REVIEW_SELF_APPROVAL");
    expect((await call<{ code: string }>("POST", `/api/v1/reviews/${r.id}/approve`, "bob", {})).body.code).toBe("REVIEW_NOT_ELIGIBLE");
    expect((await call("POST", `/api/v1/reviews/${r.id}/reject`, "rita", {})).status).toBe(400); // a reason is required
    expect((await call("POST", `/api/v1/reviews/${r.id}/approve`, "rita", { uses: 0 })).status).toBe(400);
    expect((await call("POST", `/api/v1/reviews/${r.id}/approve`, "rita", { scope: "forever" })).status).toBe(400);
    expect((await call<{ code: string }>("POST", "/api/v1/reviews/00000000-0000-4000-8000-000000000000/approve", "rita", {})).body.code).toBe("NOT_FOUND");
    expect((await call("POST", "/api/v1/reviews/not-a-uuid/approve", "rita", {})).status).toBe(400);
    const still = await call<{ status: string; decisions: unknown[] }>("GET", `/api/v1/reviews/${r.id}`, "rita");
    expect(still.body).toMatchObject({ status: "pending", decisions: [] });
    expect((await call<{ status: string }>("POST", `/api/v1/reviews/${r.id}/approve`, "rita", { reason: "ok" })).body.status).toBe("approved");
    const twice = await call<{ code: string; detail: string }>("POST", `/api/v1/reviews/${r.id}/approve`, "rita", {});
    expect(twice.status).toBe(409);
    expect(twice.body.detail).toMatch(/already approved/);
  });
});

describe("airlock reviews (CLI)", () => {
  it("list, show, approve and reject from the reviewer's shell", async () => {
    const a = await held("DELETE FROM orders WHERE id = 3");
    const b = await held("DELETE FROM orders WHERE id = 4");
    const list = await cli(["reviews", "list"], "rita");
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(a.id);
    expect(list.stdout).toMatch(/DELETE FROM orders WHERE id = 3/);
    const show = await cli(["reviews", "show", a.id], "rita");
    expect(show.stdout).toMatch(/you may decide/);
    expect(show.stdout).toMatch(/policy:\s+deletes-need-review \(deletes need a second pair of eyes\)/);
    const ok = await cli(["reviews", "approve", a.id, "--reason", "checked", "--uses", "2"], "rita");
    expect(ok.stdout).toMatch(/Approved: review .* \(once, 2 use\(s\)/);
    const no = await cli(["reviews", "reject", b.id, "--reason", "not in the freeze"], "rita");
    expect(no.code).toBe(0);
    expect((await gw.reviews.get(b.id))).toMatchObject({ status: "rejected", decidedReason: "not in the freeze" });
    const self = await cli(["reviews", "approve", b.id], "alice");
    expect(self.code).not.toBe(0);
    expect(self.stderr).toMatch(/REVIEW_CLOSED|already rejected/);
  });
});
