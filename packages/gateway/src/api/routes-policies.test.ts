// The policy routes in a real fastify app with the real auth plugin, access
// tokens and PolicyService on an embedded PGlite store: through inject, and
// through the built CLI (`airlock policy apply|list|show`; run `pnpm build` first).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import { PolicyService } from "../policy/service.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { installProblemHandler } from "./problem.js";
import { policyRoutes } from "./routes-policies.js";

const logger = pino({ level: "silent" });
const root = fileURLToPath(new URL("../../../../", import.meta.url));
const CLI = join(root, "packages/cli/dist/main.js");
const DEMO = join(root, "packages/cli/policies/demo");
const EXAMPLES = join(root, "policies/examples");
let dir: string;
let store: Store;
let policies: PolicyService;
let app: ReturnType<typeof Fastify>;
const tokens: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-policy-api-"));
  store = await openStore({ dataDir: dir, logger });
  policies = await PolicyService.start({ store, pollMs: 60_000, log: logger });
  const access = new AccessTokenService(store, { defaultTtlSeconds: 600, maxTtlSeconds: 3600 });
  for (const role of ["admin", "auditor", "user"] as const) tokens[role] = (await access.mint({ subject: `${role}-1`, roles: [role] })).token;
  // Same options as server.ts where they matter: body limit and no silent stripping.
  const a = Fastify({ logger: false, bodyLimit: 1024 * 1024, ajv: { customOptions: { removeAdditional: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, access, logger) });
  await a.register(async (v1) => v1.register(policyRoutes, { policies }), { prefix: "/api/v1" });
  // Listening too, for the CLI; inject works either way.
  await a.listen({ host: "127.0.0.1", port: 0 });
  app = a as unknown as ReturnType<typeof Fastify>;
});

