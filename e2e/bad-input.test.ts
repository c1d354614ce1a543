// Bad input, whole system: real gateway, agent and `airlock connect` processes,
// a real PostgreSQL (127.0.0.1:5432) and TCP targets written here. Bad, expired
// and revoked tokens, a user reaching beyond their role, a client that never
// reads, connections that cannot be served, and secrets that must never show.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freePort, killAll, psql, startAgent, startConnect, startGateway, type GatewayProc } from "./harness/processes.js";
import {
  assertAlive,
  echoOnce,
  echoServer,
  filesContaining,
  http,
  listSessions,
  openEcho,
  rssKb,
  runCli,
  sleep,
  sourceServer,
  waitAgentStatus,
  waitSessionEnded,
  type Session,
  type TestServer,
} from "./harness/lifecycle-helpers.js";
import { rawConnect } from "./harness/lifecycle-ws.js";

const STALL_TIMEOUT_MS = 2_000;
const SECRET = "s3cret-value";

let gw: GatewayProc;
let echo: TestServer;
let source: TestServer & { bytesSent: () => number };
const figures: Record<string, number | string> = {};
const count = (s: string, re: RegExp) => (s.match(new RegExp(re.source, "g")) ?? []).length;

async function mint(subject: string, extra: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const r = await gw.api<{ id: string; token: string }>("POST", "/api/v1/tokens", { subject, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function connection(name: string, body: Record<string, unknown>): Promise<void> {
  const r = await gw.api("POST", "/api/v1/connections", { name, type: "tcp", host: "127.0.0.1", agent: "site", ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

beforeAll(async () => {
  [gw, echo, source] = await Promise.all([
    // debug logging: the secrets check below then covers the most talkative gateway.
    startGateway({ env: { AIRLOCK_CLIENT_STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS), AIRLOCK_LOG_LEVEL: "debug" } }),
    echoServer(),
    sourceServer(),
  ]);
  const agent = await startAgent(gw, "site");
  await agent.waitFor(/connected to gateway/);
  await connection("echo", { port: echo.port });
  await connection("source", { port: source.port });
  await connection("pg", { port: 5432 });
});

afterAll(async () => {
  await killAll();
  await Promise.all([echo?.close(), source?.close()]);
  console.log("bad-input figures:", JSON.stringify(figures, null, 2));
});

describe("bad tokens", () => {
  it("REST, `airlock connect` and the raw WebSocket upgrade all refuse unknown, malformed, wrong-kind, expired, revoked and missing tokens with 401 problem JSON and the right code", async () => {
    const expiring = await mint("eve", { ttlSeconds: 1 });
    const revoked = await mint("mallory");
    expect((await gw.api("GET", "/api/v1/whoami", undefined, revoked.token)).status).toBe(200);
    const rv = await gw.api<{ sessionsCut: number }>("POST", `/api/v1/tokens/${revoked.id}/revoke`);
    expect(rv.status).toBe(200);
    const enr = await gw.api<{ enrollmentToken: string }>("POST", "/api/v1/agents", { name: "never-started" });
    const cases: Array<{ what: string; token: string | undefined; code: string }> = [
      { what: "unknown", token: `alk_at_${randomBytes(32).toString("base64url")}`, code: "TOKEN_INVALID" },
      { what: "malformed", token: "definitely-not-a-token", code: "TOKEN_INVALID" },
      { what: "wrong kind (enrollment token)", token: enr.body.enrollmentToken, code: "TOKEN_INVALID" },
      { what: "expired", token: expiring.token, code: "TOKEN_EXPIRED" },
      { what: "revoked", token: revoked.token, code: "TOKEN_REVOKED" },
      { what: "missing", token: undefined, code: "UNAUTHENTICATED" },
    ];
    // Let the 1 s token expire.
    await eventually(async () => (await http(gw.apiUrl, "GET", "/api/v1/whoami", expiring.token)).status === 401, 5_000, "token expiry");

    for (const c of cases) {
      for (const [method, path] of [
        ["GET", "/api/v1/connections"],
        ["GET", "/api/v1/whoami"],
        ["GET", "/api/v1/sessions"],
        ["POST", "/api/v1/tokens"],
      ] as const) {
        const r = await http<Record<string, unknown>>(gw.apiUrl, method, path, c.token, method === "POST" ? { subject: "x" } : undefined);
        expect({ what: c.what, path, status: r.status }).toEqual({ what: c.what, path, status: 401 });
        expect(r.contentType).toMatch(/^application\/problem\+json/);
        expect(r.body).toMatchObject({ status: 401, code: c.code, title: c.code, detail: expect.any(String), type: expect.stringContaining(c.code.toLowerCase()) });
      }

      // The raw WebSocket front door: an HTTP 401 problem, not an upgrade.
      const ws = rawConnect(gw.apiUrl, "echo", c.token);
      const up = await ws.upgrade;
      expect(up.kind, `${c.what}: ${JSON.stringify(up)}`).toBe("rejected");
      if (up.kind !== "rejected") continue;
      expect(up.status).toBe(401);
      expect(up.contentType).toMatch(/^application\/problem\+json/);
      expect(up.body).toMatchObject({ status: 401, code: c.code });

      // `airlock connect` fails fast with the code in its message.
      if (c.token === undefined) continue;
      const started = Date.now();
      const cli = await runCli(["--gateway", gw.apiUrl, "--token", c.token, "connect", "echo", "--port", "0"], {}, 20_000);
      expect(cli.code, `${c.what}: ${cli.output}`).not.toBe(0);
      expect(cli.code).not.toBeNull();
      expect(cli.output).toContain(c.code);
      expect(cli.output).not.toMatch(/Listening on/);
      expect(Date.now() - started).toBeLessThan(15_000);
    }
    // No session was recorded for any of these: they never got past authentication.
    const subjects = new Set((await listSessions(gw)).map((s) => s.subject));
    expect(subjects.has("eve") || subjects.has("mallory")).toBe(false);
  });

  it("revoking a token cuts that token's live sessions while another user's session keeps flowing", async () => {
    const alice = await mint("alice");
    const bob = await mint("bob");
    const [ca, cb] = await Promise.all([startConnect(gw, "echo", alice.token), startConnect(gw, "echo", bob.token)]);
    const [ea, eb] = await Promise.all([openEcho(ca.port), openEcho(cb.port)]);
    expect(await ea.roundTrip(256 * 1024)).toBe(true);
    expect(await eb.roundTrip(256 * 1024)).toBe(true);

    // Bob's stream is busy while Alice's token is revoked.
    let bobOk = 0;
    let bobBad = 0;
    let stop = false;
    const bobLoop = (async () => {
      while (!stop) (await eb.roundTrip(512 * 1024)) ? bobOk++ : bobBad++;
    })();
    await sleep(200);
    const revokedAt = Date.now();
    const r = await gw.api<{ id: string; sessionsCut: number }>("POST", `/api/v1/tokens/${alice.id}/revoke`);
    expect(r.status).toBe(200);
    expect(r.body.sessionsCut).toBeGreaterThanOrEqual(1);
    const cut = await Promise.race([ea.closed, sleep(10_000).then(() => null)]);
    expect(cut, "alice's stream is still open after her token was revoked").not.toBeNull();
    figures.streamCutAfterTokenRevokeMs = cut!.at - revokedAt;
    expect(cut!.at - revokedAt).toBeLessThan(3_000);
    await sleep(500);
    stop = true;
    await bobLoop;
    // Then several more MB on Bob's same connection, content-checked.
    for (let i = 0; i < 8; i++) expect(await eb.roundTrip(1024 * 1024)).toBe(true);
    expect(bobBad).toBe(0);
    expect(bobOk).toBeGreaterThan(0);

    const aliceSession = await waitSessionEnded(gw, (s) => s.subject === "alice");
    expect(aliceSession.errorCode).toBe("TOKEN_REVOKED");
    expect(["denied", "failed"]).toContain(aliceSession.outcome);
    const bobSession = (await listSessions(gw, "subject=bob"))[0]!;
    expect(bobSession).toMatchObject({ outcome: "active", endedAt: null });
    // Alice's still-running `airlock connect` can open nothing new, and says why.
    const again = await openEcho(ca.port);
    await again.closed;
    await sleep(300);
    await assertAlive(ca, "alice's airlock connect");
    await ca.waitFor(/connection to echo failed: TOKEN_REVOKED/, 5_000);
    eb.end();
    await Promise.all([ca.kill(), cb.kill()]);
  });
});

describe("roles", () => {
  it("a user-role token cannot create connections, agents or tokens, can list connections and connect, and sees only its own sessions", async () => {
    const carol = await mint("carol"); // roles default to ["user"]
    const denied: Array<[string, string, unknown]> = [
      ["POST", "/api/v1/connections", { name: "carols", type: "tcp", host: "127.0.0.1", port: echo.port, agent: "site" }],
      ["PATCH", "/api/v1/connections/echo", { port: 1 }],
      ["DELETE", "/api/v1/connections/echo", undefined],
      ["POST", "/api/v1/agents", { name: "carols-agent" }],
      ["GET", "/api/v1/agents", undefined],
      ["POST", "/api/v1/agents/site/revoke", undefined],
      ["POST", "/api/v1/tokens", { subject: "carol", roles: ["admin"] }],
      ["POST", "/api/v1/tokens", { subject: "dave" }],
    ];
    for (const [method, path, body] of denied) {
      const r = await http<Record<string, unknown>>(gw.apiUrl, method, path, carol.token, body);
      expect({ method, path, status: r.status, code: r.body?.code }).toEqual({ method, path, status: 403, code: "PERMISSION_DENIED" });
      expect(r.contentType).toMatch(/^application\/problem\+json/);
    }
    // Nothing was changed by those attempts.
    const conns = await http<{ connections: Array<{ name: string; port: number }> }>(gw.apiUrl, "GET", "/api/v1/connections", carol.token);
    expect(conns.status).toBe(200);
    expect(conns.body.connections.map((c) => c.name)).toEqual(expect.arrayContaining(["echo", "pg", "source"]));
    expect(conns.body.connections.find((c) => c.name === "echo")!.port).toBe(echo.port);
    expect(conns.body.connections.some((c) => c.name === "carols")).toBe(false);
    expect((await gw.api<{ agents: Array<{ name: string; status: string }> }>("GET", "/api/v1/agents")).body.agents.find((a) => a.name === "site")?.status).toBe("online");

    // Carol connects with her own token; the admin, too.
    const cc = await startConnect(gw, "pg", carol.token);
    const q = await psql(`postgresql://postgres@127.0.0.1:${cc.port}/postgres`, ["-At", "-c", "select 'carol-' || 42"]);
    expect(q.stderr).toBe("");
    expect(q.stdout.trim()).toBe("carol-42");
    const adminConn = await startConnect(gw, "pg");
    expect((await psql(`postgresql://postgres@127.0.0.1:${adminConn.port}/postgres`, ["-At", "-c", "select 1"])).stdout.trim()).toBe("1");
    await waitSessionEnded(gw, (s) => s.subject === "carol" && s.outcome === "ok");
    await waitSessionEnded(gw, (s) => s.subject === "admin" && s.connectionName === "pg" && s.outcome === "ok");

    const mine = await listSessions(gw, "", carol.token);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine.every((s) => s.subject === "carol")).toBe(true);
    // Asking for someone else's sessions by filter still yields only her own.
    const sneaky = await listSessions(gw, "subject=admin", carol.token);
    expect(sneaky.every((s) => s.subject === "carol")).toBe(true);
    const all = await listSessions(gw);
    const subjects = new Set(all.map((s) => s.subject));
    expect(subjects.has("carol") && subjects.has("admin") && subjects.has("alice") && subjects.has("bob")).toBe(true);
    const adminSession = all.find((s) => s.subject === "admin")!;
    const peek = await http<Record<string, unknown>>(gw.apiUrl, "GET", `/api/v1/sessions/${adminSession.id}`, carol.token);
    expect(peek.status).toBe(404);
    expect(peek.body?.code).toBe("NOT_FOUND");
    await Promise.all([cc.kill(), adminConn.kill()]);
  });
});

describe("a WebSocket client that never reads", () => {
  it("is dropped with CLIENT_STALLED after the stall timeout, the gateway's memory stays bounded, and another client's stream keeps flowing", async () => {
    const pid = gw.child.pid!;
    // Warm up the paths used below, then take the baseline.
    const ce = await startConnect(gw, "echo");
    const warm = await openEcho(ce.port);
    for (let i = 0; i < 4; i++) expect(await warm.roundTrip(1024 * 1024)).toBe(true);
    warm.end();
    await sleep(500);
    const baseline = await rssKb(pid);
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssKb(pid));
        await sleep(100);
      }
    })();

    const sentBefore = source.bytesSent();
    const stalled = rawConnect(gw.apiUrl, "source", gw.adminToken, { pauseOnReady: true });
    expect((await stalled.upgrade).kind).toBe("open");
    const sessionId = await stalled.ready;
    const pausedAt = Date.now();

    // Another client on the same gateway and agent, content-checked, during the stall.
    const other = await openEcho(ce.port);
    let moved = 0;
    while (Date.now() - pausedAt < STALL_TIMEOUT_MS + 1_500) {
      expect(await other.roundTrip(1024 * 1024)).toBe(true);
      moved += 1024 * 1024;
    }

    const s: Session = await waitSessionEnded(gw, (x) => x.id === sessionId, STALL_TIMEOUT_MS + 10_000);
    const dropMs = new Date(s.endedAt!).getTime() - pausedAt;
    expect(s).toMatchObject({ outcome: "failed", errorCode: "CLIENT_STALLED", connectionName: "source" });
    expect(dropMs).toBeGreaterThanOrEqual(STALL_TIMEOUT_MS);
    expect(dropMs).toBeLessThan(STALL_TIMEOUT_MS + 6_000);
    await gw.waitFor(/client stopped reading; dropping it/, 2_000);

    // And after the drop, still flowing.
    for (let i = 0; i < 8; i++) {
      expect(await other.roundTrip(1024 * 1024)).toBe(true);
      moved += 1024 * 1024;
    }
    await sleep(500);
    sampling = false;
    await sampler;
    const growthMb = (peak - baseline) / 1024;
    const sourceSentMb = (source.bytesSent() - sentBefore) / 1024 / 1024;
    Object.assign(figures, {
      stallDropAfterPauseMs: dropMs,
      gatewayRssBaselineMb: Math.round(baseline / 1024),
      gatewayRssPeakMb: Math.round(peak / 1024),
      gatewayRssGrowthMb: Math.round(growthMb * 10) / 10,
      stalledSessionBytesDown: s.bytesDown,
      sourceSentDuringStallMb: Math.round(sourceSentMb * 10) / 10,
      wsClientReceivedBeforePause: stalled.received(),
      echoMovedDuringStallMb: moved / 1024 / 1024,
    });
    expect(growthMb).toBeLessThan(64);
    // Backpressure reached the target: the source was not drained into memory somewhere.
    expect(s.bytesDown).toBeLessThan(64 * 1024 * 1024);
    expect(sourceSentMb).toBeLessThan(96);
    expect(moved).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    other.end();
    stalled.ws.terminate();
    await ce.kill();
  });
});

