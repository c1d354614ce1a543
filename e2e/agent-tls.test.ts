// The agent trusts the gateway only through the CA it was given (file or pin)
// and checks the certificate's name; anything else never gets a link.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { killAll, startCli, startGateway, tempDir, type GatewayProc } from "./harness/processes.js";

let gw: GatewayProc;
let other: GatewayProc;

beforeAll(async () => {
  [gw, other] = await Promise.all([startGateway(), startGateway()]);
});
afterAll(killAll);

async function enroll(name: string): Promise<string> {
  const r = await gw.api<{ enrollmentToken: string }>("POST", "/api/v1/agents", { name });
  return r.body.enrollmentToken;
}

it("refuses a gateway whose CA does not match the pin, without sending the token", async () => {
  const token = await enroll("pinned");
  const wrongPin = `sha256:${"ab".repeat(32)}`;
  const p = startCli(["agent", "--gateway", gw.agentAddress, "--token", token, "--data-dir", await tempDir(), "--ca-pin", wrongPin]);
  const { code } = await p.exited;
  expect(code).not.toBe(0);
  expect(p.output()).toMatch(/no certificate presented by .* matches --ca-pin/);
  // The token was never used, so a correctly pinned agent can still enroll with it.
  const r = await gw.api<{ status: string }>("GET", "/api/v1/agents/pinned");
  expect(r.body.status).toBe("pending");
});

it("does not link to a gateway signed by another CA", async () => {
  const token = await enroll("wrong-ca");
  const p = startCli(["agent", "--gateway", gw.agentAddress, "--token", token, "--data-dir", await tempDir(), "--ca-file", other.caFile]);
  await p.waitFor(/gateway link down; reconnecting/);
  expect(p.output()).not.toMatch(/connected to gateway/);
  expect(p.output()).toMatch(/certificate|self.signed|unable to verify|handshake/i);
  expect((await gw.api<{ status: string }>("GET", "/api/v1/agents/wrong-ca")).body.status).toBe("pending");
  await p.kill();
});

it("checks the certificate name", async () => {
  const token = await enroll("wrong-name");
  const caCopy = join(await tempDir(), "ca.pem");
  await writeFile(caCopy, await (await fetch(`${gw.apiUrl}/api/v1/ca`)).text());
  const p = startCli(["agent", "--gateway", gw.agentAddress, "--token", token, "--data-dir", await tempDir(), "--ca-file", caCopy, "--tls-server-name", "not-the-gateway.example"]);
  await p.waitFor(/gateway link down; reconnecting/);
  expect(p.output()).not.toMatch(/connected to gateway/);
  await p.kill();
  const ok = startCli(["agent", "--gateway", gw.agentAddress, "--token", token, "--data-dir", await tempDir(), "--ca-file", caCopy, "--tls-server-name", "localhost"]);
  await ok.waitFor(/connected to gateway/);
  await ok.kill();
});
