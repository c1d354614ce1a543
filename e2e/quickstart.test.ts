// `airlock dev` as a newcomer runs it: one real process (gateway + embedded
// store + agent + demo Postgres), then `airlock connect demo-pg` and the real
// psql against it, `airlock sessions list`, signals, and a second start on
// the same data directory.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectVia, luhnValid, runCli } from "./harness/cli-helpers.js";
import { cleanup, eventually, killAll, psql, startCli, tempDir, type Proc } from "./harness/processes.js";

interface DevJson {
  apiUrl: string;
  adminToken: string;
  agentAddress: string;
  connections: string[];
  demoTarget: string;
  dataDir: string;
  devToken: string;
  reviewerToken: string;
  postgresUrl: string;
}
interface AgentState {
  gateway: string;
  agentId: string;
  agentName: string;
  agentKey: string;
}

let dir: string;
/** The latest `airlock dev` started, so a test that fails half-way still stops it. */
let lastDev: Proc | null = null;
const figures: Record<string, number> = {};

/** Starts `airlock dev` the way the README does (default log level) and waits for `ready`. */
async function startDev(args: string[], readyTimeoutMs = 60_000): Promise<{ dev: Proc; readyMs: number; readyLine: string }> {
  const started = Date.now();
  const dev = startCli(["dev", "--data-dir", dir, ...args], { AIRLOCK_LOG_LEVEL: undefined });
  lastDev = dev;
  // The first line that mentions "ready" must be the real one: with the default
  // log level nothing else may say so before the system is usable.
  const readyLine = await dev.waitFor(/^.*\bready\b.*$/m, readyTimeoutMs);
  return { dev, readyMs: Date.now() - started, readyLine };
}

