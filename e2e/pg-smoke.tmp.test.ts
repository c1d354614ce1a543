import { afterAll, beforeAll, expect, it } from "vitest";
import { killAll, psql, startAgent, startGateway, type GatewayProc } from "./harness/processes.js";
let gw: GatewayProc;
let token = "";
beforeAll(async () => {
  gw = await startGateway({ env: { AIRLOCK_POLICY_DIR: "/tmp/pgpol" } });
  const agent = await startAgent(gw, "site-a");
  await agent.waitFor(/connected to gateway/);
  const r = await gw.api("POST", "/api/v1/connections", { name: "pg", type: "postgres", host: "127.0.0.1", port: 5432, agent: "site-a", database: "postgres", secrets: { username: "postgres" } });
  expect(r.status).toBe(201);
  const t = await gw.api<{ token: string }>("POST", "/api/v1/tokens", { subject: "alice", groups: ["developers"] });
  token = t.body.token;
});
afterAll(killAll);
it("smoke", async () => {
  const url = `postgresql://alice:${token}@127.0.0.1:${gw.pgPort}/pg?sslmode=require`;
  const r = await psql(url, ["-c", "select 1 as x, 'bob@example.com' as email, 'call 415-555-0100' as note", "-c", "select secret as s, id from airlock_smoke", "-c", "create table t(x int)"]);
  console.log(r.stdout, r.stderr);
  console.log(gw.output().slice(-3000));
});