afterAll(async () => {
  await app?.close();
  await policies?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

async function call(method: "GET" | "POST", url: string, role: Role, body?: unknown) {
  const r = await app.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${tokens[role]}` }, ...(body === undefined ? {} : { payload: body as object }) });
  return { status: r.statusCode, type: String(r.headers["content-type"]), body: r.json() as Record<string, unknown> };
}

const permitAll = `@id("all") permit(principal, action, resource);\n`;

describe("policy routes", () => {
  it("POST /policies stores version 1, then reports an identical bundle as unchanged", async () => {
    const r = await call("POST", "/policies", "admin", { files: { "p.cedar": permitAll } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ version: 1, digest: expect.stringMatching(/^[0-9a-f]{64}$/), changed: true });
    const again = await call("POST", "/policies", "admin", { files: { "p.cedar": permitAll } });
    expect(again.body).toEqual({ ...r.body, changed: false });
  });

  it("an invalid bundle is a 400 problem with POLICY_INVALID and the error list", async () => {
    const r = await call("POST", "/policies", "admin", { files: { "p.cedar": "permit(principal,", "masking.json": `{"detectors": {"x": true}}` } });
    expect(r.status).toBe(400);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ code: "POLICY_INVALID", status: 400, title: "POLICY_INVALID" });
    const errors = r.body.errors as Array<Record<string, unknown>>;
    expect(errors.map((e) => e.file).sort()).toEqual(["masking.json", "p.cedar"]);
    expect(errors.find((e) => e.file === "masking.json")).toEqual({ file: "masking.json", line: 1, column: 16, message: expect.stringMatching(/unknown detector "x"/) });
    expect(errors.find((e) => e.file === "p.cedar")).toMatchObject({ line: 1, column: expect.any(Number) });
  });

  it("POST /policies/validate answers without storing anything", async () => {
    const bad = await call("POST", "/policies/validate", "admin", { files: { "notes.md": "x" } });
    expect(bad.status).toBe(200);
    expect(bad.body).toMatchObject({ ok: false, policyIds: [] });
    expect((bad.body.errors as unknown[]).length).toBe(2); // not a bundle file; no policies
    const good = await call("POST", "/policies/validate", "admin", { files: { "p.cedar": `${permitAll}@id("x") forbid(principal, action, resource) when { false };` } });
    expect(good.body).toEqual({ ok: true, errors: [], policyIds: ["all", "x"] });
    expect(((await call("GET", "/policies", "admin")).body.versions as unknown[]).length).toBe(1);
  });

  it("accepts bundles above the API's default 1 MiB body limit", async () => {
    const comment = `// ${"x".repeat(700 * 1024)}\n`;
    const r = await call("POST", "/policies/validate", "admin", { files: { "a.cedar": comment + permitAll, "b.cedar": comment } });
    expect(r.body).toMatchObject({ ok: true, policyIds: ["all"] });
  });

  it("GET /policies lists versions and the active one for auditors", async () => {
    await call("POST", "/policies", "admin", { files: { "p.cedar": permitAll, "masking.json": "{}" } });
    const r = await call("GET", "/policies", "auditor");
    expect(r.status).toBe(200);
    expect(r.body.active).toMatchObject({ source: "store", version: 2, policies: 1, loadedAt: expect.any(String) });
    expect((r.body.versions as Array<Record<string, unknown>>).map((v) => [v.version, v.active, v.files, v.createdBy])).toEqual([
      [2, true, ["masking.json", "p.cedar"], "admin-1"],
      [1, false, ["p.cedar"], "admin-1"],
    ]);
  });

  it("GET /policies/:version returns the files; unknown and malformed versions fail", async () => {
    const r = await call("GET", "/policies/1", "auditor");
    expect(r.body).toMatchObject({ version: 1, active: false, files: { "p.cedar": permitAll }, createdAt: expect.any(String) });
    expect((await call("GET", "/policies/99", "admin")).body).toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect((await call("GET", "/policies/abc", "admin")).body).toMatchObject({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("only admins write; users cannot read; bodies are checked", async () => {
    expect((await call("POST", "/policies", "auditor", { files: { "p.cedar": permitAll } })).body).toMatchObject({ status: 403, code: "PERMISSION_DENIED" });
    expect((await call("POST", "/policies/validate", "user", { files: {} })).status).toBe(403);
    expect((await call("GET", "/policies", "user")).status).toBe(403);
    expect((await call("GET", "/policies/1", "user")).status).toBe(403);
    const notString = await call("POST", "/policies", "admin", { files: { "p.cedar": { text: permitAll } } });
    expect(notString.body).toMatchObject({ status: 400, code: "INVALID_ARGUMENT" });
    const extra = await call("POST", "/policies", "admin", { files: {}, force: true });
    expect(extra.body).toMatchObject({ status: 400, code: "INVALID_ARGUMENT", detail: expect.stringMatching(/force/) });
  });
});

describe("the CLI against these routes", () => {
  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const port = (app.server.address() as { port: number }).port;
    const env = { ...process.env, AIRLOCK_URL: `http://127.0.0.1:${port}`, AIRLOCK_TOKEN: tokens.admin!, AIRLOCK_CONFIG_DIR: "/nonexistent-airlock-config" };
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it("apply stores the demo bundle once, then reports it unchanged", async () => {
    const r = await cli(["policy", "apply", DEMO]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Applied policy version 3 \([0-9a-f]{12}\)\.\n$/);
    expect(r.stderr).toBe("ignored (not bundle files): README.md\n");
    expect(policies.current()).toMatchObject({ version: 3, source: "store" });
    const again = await cli(["policy", "apply", DEMO, "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ version: 3, changed: false });
  });

  it("list shows the versions and the active one; show prints files", async () => {
    expect((await cli(["policy", "apply", EXAMPLES])).code).toBe(0);
    const list = await cli(["policy", "list"]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Active: version 4 \([0-9a-f]{12}\), 11 policies, loaded \d+[smh] ago$/);
    expect(lines[1]).toMatch(/^VERSION\s+ACTIVE\s+DIGEST\s+CREATEDBY\s+CREATED\s+FILES$/);
    expect(lines[2]).toMatch(/^4\s+\*\s+[0-9a-f]{12}\s+admin-1\s+\d+[smh] ago\s+4$/);
    expect(lines[3]).toMatch(/^3\s+[0-9a-f]{12}\s+admin-1\s+\d+[smh] ago\s+6$/);

    const file = await cli(["policy", "show", "3", "--file", "masking.json"]);
    expect(file.stdout).toBe(await readFile(join(DEMO, "masking.json"), "utf8"));
    const all = await cli(["policy", "show", "4"]);
    expect(all.stdout).toMatch(/^version 4 \(active\), digest [0-9a-f]{64}, by admin-1 at /);
    expect(all.stdout).toContain("\n==> roles.cedar <==\n");
    const missing = await cli(["policy", "show", "3", "--file", "nope.cedar"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/version 3 has no file nope\.cedar; it has access\.cedar, agents\.cedar/);
    expect((await cli(["policy", "show", "99"])).stderr).toBe("airlock: no policy version 99 (NOT_FOUND)\n");
  });
});
