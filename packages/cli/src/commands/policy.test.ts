// `airlock policy validate|test` as a real process (the built CLI, so run
// `pnpm build` first) on the demo and example bundles and a broken one.
// apply/list/show need the gateway's routes: see gateway/src/api/routes-policies.test.ts.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_POLICY_DIR } from "./policy.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const CLI = join(root, "packages/cli/dist/main.js");
const EXAMPLES = join(root, "policies/examples");
const dirs: string[] = [];

interface Run { code: number; stdout: string; stderr: string }
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const childEnv = { ...process.env, AIRLOCK_URL: "", AIRLOCK_TOKEN: "", AIRLOCK_CONFIG_DIR: "/nonexistent-airlock-config", ...env };
    execFile(process.execPath, [CLI, ...args], { env: childEnv, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function bundleDir(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-cli-policy-"));
  dirs.push(d);
  for (const [n, t] of Object.entries(files)) await writeFile(join(d, n), t);
  return d;
}

const permitAll = `@id("all") permit(principal, action, resource);\n`;
let broken: string;

beforeAll(async () => {
  broken = await bundleDir({
    "good.cedar": permitAll,
    "bad.cedar": `// c\n\npermit(principal, action, resource)\nwhen { 1 + };`,
    "masking.json": `{"detectors": {"emial": false}}`,
    "notes.txt": "not part of the bundle",
  });
});
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

describe("airlock policy validate", () => {
  it("accepts the demo bundle and lists the files it ignores", async () => {
    expect(DEMO_POLICY_DIR).toBe(join(root, "packages/cli/policies/demo/"));
    const r = await cli(["policy", "validate", DEMO_POLICY_DIR]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^OK: \d+ policies in 6 files \(access\.cedar, agents\.cedar, demo\.tests\.json, guardrails\.cedar, masking\.json, reviews\.cedar\)\n/);
    expect(r.stdout).toContain("ignored (not bundle files): README.md\n");
  });

  it("accepts the examples", async () => {
    const r = await cli(["policy", "validate", EXAMPLES]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK: 11 policies in 4 files/);
  });

  it("prints file:line:column errors and exits 1 for a broken bundle", async () => {
    const r = await cli(["policy", "validate", broken]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(/^masking\.json:1:16: detectors\.emial: unknown detector "emial"/),
      expect.stringMatching(/^bad\.cedar:4:12: .*unexpected token/),
      "ignored (not bundle files): notes.txt",
      "invalid: 2 error(s)",
    ]);
    const json = await cli(["policy", "validate", broken, "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, ignored: ["notes.txt"], errors: [{ file: "masking.json", line: 1 }, { file: "bad.cedar", line: 4, column: 12 }] });
  });

  it("reports a missing directory", async () => {
    const r = await cli(["policy", "validate", join(broken, "nope")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^airlock: cannot read policy bundle .*nope/);
  });
});

describe("airlock policy test", () => {
  it("passes every case of the demo and example bundles", async () => {
    for (const dir of [DEMO_POLICY_DIR, EXAMPLES]) {
      const r = await cli(["policy", "test", dir]);
      expect(r.stdout).not.toContain("FAIL");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\n\d+ passed, 0 failed\n$/);
    }
    const demo = await cli(["policy", "test", DEMO_POLICY_DIR]);
    expect(demo.stdout).toContain("PASS  demo.tests.json  DDL is denied on demo-pg  -> deny [demo-no-ddl]\n");
    expect(demo.stdout).toContain(`PASS  demo.tests.json  email column keeps the domain  -> "****@example.com"\n`);
  });

  it("shows failures with the reason and exits 1", async () => {
    const d = await bundleDir({
      "p.cedar": permitAll,
      "t.tests.json": JSON.stringify([
        { name: "ok", request: { principal: { type: "User", id: "a" }, action: "connect", resource: { connection: "c" } }, expect: "allow" },
        { name: "wrong", request: { principal: { type: "User", id: "a" }, action: "connect", resource: { connection: "c" } }, expect: "deny" },
      ]),
    });
    const r = await cli(["policy", "test", d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("PASS  t.tests.json  ok  -> allow [all]\nFAIL  t.tests.json  wrong  -> allow [all]\n      expected deny, got allow (all)\n1 passed, 1 failed\n");
    const b = await cli(["policy", "test", broken]);
    expect(b.code).toBe(1);
    expect(b.stdout).toMatch(/bundle does not compile: no test was run\n$/);
  });
});

describe("airlock policy apply", () => {
  it("refuses a broken bundle before contacting the gateway", async () => {
    const r = await cli(["policy", "apply", broken], { AIRLOCK_URL: "http://127.0.0.1:9", AIRLOCK_TOKEN: "x" });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^masking\.json:1:16: [^\n]*\nbad\.cedar:4:12: [^\n]*\ninvalid: 2 error\(s\); nothing applied\n$/);
  });
});
