// Agent lifecycle, whole system: real gateway, agent and `airlock connect`
// processes from the built CLI, a real PostgreSQL (127.0.0.1:5432) and TCP
// targets written here. Agents are killed, revoked, duplicated, grouped and
// outlive a gateway restart; every step is checked from the client's side, in
// the session records and in the agent list.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freePort, killAll, psql, restartAgent, startAgent, startConnect, startGateway, tempDir, type GatewayProc } from "./harness/processes.js";
import {
  echoOnce,
  echoServer,
  getAgent,
  listSessions,
  openEcho,
  readSource,
  runCli,
  sleep,
  sourceServer,
  startGatewayAt,
  streamingPsql,
  waitAgentStatus,
  waitSessionEnded,
  assertAlive,
  type AgentView,
  type TestServer,
} from "./harness/lifecycle-helpers.js";

let gw: GatewayProc;
let echo: TestServer;
let source: TestServer;
/** Figures measured along the way, printed at the end for the report. */
const figures: Record<string, number | string> = {};

const count = (s: string, re: RegExp) => (s.match(new RegExp(re.source, "g")) ?? []).length;

async function connection(name: string, target: { port: number; host?: string }, via: { agent?: string; agentGroup?: string }, g = gw) {
  const r = await g.api("POST", "/api/v1/connections", { name, type: "tcp", host: target.host ?? "127.0.0.1", port: target.port, ...via });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

beforeAll(async () => {
  [gw, echo, source] = await Promise.all([startGateway(), echoServer(), sourceServer()]);
});

afterAll(async () => {
  await killAll();
  await Promise.all([echo?.close(), source?.close()]);
  console.log("agent-lifecycle figures:", JSON.stringify(figures, null, 2));
});

describe("agent lifecycle through real processes", () => {
  it("SIGKILL of the agent mid-transfer: the client errors fast, the session fails with LINK_LOST, the agent shows offline, and a restart from the saved key serves again without restarting the gateway", async () => {
    const agent = await startAgent(gw, "site-a");
    await agent.waitFor(/connected to gateway/);
    await connection("pg", { port: 5432 }, { agent: "site-a" });
    const gwPid = gw.child.pid;
    const c = await startConnect(gw, "pg");

    const q = streamingPsql(c.port, "select repeat('x', 1000) from generate_series(1, 5000000)");
    await eventually(async () => q.bytes() > 8 * 1024 * 1024, 30_000, "psql pulling rows through the tunnel");
    const before = q.bytes();
    const killedAt = Date.now();
    await agent.kill("SIGKILL");
    const end = await Promise.race([q.exited, sleep(20_000).then(() => ({ code: -1, at: Date.now() }))]);
    const toError = end.at - killedAt;
    figures.psqlErrorAfterAgentKillMs = toError;
    figures.psqlBytesBeforeKill = before;
    await sleep(200);
    const closedLine = /"agent":"site-a"[^\n]*?"code":"(\w+)","err":"([^"]*)","msg":"agent link closed"/.exec(gw.output());
    figures.gatewaySawLinkClose = closedLine ? `${closedLine[1]}: ${closedLine[2]}` : "(not yet)";
    expect(end.code, `psql still running ${toError} ms after the agent was killed`).not.toBe(-1);
    expect(end.code).not.toBe(0);
    expect(q.stderr()).toMatch(/server closed the connection unexpectedly|connection to server was lost|no connection to the server/i);
    expect(toError).toBeLessThan(10_000);
    // The CLI says why on its stderr.
    await c.waitFor(/ended with LINK_(LOST|TIMEOUT)/, 5_000);

    const s = await waitSessionEnded(gw, (x) => x.connectionName === "pg" && x.outcome !== "active");
    figures.killedSessionRecord = `${s.errorCode}: ${s.error}`;
    // LINK_LOST when the gateway sees the dead TCP peer (the norm, tens of ms);
    // LINK_TIMEOUT if only the keepalive caught it (seen once in ~15 runs, at 6 s).
    expect(s).toMatchObject({ outcome: "failed", errorCode: expect.stringMatching(/^LINK_(LOST|TIMEOUT)$/), agent: "site-a" });
    expect(s.bytesDown).toBeGreaterThan(before / 2);

    const off = await waitAgentStatus(gw, "site-a", "offline");
    expect(off.streams).toBe(0);
    expect(Date.now() - new Date(off.lastSeenAt!).getTime()).toBeLessThan(30_000);

    // Restart from the saved key only (no token), same gateway process.
    const again = restartAgent(gw, agent.dataDir);
    const restartedAt = Date.now();
    await again.waitFor(/connected to gateway/);
    figures.agentRestartToConnectedMs = Date.now() - restartedAt;
    expect(again.output()).not.toMatch(/enrolled/);
    await waitAgentStatus(gw, "site-a", "online");
    const r = await psql(`postgresql://postgres@127.0.0.1:${c.port}/postgres`, ["-At", "-c", "select count(*) from generate_series(1, 100000)"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("100000");
    expect(gw.child.pid).toBe(gwPid);
    expect(gw.child.exitCode).toBeNull();
    expect(count(gw.output(), /gateway ready/)).toBe(1);
    const ok = await waitSessionEnded(gw, (x) => x.connectionName === "pg" && x.outcome === "ok");
    expect(ok.agent).toBe("site-a");
    await c.kill();
  });

  it("revoking an agent cuts its link at once: the open stream fails promptly, the agent exits non-zero saying it was revoked and does not retry", async () => {
    const agent = await startAgent(gw, "rev-a");
    await agent.waitFor(/connected to gateway/);
    await connection("src-rev", source, { agent: "rev-a" });
    const c = await startConnect(gw, "src-rev");
    const reader = readSource(c.port);
    await eventually(async () => reader.received() > 4 * 1024 * 1024, 20_000, "bytes flowing from the source");

    const revokedAt = Date.now();
    const r = await gw.api<AgentView>("POST", "/api/v1/agents/rev-a/revoke");
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("revoked");
    const closed = await Promise.race([reader.closed, sleep(10_000).then(() => null)]);
    expect(closed, "the stream through the revoked agent is still open").not.toBeNull();
    figures.streamCutAfterAgentRevokeMs = closed!.at - revokedAt;
    expect(closed!.at - revokedAt).toBeLessThan(3_000);
    expect(reader.intact()).toBe(true);

    const exit = await Promise.race([agent.exited, sleep(10_000).then(() => null)]);
    expect(exit, "the revoked agent is still running").not.toBeNull();
    figures.agentExitAfterRevokeMs = Date.now() - revokedAt;
    expect(exit!.code).not.toBe(0);
    expect(exit!.code).not.toBeNull();
    const out = agent.output();
    expect(out).toMatch(/AGENT_REVOKED/);
    expect(out).toMatch(/agent rev-a was revoked/);
    expect(out).toMatch(/not retrying/);
    expect(out).not.toMatch(/reconnecting/);

    expect((await getAgent(gw, "rev-a")).status).toBe("revoked");
    const s = await waitSessionEnded(gw, (x) => x.connectionName === "src-rev");
    expect(s).toMatchObject({ outcome: "failed", errorCode: "AGENT_REVOKED", agent: "rev-a" });
    // The revoked agent's key no longer opens a link either.
    const retry = restartAgent(gw, agent.dataDir);
    const re = await Promise.race([retry.exited, sleep(15_000).then(() => null)]);
    expect(re?.code).toBe(2);
    expect(retry.output()).toMatch(/AGENT_REVOKED/);
    expect(retry.output()).not.toMatch(/connected to gateway/);
    await c.kill();
  });

  it("reusing an enrollment token: the second agent exits non-zero with ENROLLMENT_TOKEN_USED while the first keeps serving", async () => {
    const first = await startAgent(gw, "dup-a");
    await first.waitFor(/connected to gateway/);
    await connection("echo-dup", echo, { agent: "dup-a" });
    const c = await startConnect(gw, "echo-dup");
    const live = await openEcho(c.port);
    expect(await live.roundTrip(512 * 1024)).toBe(true);

    const second = await startAgent(gw, "dup-a", { token: first.token });
    let trips = 0;
    let failed = 0;
    let secondExit: { code: number | null } | null = null;
    void second.exited.then((e) => (secondExit = e));
    const deadline = Date.now() + 20_000;
    while (!secondExit && Date.now() < deadline) (await live.roundTrip(256 * 1024)) ? trips++ : failed++;
    expect(secondExit, "the second agent with a used token is still running").not.toBeNull();
    expect(secondExit!.code).not.toBe(0);
    expect(secondExit!.code).not.toBeNull();
    expect(second.output()).toMatch(/ENROLLMENT_TOKEN_USED/);
    expect(second.output()).toMatch(/already used/);
    expect(second.output()).not.toMatch(/connected to gateway|enrolled/);
    // Meanwhile, and afterwards, the first agent's stream flowed.
    for (let i = 0; i < 4; i++) (await live.roundTrip(256 * 1024)) ? trips++ : failed++;
    expect(failed).toBe(0);
    expect(trips).toBeGreaterThanOrEqual(4);
    expect(first.output()).not.toMatch(/link down/);
    expect((await getAgent(gw, "dup-a")).status).toBe("online");
    expect(await echoOnce(c.port)).toBe(true);
    live.end();
    await c.kill();
  });

  it("an agent group spreads streams over both agents, and new connections go to the survivor when one dies", async () => {
    const [a, b] = await Promise.all([startAgent(gw, "edge-1", { group: "edge" }), startAgent(gw, "edge-2", { group: "edge" })]);
    await Promise.all([a.waitFor(/connected to gateway/), b.waitFor(/connected to gateway/)]);
    await connection("echo-edge", echo, { agentGroup: "edge" });
    const c = await startConnect(gw, "echo-edge");

    // Held open one after another: the gateway picks the agent with fewer streams.
    const held = [];
    for (let i = 0; i < 4; i++) {
      const e = await openEcho(c.port);
      expect(await e.roundTrip(64 * 1024)).toBe(true);
      held.push(e);
    }
    const active = (await listSessions(gw, "connection=echo-edge")).filter((s) => s.outcome === "active");
    expect(active).toHaveLength(4);
    const perAgent = (xs: Array<{ agent: string | null }>) => xs.reduce<Record<string, number>>((m, s) => ((m[s.agent ?? "-"] = (m[s.agent ?? "-"] ?? 0) + 1), m), {});
    figures.groupSpreadWhileBothUp = JSON.stringify(perAgent(active));
    expect(perAgent(active)).toEqual({ "edge-1": 2, "edge-2": 2 });

    await a.kill("SIGKILL");
    await waitAgentStatus(gw, "edge-1", "offline");
    // Streams on the survivor keep flowing; those on the dead agent were cut.
    const byId = new Map(active.map((s) => [s.id, s.agent]));
    const results = await Promise.all(held.map((e) => e.roundTrip(64 * 1024, 5_000)));
    expect(results.filter(Boolean)).toHaveLength(2);
    const ended = await eventually(async () => {
      const xs = (await listSessions(gw, "connection=echo-edge")).filter((s) => byId.has(s.id) && s.endedAt);
      return xs.length === 2 ? xs : undefined;
    }, 10_000, "the dead agent's sessions to end");
    expect(ended.every((s) => s.agent === "edge-1" && s.outcome === "failed" && s.errorCode === "LINK_LOST")).toBe(true);

    for (let i = 0; i < 3; i++) expect(await echoOnce(c.port)).toBe(true);
    const newer = (await listSessions(gw, "connection=echo-edge")).filter((s) => !byId.has(s.id));
    expect(newer).toHaveLength(3);
    expect(newer.every((s) => s.agent === "edge-2")).toBe(true);
    for (const e of held) e.end();
    await c.kill();
  });

  it("`airlock agents list` shows online, offline, pending and revoked agents with last seen", async () => {
    const on = await startAgent(gw, "lst-on");
    const off = await startAgent(gw, "lst-off");
    await Promise.all([on.waitFor(/connected to gateway/), off.waitFor(/connected to gateway/)]);
    expect((await gw.api("POST", "/api/v1/agents", { name: "lst-pending" })).status).toBe(201);
    await off.kill("SIGKILL");
    await waitAgentStatus(gw, "lst-off", "offline");
    await sleep(2_000); // so "last seen" is visibly in the past

    const res = await runCli(["--gateway", gw.apiUrl, "--token", gw.adminToken, "agents", "list"]);
    expect(res.code, res.output).toBe(0);
    const lines = res.output.trim().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+GROUP\s+STATUS\s+VERSION\s+HOSTNAME\s+LASTSEEN\s+STREAMS$/);
    const row = (name: string) => {
      const l = lines.find((x) => x.startsWith(`${name} `));
      expect(l, `no row for ${name} in:\n${res.output}`).toBeDefined();
      return l!.split(/\s+/);
    };
    // name group status version hostname lastSeen streams
    expect(row("lst-on")).toEqual(["lst-on", "-", "online", expect.stringMatching(/^\d+\.\d+/), expect.any(String), "now", "0"]);
    const offRow = row("lst-off");
    expect(offRow[2]).toBe("offline");
    expect(offRow[5]).toMatch(/^\d+s$/);
    expect(Number(offRow[5]!.slice(0, -1))).toBeGreaterThanOrEqual(1);
    expect(lines.find((x) => x.startsWith("lst-off "))).toMatch(/\d+s ago/);
    expect(row("lst-pending")).toEqual(["lst-pending", "-", "pending", "-", "-", "never", "0"]);
    expect(row("rev-a")[2]).toBe("revoked");
    expect(row("edge-2")).toEqual(expect.arrayContaining(["edge-2", "edge", "online", "now"]));

    const json = await runCli(["--gateway", gw.apiUrl, "--token", gw.adminToken, "--json", "agents", "list"]);
    expect(json.code).toBe(0);
    const agents = (JSON.parse(json.output) as { agents: AgentView[] }).agents;
    const offJ = agents.find((x) => x.name === "lst-off")!;
    expect(offJ.status).toBe("offline");
    const age = Date.now() - new Date(offJ.lastSeenAt!).getTime();
    expect(age).toBeGreaterThan(1_000);
    expect(age).toBeLessThan(60_000);
    expect(agents.find((x) => x.name === "lst-pending")).toMatchObject({ status: "pending", lastSeenAt: null });
  });
});

