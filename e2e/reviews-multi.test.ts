// Several gateway processes on one PostgreSQL store: a statement held at one
// gateway's front door is approved through another gateway's API, and the
// decision reaches the holding process by LISTEN/NOTIFY (the 1 s store poll is
// only the safety net). Also: 200 statements held at once in one gateway, which
// stays responsive, and all of them are released.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPostgres, type TestPostgres } from "../packages/gateway/src/engines/postgres/backend/test-server.js";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";
import type { GatewayProc } from "./harness/processes.js";

const POLICY = {
  "access.cedar": `
@id("everyone") permit (principal, action, resource);
@id("deletes-need-review") @effect("review") @reviewers("reviewers") @timeout("5m")
forbid (principal, action == Airlock::Action::"delete", resource);
`,
};

let env: PgEnv;
let peer: GatewayProc;
/** A PostgreSQL of this test's own with room for 200+ sessions (the machine's allows 100). */
let big: TestPostgres;
const tok: Record<string, string> = {};

async function heldClient(token: string, connection?: string): Promise<{ c: pg.Client; review: Promise<string> }> {
  const c = await env.connect(token, connection ? { connection } : undefined);
  c.on("error", () => {});
  const review = new Promise<string>((resolve) => c.on("notice", (n) => { const id = /held for review ([0-9a-f-]{36})/.exec(n.message ?? "")?.[1]; if (id) resolve(id); }));
  return { c, review };
}

beforeAll(async () => {
  env = await startPgEnv({ name: "reviews_multi", policy: POLICY, setupSql: "CREATE TABLE items (id int primary key); INSERT INTO items SELECT generate_series(1, 1000);" });
  peer = await env.startPeerGateway();
  big = await startTestPostgres({ maxConnections: 260 });
  await big.query("CREATE TABLE items (id int primary key); INSERT INTO items SELECT generate_series(1, 1000);");
  await env.addConnection("big", big.host, big.port, big.database);
  for (const [subject, roles, groups] of [["alice", ["user"], ["developers"]], ["rita", ["user", "reviewer"], ["reviewers"]]] as const) {
    const r = await env.gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject, roles, groups });
    tok[subject] = r.body.token;
  }
}, 120_000);

afterAll(async () => {
  await env?.close();
  await big?.stop();
});

describe("two gateway processes, one store", () => {
  it("a statement held on gateway A is released by an approval on gateway B", async () => {
    const { c, review } = await heldClient(tok.alice!);
    const q = c.query("DELETE FROM items WHERE id = 1");
    const id = await review;
    const t0 = Date.now();
    const r = await peer.api<{ status: string }>("POST", `/api/v1/reviews/${id}/approve`, {}, tok.rita);
    expect(r.body.status).toBe("approved");
    expect((await q).rowCount).toBe(1);
    const releasedMs = Date.now() - t0;
    console.log(`approval on gateway B → result on gateway A's client: ${releasedMs} ms`);
    // Rejection through B reaches A's client with the reason.
    const next = new Promise<string>((resolve) => c.once("notice", (n) => resolve(/held for review ([0-9a-f-]{36})/.exec(n.message ?? "")![1]!)));
    const q2 = c.query("DELETE FROM items WHERE id = 2");
    const id2 = await next;
    await peer.api("POST", `/api/v1/reviews/${id2}/reject`, { reason: "decided on B" }, tok.rita);
    expect((await errorOf(q2)).message).toMatch(/rejected by rita: decided on B/);
    await c.end();
  });
});

describe("200 statements held at once", () => {
  it("hold no thread and little memory; the gateway keeps answering; all are released", async () => {
    const rss = async () => {
      const r = await fetch(`${env.gw.apiUrl}/healthz`);
      expect(r.status).toBe(200);
      return Number((await import("node:fs")).readFileSync(`/proc/${env.gw.child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024;
    };
    const before = await rss();
    const clients = await Promise.all(Array.from({ length: 200 }, () => heldClient(tok.alice!, "big")));
    const queries = clients.map(({ c }, i) => c.query(`DELETE FROM items WHERE id = ${100 + i}`));
    const ids = await Promise.all(clients.map((x) => x.review));
    const heldRss = await rss();
    // Responsive while they wait: API round trips and a query on another session.
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      expect((await env.gw.api("GET", "/api/v1/whoami", undefined, tok.rita)).status).toBe(200);
      lat.push(performance.now() - t);
    }
    const other = await env.connect(tok.rita!, { connection: "big" });
    const t1 = performance.now();
    expect((await other.query("select count(*)::int AS n FROM items")).rows[0].n).toBe(1000);
    const selectMs = performance.now() - t1;
    await other.end();
    lat.sort((a, b) => a - b);
    // Approve them all (through the other gateway, for good measure) and collect the results.
    const t2 = performance.now();
    for (const id of ids) expect((await peer.api<{ status: string }>("POST", `/api/v1/reviews/${id}/approve`, {}, tok.rita)).body.status).toBe("approved");
    const results = await Promise.all(queries);
    const releaseMs = performance.now() - t2;
    expect(results.every((r) => r.rowCount === 1)).toBe(true);
    expect((await big.query("select count(*)::int AS n FROM items WHERE id BETWEEN 100 AND 299")).rows[0].n).toBe(0);
    console.log(`200 held statements: gateway RSS ${before.toFixed(1)} → ${heldRss.toFixed(1)} MB (+${(heldRss - before).toFixed(1)} MB incl. 200 client sessions); API p50 ${lat[10]!.toFixed(1)} ms, max ${lat[19]!.toFixed(1)} ms while held; a select on another session ${selectMs.toFixed(1)} ms; 200 approvals + results ${releaseMs.toFixed(0)} ms`);
    await Promise.all(clients.map(({ c }) => c.end()));
  }, 120_000);
});
