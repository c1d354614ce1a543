// psql → airlock connect → gateway → agent → the machine's real PostgreSQL
// (127.0.0.1:5432, trust auth), every hop a real process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, killAll, psql, startAgent, startConnect, startGateway, type GatewayProc } from "./harness/processes.js";

let gw: GatewayProc;

beforeAll(async () => {
  gw = await startGateway();
  const agent = await startAgent(gw, "site-a");
  await agent.waitFor(/connected to gateway/);
  const r = await gw.api("POST", "/api/v1/connections", { name: "pg", type: "tcp", host: "127.0.0.1", port: 5432, agent: "site-a", labels: { env: "test" } });
  expect(r.status).toBe(201);
});

afterAll(killAll);

type Session = { id: string; outcome: string; bytesUp: number; bytesDown: number; agent: string; subject: string; endedAt: string | null };

describe("psql through airlock connect to a real PostgreSQL", () => {
  it("runs queries and the session is recorded with bytes and outcome", async () => {
    const c = await startConnect(gw, "pg");
    const r = await psql(`postgresql://postgres@127.0.0.1:${c.port}/postgres`, ["-At", "-c", "select 40 + 2", "-c", "select count(*) from generate_series(1, 100000)"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")).toEqual(["42", "100000", ""]);
    const s = await eventually(async () => {
      const list = await gw.api<{ sessions: Session[] }>("GET", "/api/v1/sessions?connection=pg");
      return list.body.sessions.find((x) => x.endedAt);
    }, 10_000, "a finished session");
    expect(s).toMatchObject({ outcome: "ok", agent: "site-a", subject: "admin" });
    expect(s.bytesUp).toBeGreaterThan(50);
    expect(s.bytesDown).toBeGreaterThan(100);
    await c.kill();
  });
});