describe("gateway restart", () => {
  it("agents reconnect by themselves after the gateway restarts on the same data dir and ports (graceful stop, then SIGKILL)", async () => {
    const dataDir = await tempDir("airlock-gw-restart-");
    const ports = { apiPort: await freePort(), agentPort: await freePort() };
    let g = await startGatewayAt({ dataDir, ...ports });
    const agent = await startAgent(g, "phoenix");
    await agent.waitFor(/connected to gateway/);
    await connection("echo-ph", echo, { agent: "phoenix" }, g);
    // One `airlock connect` for the whole test: it opens a WebSocket per client connection.
    const c = await startConnect(g, "echo-ph");
    expect(await echoOnce(c.port)).toBe(true);

    for (const [round, signal] of [[1, "SIGTERM"], [2, "SIGKILL"]] as const) {
      const live = await openEcho(c.port);
      expect(await live.roundTrip(128 * 1024)).toBe(true);
      const liveSession = (await listSessions(g, "connection=echo-ph")).find((s) => s.outcome === "active")!;
      expect(liveSession).toBeDefined();

      const stoppedAt = Date.now();
      await g.kill(signal);
      const exit = await g.exited;
      if (signal === "SIGTERM") expect(exit.code).toBe(0);
      expect((await Promise.race([live.closed, sleep(10_000).then(() => null)])) !== null).toBe(true);
      await agent.waitFor(new RegExp(`(reconnecting[\\s\\S]*){${round}}`), 10_000);
      await sleep(1_500); // the agent retries against a dead port for a while

      g = await startGatewayAt({ dataDir, ...ports });
      const upAt = Date.now();
      await eventually(async () => count(agent.output(), /connected to gateway/) === round + 1, 40_000, `agent reconnect #${round}`);
      figures[`agentReconnectAfterGatewayUp_${signal}_ms`] = Date.now() - upAt;
      figures[`agentReconnectAfterGatewayStop_${signal}_ms`] = Date.now() - stoppedAt;
      expect(agent.child.exitCode).toBeNull();
      expect((await getAgent(g, "phoenix")).status).toBe("online");
      expect(await echoOnce(c.port)).toBe(true);

      // The session open across the restart is closed in the record, not left active.
      const was = await eventually(async () => (await listSessions(g, "connection=echo-ph")).find((s) => s.id === liveSession.id && s.endedAt), 10_000, "the cut session's record");
      figures[`cutSessionRecord_${signal}`] = `${was.errorCode}: ${was.error}`;
      expect(was.outcome).toBe("failed");
      if (signal === "SIGKILL") expect(was.errorCode).toBe("LINK_LOST");
      else expect(was.errorCode).toBeTruthy();
    }
    const out = agent.output();
    expect(out).not.toMatch(/not retrying/);
    expect(count(out, /enrolled; agent key saved/)).toBe(1);
    expect(count(out, /connected to gateway/)).toBe(3);
    await c.kill();
  });

  it("`airlock connect` outlives a gateway outage: a client arriving while the gateway is down gets an error, and the same process serves again once it is back", async () => {
    const dataDir = await tempDir("airlock-gw-outage-");
    const ports = { apiPort: await freePort(), agentPort: await freePort() };
    let g = await startGatewayAt({ dataDir, ...ports });
    const agent = await startAgent(g, "outage");
    await agent.waitFor(/connected to gateway/);
    await connection("echo-out", echo, { agent: "outage" }, g);
    const c = await startConnect(g, "echo-out");
    expect(await echoOnce(c.port)).toBe(true);

    await g.kill("SIGTERM");
    const early = await openEcho(c.port);
    const cut = await Promise.race([early.closed, sleep(10_000).then(() => null)]);
    expect(cut, "a client connecting while the gateway is down is left hanging").not.toBeNull();
    await c.waitFor(/connection to echo-out failed: LINK_LOST: cannot reach the gateway/, 5_000);
    await assertAlive(c, "airlock connect");

    g = await startGatewayAt({ dataDir, ...ports });
    await eventually(async () => count(agent.output(), /connected to gateway/) === 2, 40_000, "agent reconnect");
    expect(await echoOnce(c.port)).toBe(true);
    await c.kill();
  });
});
