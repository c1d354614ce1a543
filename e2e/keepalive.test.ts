// A link that goes silent (agent process frozen with SIGSTOP: its TCP socket
// stays open, so only keepalives can notice) is declared dead within seconds,
// its streams fail with LINK_TIMEOUT, and the agent recovers on SIGCONT.
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually, killAll, startAgent, startConnect, startGateway, type GatewayProc, type Proc } from "./harness/processes.js";

let gw: GatewayProc;
let agent: Proc;
let echo: net.Server;

beforeAll(async () => {
  echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  gw = await startGateway();
  agent = await startAgent(gw, "frozen");
  await agent.waitFor(/connected to gateway/);
  await gw.api("POST", "/api/v1/connections", { name: "echo", type: "tcp", host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port, agent: "frozen" });
});

afterAll(async () => {
  agent?.child.kill("SIGCONT");
  await killAll();
  echo?.close();
});

type Session = { outcome: string; errorCode: string | null; endedAt: string | null };

it("detects a frozen agent within seconds and recovers when it resumes", async () => {
  const c = await startConnect(gw, "echo");
  const sock = net.connect(c.port, "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  sock.write("hello");
  await new Promise((r) => sock.once("data", r));

  const frozenAt = Date.now();
  agent.child.kill("SIGSTOP");
  const closed = new Promise<number>((r) => sock.once("close", () => r(Date.now() - frozenAt)));
  sock.on("error", () => {});
  const elapsed = await closed;
  // Keepalive: 1 s pings, dead after 5 s of silence (+ one check interval).
  expect(elapsed).toBeLessThan(8_000);
  expect(elapsed).toBeGreaterThan(4_000);
  const s = await eventually(async () => {
    const r = await gw.api<{ sessions: Session[] }>("GET", "/api/v1/sessions?connection=echo");
    return r.body.sessions.find((x) => x.endedAt);
  });
  expect(s).toMatchObject({ outcome: "failed", errorCode: "LINK_TIMEOUT" });

  agent.child.kill("SIGCONT");
  await eventually(async () => (await gw.api<{ status: string }>("GET", "/api/v1/agents/frozen")).body.status === "online", 20_000, "agent back online");
  const again = net.connect(c.port, "127.0.0.1");
  again.write("after");
  const got = await new Promise<string>((r) => again.once("data", (d) => r(d.toString())));
  expect(got).toBe("after");
  again.destroy();
  await c.kill();
}, 60_000);
