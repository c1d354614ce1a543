// Recovery: an operator with the gateway's configuration but no valid token
// mints an admin token straight in the store.
import { spawnSync } from "node:child_process";
import { afterAll, expect, it } from "vitest";
import { CLI, killAll, startGateway } from "./harness/processes.js";

afterAll(killAll);

function mint(dataDir: string) {
  return spawnSync(process.execPath, [CLI, "gateway", "admin-token", "--data-dir", dataDir, "--user", "ops", "--ttl", "15m"], { encoding: "utf8" });
}

it("mints a working admin token offline, and refuses while an embedded-store gateway runs", async () => {
  const gw = await startGateway();
  const busy = mint(gw.dataDir);
  expect(busy.status).not.toBe(0);
  expect(busy.stderr).toMatch(/in use|lock|another process/i);

  await gw.kill();
  const r = mint(gw.dataDir);
  expect(r.status).toBe(0);
  const token = r.stdout.trim();
  expect(token).toMatch(/^alk_at_[A-Za-z0-9_-]{43}$/);
  expect(r.stderr).toContain("admin token minted offline");

  const again = await startGateway({ dataDir: gw.dataDir });
  const who = await again.api<{ subject: string; roles: string[] }>("GET", "/api/v1/whoami", undefined, token);
  expect(who.status).toBe(200);
  expect(who.body).toMatchObject({ subject: "ops", roles: ["admin"] });
});