describe("connections that cannot be served", () => {
  // Each case gets its own gateway and agent: a case that brings a process
  // down must not take the other cases with it.
  async function site(): Promise<GatewayProc> {
    const g = await startGateway();
    const a = await startAgent(g, "site");
    await a.waitFor(/connected to gateway/);
    return g;
  }
  async function add(g: GatewayProc, name: string, body: Record<string, unknown>): Promise<void> {
    const r = await g.api("POST", "/api/v1/connections", { name, type: "tcp", host: "127.0.0.1", agent: "site", ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }

  it("an unknown connection name is refused as NOT_FOUND, recorded as a denied session, and the gateway stays up", async () => {
    const g = await site();
    const cli = await runCli(["--gateway", g.apiUrl, "--token", g.adminToken, "connect", "no-such-conn", "--port", "0"]);
    expect(cli.code).not.toBe(0);
    expect(cli.code).not.toBeNull();
    expect(cli.output).toContain("NOT_FOUND");
    expect(cli.output).toContain("no-such-conn");

    // The WebSocket itself (what the CLI would open without its fail-fast check).
    const raw = rawConnect(g.apiUrl, "no-such-conn", g.adminToken);
    expect((await raw.upgrade).kind).toBe("open");
    const closed = await raw.closed;
    expect(raw.controls).toContainEqual(expect.objectContaining({ type: "error", code: "NOT_FOUND" }));
    expect(raw.controls.some((m) => m.type === "ready")).toBe(false);
    expect(closed.code).toBe(4000);
    await assertAlive(g, "gateway");
    const s = await waitSessionEnded(g, (x) => x.connectionName === "no-such-conn");
    expect(s).toMatchObject({ outcome: "denied", errorCode: "NOT_FOUND", agent: null, bytesUp: 0, bytesDown: 0 });
    await g.kill();
  });

  it("a connection whose agent is offline gives the client AGENT_UNAVAILABLE, and gateway and `airlock connect` stay up", async () => {
    const g = await site();
    const flaky = await startAgent(g, "flaky");
    await flaky.waitFor(/connected to gateway/);
    await add(g, "ghost", { port: echo.port, agent: "flaky" });
    await add(g, "fine", { port: echo.port });
    await flaky.kill("SIGKILL");
    await waitAgentStatus(g, "flaky", "offline");
    const c = await startConnect(g, "ghost");
    const q = await psql(`postgresql://postgres@127.0.0.1:${c.port}/postgres`, ["-At", "-c", "select 1"]);
    expect(q.code).not.toBe(0);
    await c.waitFor(/connection to ghost failed: AGENT_UNAVAILABLE: no agent is online for connection ghost \(agent flaky\)/, 5_000);
    await assertAlive(g, "gateway");
    await assertAlive(c, "airlock connect");
    const s = await waitSessionEnded(g, (x) => x.connectionName === "ghost");
    expect(s).toMatchObject({ outcome: "failed", errorCode: "AGENT_UNAVAILABLE" });
    // Both keep serving: a second try fails the same way, another connection works.
    const again = await openEcho(c.port);
    await again.closed;
    expect(count(c.output(), /AGENT_UNAVAILABLE/)).toBe(2);
    const f = await startConnect(g, "fine");
    expect(await echoOnce(f.port)).toBe(true);
    await g.kill();
  });

  it("a target port with nothing listening gives STREAM_REFUSED with ECONNREFUSED, and gateway and `airlock connect` stay up", async () => {
    const g = await site();
    await add(g, "refused", { port: await freePort() });
    await add(g, "fine", { port: echo.port });
    const c = await startConnect(g, "refused");
    const q = await psql(`postgresql://postgres@127.0.0.1:${c.port}/postgres`, ["-At", "-c", "select 1"]);
    expect(q.code).not.toBe(0);
    const line = await c.waitFor(/connection to refused failed: STREAM_REFUSED: .*/, 5_000);
    expect(line).toContain("ECONNREFUSED");
    await assertAlive(g, "gateway");
    await assertAlive(c, "airlock connect");
    const s = await waitSessionEnded(g, (x) => x.connectionName === "refused");
    expect(s).toMatchObject({ outcome: "failed", errorCode: "STREAM_REFUSED", agent: "site" });
    expect(s.error).toContain("ECONNREFUSED");
    const f = await startConnect(g, "fine");
    expect(await echoOnce(f.port)).toBe(true);
    await g.kill();
  });

  it("a token without the user role (auditor) cannot connect: PERMISSION_DENIED reaches the client, and gateway and `airlock connect` stay up", async () => {
    const g = await site();
    await add(g, "fine", { port: echo.port });
    const aud = await g.api<{ token: string }>("POST", "/api/v1/tokens", { subject: "audrey", roles: ["auditor"] });
    expect(aud.status).toBe(201);
    // An auditor may look at connections (so `airlock connect` starts) but not open one.
    const c = await startConnect(g, "fine", aud.body.token);
    const e = await openEcho(c.port);
    await e.closed;
    await c.waitFor(/connection to fine failed: PERMISSION_DENIED/, 5_000);
    await assertAlive(g, "gateway");
    await assertAlive(c, "airlock connect");
    const s = await waitSessionEnded(g, (x) => x.subject === "audrey");
    expect(s).toMatchObject({ outcome: "denied", errorCode: "PERMISSION_DENIED", bytesUp: 0, bytesDown: 0 });
    const f = await startConnect(g, "fine");
    expect(await echoOnce(f.port)).toBe(true);
    await g.kill();
  });

  it("a WebSocket without the airlock.tcp.v1 subprotocol is refused with INVALID_ARGUMENT and the gateway stays up", async () => {
    const g = await site();
    await add(g, "fine", { port: echo.port });
    const raw = rawConnect(g.apiUrl, "fine", g.adminToken, { protocol: null });
    expect((await raw.upgrade).kind).toBe("open");
    await raw.closed;
    expect(raw.controls).toContainEqual(expect.objectContaining({ type: "error", code: "INVALID_ARGUMENT" }));
    await assertAlive(g, "gateway");
    const f = await startConnect(g, "fine");
    expect(await echoOnce(f.port)).toBe(true);
    await g.kill();
  });
});

describe("secrets", () => {
  it("are never returned by the API nor written in plaintext to the log or the data dir", async () => {
    const created = await http<Record<string, unknown>>(gw.apiUrl, "POST", "/api/v1/connections", gw.adminToken, {
      name: "pg-secret",
      type: "tcp",
      host: "127.0.0.1",
      port: 5432,
      agent: "site",
      secrets: { password: SECRET },
    });
    expect(created.status).toBe(201);
    expect(created.body.hasSecrets).toBe(true);
    expect(created.text).not.toContain(SECRET);
    // Refused writes that carry the secret must not echo it either.
    const bad = await http(gw.apiUrl, "POST", "/api/v1/connections", gw.adminToken, { name: "pg-secret", type: "tcp", host: "127.0.0.1", port: 5432, agent: "site", secrets: { password: SECRET } });
    expect(bad.status).toBe(409);
    expect(bad.text).not.toContain(SECRET);
    const invalid = await http(gw.apiUrl, "POST", "/api/v1/connections", gw.adminToken, { name: "pg-secret-2", type: "tcp", host: "127.0.0.1", port: 99999, agent: "site", secrets: { password: SECRET } });
    expect(invalid.status).toBe(400);
    expect(invalid.text).not.toContain(SECRET);
    const patched = await http<Record<string, unknown>>(gw.apiUrl, "PATCH", "/api/v1/connections/pg-secret", gw.adminToken, { labels: { env: "test" } });
    expect(patched.status).toBe(200);
    expect(patched.body.hasSecrets).toBe(true);
    expect(patched.text).not.toContain(SECRET);

    const one = await http<Record<string, unknown>>(gw.apiUrl, "GET", "/api/v1/connections/pg-secret", gw.adminToken);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ name: "pg-secret", hasSecrets: true });
    expect(one.text).not.toContain(SECRET);
    expect(Object.keys(one.body)).not.toContain("secrets");
    const list = await http(gw.apiUrl, "GET", "/api/v1/connections", gw.adminToken);
    expect(list.text).toContain("pg-secret");
    expect(list.text).not.toContain(SECRET);
    const openapi = await http(gw.apiUrl, "GET", "/openapi.json", undefined);
    expect(openapi.text).not.toContain(SECRET);
    const show = await runCli(["--gateway", gw.apiUrl, "--token", gw.adminToken, "connections", "show", "pg-secret"]);
    expect(show.code).toBe(0);
    expect(show.output).toMatch(/secrets:\s+set \(write-only\)/);
    expect(show.output).not.toContain(SECRET);

    // Use it, so the data path decrypts it.
    const c = await startConnect(gw, "pg-secret");
    const q = await psql(`postgresql://postgres@127.0.0.1:${c.port}/postgres`, ["-At", "-c", "select 7"]);
    expect(q.stdout.trim()).toBe("7");
    await waitSessionEnded(gw, (s) => s.connectionName === "pg-secret" && s.outcome === "ok");
    await c.kill();

    // Stop the gateway gracefully so the embedded store is flushed to its files, then look everywhere.
    await gw.kill("SIGTERM");
    expect((await gw.exited).code).toBe(0);
    const log = gw.output();
    expect(log.length).toBeGreaterThan(1_000);
    expect(log).not.toContain(SECRET);
    const scan = await filesContaining(gw.dataDir, SECRET);
    // Positive control: the same scan does find plaintext that is stored as such.
    const control = await filesContaining(gw.dataDir, "pg-secret");
    figures.dataDirFilesScanned = scan.scanned;
    figures.dataDirBytesScanned = scan.bytes;
    figures.dataDirFilesWithConnectionName = control.hits.length;
    expect(scan.scanned).toBeGreaterThan(10);
    expect(control.hits.some((h) => h.includes("/store/"))).toBe(true);
    expect(scan.hits).toEqual([]);
  });
});