const readDevJson = async () => JSON.parse(await readFile(join(dir, "dev.json"), "utf8")) as DevJson;
const readAgentState = async () => JSON.parse(await readFile(join(dir, "agent", "agent.json"), "utf8")) as AgentState;
const pgUrl = (port: number) => `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;

beforeAll(async () => {
  dir = await tempDir("airlock-dev-");
});

afterAll(async () => {
  await killAll();
  console.log(`airlock dev figures: ${JSON.stringify(figures)}`);
  await cleanup(dir);
});

describe("airlock dev: first start with --api-port 0 --agent-port 0", () => {
  let dev: Proc;
  let info: DevJson;
  let agentBefore: AgentState;

  it("prints ready and writes dev.json with a usable API URL, an admin token and demo-pg", async () => {
    const r = await startDev(["--api-port", "0", "--agent-port", "0", "--pg-port", "0"]);
    dev = r.dev;
    figures.firstReadyMs = r.readyMs;
    expect(r.readyLine.trim()).toBe("ready");
    expect(r.readyMs).toBeLessThan(30_000);

    info = await readDevJson();
    // Port 0 must be resolved to the real port, never printed as :0.
    expect(info.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(info.apiUrl).port)).toBeGreaterThan(0);
    expect(info.agentAddress).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    expect(info.adminToken).toMatch(/^alk_at_[A-Za-z0-9_-]{43}$/);
    expect(info.connections).toContain("demo-pg");
    expect(dev.output()).toContain(`API ${info.apiUrl}`);
    // dev.json holds an admin token: owner-only.
    expect((await stat(join(dir, "dev.json"))).mode & 0o777).toBe(0o600);

    const health = await fetch(`${info.apiUrl}/healthz`);
    expect(health.status).toBe(200);
    const who = await runCli(["whoami", "--json"], { AIRLOCK_URL: info.apiUrl, AIRLOCK_TOKEN: info.adminToken });
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ subject: "dev-admin", roles: ["admin"] });
    agentBefore = await readAgentState();
    expect(agentBefore.agentKey).toMatch(/^alk_ak_/);
  });

  it("the demo target holds 200 realistic fake customers; airlock connect demo-pg + psql serves them masked", async () => {
    const c = await connectVia(["connect", "demo-pg"], { AIRLOCK_URL: info.apiUrl, AIRLOCK_TOKEN: info.adminToken });
    const t0 = Date.now();
    const n = await psql(pgUrl(c.port), ["-At", "-c", "select count(*) from customers"]);
    figures.firstQueryMs = Date.now() - t0;
    expect(n.stderr).toBe("");
    expect(n.stdout.trim()).toBe("200");
    // Through Airlock (a postgres connection) personal data is masked even for the admin.
    const masked = await psql(pgUrl(c.port), ["-At", "-F", "|", "-c", "select email, card_number from customers order by id limit 20"]);
    expect(masked.stderr).toBe("");
    for (const [email, card] of masked.stdout.trim().split("\n").map((l) => l.split("|"))) {
      expect(email).toMatch(/^\*+@example\.com$/);
      expect(card).toMatch(/^\*+\d{4}$/);
    }

    // The data itself, read straight from the demo target (what Airlock protects).
    const rows = await psql(pgUrl(Number(info.demoTarget.split(":")[1])), ["-At", "-F", "|", "-c", "select id, full_name, email, phone, card_number from customers order by id"]);
    expect(rows.code).toBe(0);
    const people = rows.stdout.trim().split("\n").map((l) => l.split("|"));
    expect(people).toHaveLength(200);
    const emails = new Set<string>();
    for (const [id, name, email, phone, card] of people) {
      expect(Number(id)).toBeGreaterThan(0);
      expect(name).toMatch(/^[A-Z][a-z]+ [A-Z][A-Za-z-]+$/);
      expect(email).toMatch(/^[a-z0-9.-]+@example\.com$/);
      expect(phone).toMatch(/^\+1-555-\d{3}-\d{4}$/);
      expect(card).toMatch(/^\d{16}$/);
      expect(luhnValid(card!), `card ${card} of customer ${id} fails the Luhn check`).toBe(true);
      emails.add(email!);
    }
    expect(emails.size).toBe(200);
    // The Luhn check is not vacuous: a one-digit change breaks it.
    const card = people[0]![4]!;
    expect(luhnValid(card.slice(0, -1) + String((Number(card.at(-1)) + 1) % 10))).toBe(false);

    // A marker row, to find again after a restart.
    const ins = await psql(pgUrl(c.port), ["-At", "-c", "insert into customers values (1000, 'Marker Row', 'marker@example.com', '+1-555-000-0000', '4000000000000002', 'Lisbon', '2024-01-01') returning id"]);
    expect(ins.stderr).toBe("");
    expect(ins.stdout.trim().split("\n")[0]).toBe("1000");
    await c.kill();
  });

  it("dev.json's postgresUrl: psql through the front door sees masked data, and DDL / unfiltered DELETE are denied", async () => {
    expect(info.postgresUrl).toMatch(/^postgresql:\/\/dev:alk_at_[A-Za-z0-9_-]{43}@127\.0\.0\.1:\d+\/demo-pg\?sslmode=require$/);
    const ok = await psql(info.postgresUrl, ["-At", "-F", "|", "-c", "select email, phone from customers order by id limit 3"]);
    expect(ok.stderr).toBe("");
    for (const [email, phone] of ok.stdout.trim().split("\n").map((l) => l.split("|"))) {
      expect(email).toMatch(/^\*+@example\.com$/);
      expect(phone).toMatch(/^\*+\d{4}$/);
    }
    const del = await psql(info.postgresUrl, ["-c", "delete from customers"]);
    expect(del.stderr).toMatch(/ERROR: +airlock: statement denied by policy/);
    const drop = await psql(info.postgresUrl, ["-c", "DrOp /* sneaky */ TABLE customers"]);
    expect(drop.stderr).toMatch(/ERROR: +airlock: statement denied by policy/);
    const still = await psql(info.postgresUrl, ["-At", "-c", "select count(*) from customers"]);
    expect(still.stdout.trim()).toBe("201");
  });

  it("the review loop from two shells: a DELETE with a WHERE waits until dev.json's reviewer approves it", async () => {
    const held = psql(info.postgresUrl, ["-c", "delete from customers where id = 999999"]);
    const reviewer = { AIRLOCK_URL: info.apiUrl, AIRLOCK_TOKEN: info.reviewerToken };
    const id = await eventually(
      async () => /([0-9a-f-]{36})\s+pending\s+dev\s+demo-pg/.exec((await runCli(["reviews", "list"], reviewer)).stdout)?.[1] ?? null,
      15_000,
      "the held DELETE in `airlock reviews list`",
    );
    // The requester cannot approve their own statement.
    const self = await runCli(["reviews", "approve", id], { AIRLOCK_URL: info.apiUrl, AIRLOCK_TOKEN: info.devToken });
    expect(self.code).not.toBe(0);
    const ok = await runCli(["reviews", "approve", id, "--reason", "quickstart"], reviewer);
    expect(ok.stdout).toMatch(/Approved/);
    const r = await held;
    expect(r.stdout).toMatch(/DELETE 0/);
    expect(r.stderr).toMatch(/held for review/);
  });

  it("the psql sessions show in `airlock sessions list` with bytes and outcome ok", async () => {
    const env = { AIRLOCK_URL: info.apiUrl, AIRLOCK_TOKEN: info.adminToken };
    const rows = await eventually(
      async () => {
        const r = await runCli(["sessions", "list"], env);
        const lines = r.stdout.split("\n").filter((l) => /\bdemo-pg\b/.test(l) && /\bok\b/.test(l));
        return lines.length >= 3 ? lines : null;
      },
      15_000,
      "three finished demo-pg sessions in `airlock sessions list`",
    );
    for (const l of rows) {
      expect(l).toMatch(/^[0-9a-f-]{36}\s+dev(-admin)?\s+demo-pg\s+dev-agent\s+.*\bok\s+[1-9]\d*\s+[1-9]\d*$/);
    }
  });

  it("SIGTERM stops it: prints stopped and exits 0 within a few seconds", async () => {
    const t0 = Date.now();
    dev.child.kill("SIGTERM");
    const exit = await Promise.race([dev.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))]);
    figures.sigtermStopMs = Date.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(figures.sigtermStopMs).toBeLessThan(5_000);
    expect(dev.output()).toMatch(/^stopped$/m);
    // Everything it listened on is closed.
    await expect(fetch(`${info.apiUrl}/healthz`)).rejects.toThrow();
  });

  it("starts again on the same data dir, still with --agent-port 0, reusing the agent key", async () => {
    // With --agent-port 0 the agent port differs on every start. The saved agent
    // key must still be used (or the agent re-enrolled) and the process must come up.
    try {
      const r = await startDev(["--api-port", "0", "--agent-port", "0", "--pg-port", "0"], 25_000);
      figures.secondReadyPort0Ms = r.readyMs;
      const again = await readDevJson();
      expect(again.connections).toContain("demo-pg");
      expect((await readAgentState()).agentKey).toBe(agentBefore.agentKey);
      r.dev.child.kill("SIGINT");
      expect(await r.dev.exited, r.dev.output()).toEqual({ code: 0, signal: null });
    } finally {
      // If it hung, it still holds the embedded store: stop it before the next start.
      await lastDev?.kill();
    }
  }, 40_000);

  it("starts again on the same data dir (same agent port): agent key reused, demo-pg, data and sessions persisted; SIGINT stops it", async () => {
    const agentPort = info.agentAddress.split(":").pop()!;
    const r = await startDev(["--api-port", "0", "--agent-port", agentPort, "--pg-port", "0"]);
    figures.restartReadyMs = r.readyMs;
    const second = await readDevJson();
    expect(second.connections).toContain("demo-pg");
    const env = { AIRLOCK_URL: second.apiUrl, AIRLOCK_TOKEN: second.adminToken };

    // Same agent identity and key: no re-enrollment happened.
    const agentAfter = await readAgentState();
    expect(agentAfter.agentId).toBe(agentBefore.agentId);
    expect(agentAfter.agentKey).toBe(agentBefore.agentKey);
    const agents = JSON.parse((await runCli(["agents", "list", "--json"], env)).stdout) as { agents: Array<{ id: string; name: string; status: string }> };
    expect(agents.agents).toEqual([expect.objectContaining({ id: agentBefore.agentId, name: "dev-agent", status: "online" })]);

    // The token minted by the first run still works (store persisted).
    const oldToken = await runCli(["whoami"], { AIRLOCK_URL: second.apiUrl, AIRLOCK_TOKEN: info.adminToken });
    expect(oldToken.code).toBe(0);
    const conns = JSON.parse((await runCli(["connections", "list", "--json"], env)).stdout) as { connections: Array<{ name: string; agent: string }> };
    expect(conns.connections.map((c) => c.name)).toEqual(["demo-pg"]);

    // Sessions of the first run are still recorded.
    const sessions = await runCli(["sessions", "list", "--connection", "demo-pg", "--json"], env);
    const list = (JSON.parse(sessions.stdout) as { sessions: Array<{ outcome: string }> }).sessions;
    expect(list.filter((s) => s.outcome === "ok").length).toBeGreaterThanOrEqual(3);

    // The demo database kept its rows, including the one written through the tunnel.
    const c = await connectVia(["connect", "demo-pg"], env);
    const q = await psql(pgUrl(c.port), ["-At", "-c", "select count(*) from customers", "-c", "select full_name from customers where id = 1000"]);
    expect(q.stderr).toBe("");
    expect(q.stdout.split("\n")).toEqual(["201", "Marker Row", ""]);
    await c.kill();

    const t0 = Date.now();
    r.dev.child.kill("SIGINT");
    expect(await r.dev.exited).toEqual({ code: 0, signal: null });
    figures.sigintStopMs = Date.now() - t0;
    expect(figures.sigintStopMs).toBeLessThan(5_000);
    expect(r.dev.output()).toMatch(/^stopped$/m);
  });
});
