// The REST API of a real gateway process: the OpenAPI document, problem JSON
// for validation errors, 404s and conflicts, PATCH, health and the CA pin.
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, pemPin, type Problem, type RawResponse } from "./harness/cli-helpers.js";
import { killAll, startGateway, type GatewayProc } from "./harness/processes.js";

let gw: GatewayProc;
const api = <T = unknown>(method: string, path: string, body?: unknown, token?: string | null) =>
  http<T>(gw.apiUrl, method, path, { token: token === null ? undefined : (token ?? gw.adminToken), body });

/** Asserts an RFC 9457 problem response with our stable code; returns it. */
function expectProblem(r: RawResponse, status: number, code: string): Problem {
  expect(r.status, r.text).toBe(status);
  expect(r.contentType).toMatch(/^application\/problem\+json/);
  const p = r.body as Problem;
  expect(p).toMatchObject({ status, code, title: code });
  expect(typeof p.type).toBe("string");
  expect(typeof p.detail).toBe("string");
  expect(p.detail.length).toBeGreaterThan(0);
  return p;
}

const conn = (over: Record<string, unknown> = {}) => ({ name: "c-" + Math.random().toString(36).slice(2, 8), type: "tcp", host: "10.1.2.3", port: 5432, agent: "site-a", ...over });

beforeAll(async () => {
  gw = await startGateway();
  const r = await api("POST", "/api/v1/agents", { name: "site-a" });
  expect(r.status).toBe(201);
});

afterAll(killAll);

type Operation = { responses?: Record<string, { description?: string }>; parameters?: Array<{ in: string; name: string; required?: boolean }>; requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown>; additionalProperties?: unknown; required?: string[] } }> } };
type OpenApi = { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Operation>>; components?: { securitySchemes?: Record<string, unknown> }; security?: unknown[] };
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

describe("GET /openapi.json", () => {
  let doc: OpenApi;

  beforeAll(async () => {
    // Public: no token.
    const r = await http<OpenApi>(gw.apiUrl, "GET", "/openapi.json");
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^application\/json/);
    doc = r.body;
  });

  it("is an OpenAPI 3.1 document with info and bearer security", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toEqual(expect.any(String));
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.components?.securitySchemes?.bearer).toEqual({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearer: [] }]);
  });

  it("lists the routes for agents, connections, tokens, sessions and whoami with their methods", () => {
    const expected: Record<string, string[]> = {
      "/api/v1/agents": ["get", "post"],
      "/api/v1/agents/{name}": ["delete", "get"],
      "/api/v1/agents/{name}/revoke": ["post"],
      "/api/v1/connections": ["get", "post"],
      "/api/v1/connections/{name}": ["delete", "get", "patch"],
      "/api/v1/tokens": ["get", "post"],
      "/api/v1/tokens/{id}/revoke": ["post"],
      "/api/v1/sessions": ["get"],
      "/api/v1/sessions/{id}": ["get"],
      "/api/v1/whoami": ["get"],
      "/api/v1/ca": ["get"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(doc.paths, `missing path ${path}`).toHaveProperty([path]);
      expect(Object.keys(doc.paths[path]!).filter((m) => METHODS.includes(m)).sort(), path).toEqual(methods);
    }
  });

  it("every operation has responses with status codes and descriptions, and declares its path parameters", () => {
    let ops = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        if (!METHODS.includes(method)) continue;
        ops++;
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.responses, where).toBeDefined();
        const codes = Object.keys(op.responses!);
        expect(codes.length, where).toBeGreaterThan(0);
        for (const c of codes) {
          expect(c, where).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
          expect(typeof op.responses![c]!.description, `${where} ${c}`).toBe("string");
        }
        for (const name of params) {
          expect(op.parameters, where).toContainEqual(expect.objectContaining({ in: "path", name, required: true }));
        }
      }
    }
    expect(ops).toBeGreaterThanOrEqual(15);
  });

  it("describes the connection body: required fields, closed to unknown properties", () => {
    const schema = doc.paths["/api/v1/connections"]!.post!.requestBody?.content?.["application/json"]?.schema;
    expect(schema?.properties).toEqual(expect.objectContaining({ name: expect.anything(), type: expect.anything(), host: expect.anything(), port: expect.anything(), agent: expect.anything(), labels: expect.anything() }));
    expect(schema?.required?.sort()).toEqual(["host", "name", "port", "type"]);
    expect(schema?.additionalProperties).toBe(false);
    expect(doc.paths["/api/v1/connections"]!.post!.responses).toHaveProperty(["201"]);
  });

  it("documents the status DELETE really answers (204 No Content)", async () => {
    const made = await api("POST", "/api/v1/connections", conn({ name: "doc-del" }));
    expect(made.status).toBe(201);
    const del = await api("DELETE", "/api/v1/connections/doc-del");
    expect(del.status).toBe(204);
    for (const path of ["/api/v1/connections/{name}", "/api/v1/agents/{name}"]) {
      expect(Object.keys(doc.paths[path]!.delete!.responses!), `DELETE ${path}`).toContain("204");
    }
  });
});

describe("request validation → 400 problem JSON with code INVALID_ARGUMENT", () => {
  it("port out of range", async () => {
    for (const port of [0, 70000, -1, 1.5]) {
      const p = expectProblem(await api("POST", "/api/v1/connections", conn({ port })), 400, "INVALID_ARGUMENT");
      expect(p.detail).toMatch(/port/);
    }
  });

  it("unknown connection type", async () => {
    const p = expectProblem(await api("POST", "/api/v1/connections", conn({ type: "oracle" })), 400, "INVALID_ARGUMENT");
    expect(p.detail).toMatch(/type/);
  });

  it("type mysql (known, not supported yet) says so and names what is", async () => {
    const p = expectProblem(await api("POST", "/api/v1/connections", conn({ type: "mysql" })), 400, "INVALID_ARGUMENT");
    expect(p.detail).toBe("type mysql is not supported yet; supported: tcp, postgres");
  });

  it("a postgres connection needs the target user and rejects unknown secrets", async () => {
    const a = expectProblem(await api("POST", "/api/v1/connections", conn({ type: "postgres" })), 400, "INVALID_ARGUMENT");
    expect(a.detail).toMatch(/needs the target user: --secret username=USER/);
    const b = expectProblem(await api("POST", "/api/v1/connections", conn({ type: "postgres", secrets: { username: "u", pasword: "typo" } })), 400, "INVALID_ARGUMENT");
    expect(b.detail).toBe("unknown postgres secret(s): pasword; expected username, password");
  });

  it("agent and agentGroup both set", async () => {
    const p = expectProblem(await api("POST", "/api/v1/connections", conn({ agentGroup: "eu" })), 400, "INVALID_ARGUMENT");
    expect(p.detail).toBe("give either agent or agentGroup, not both");
  });

  it("neither agent nor agentGroup", async () => {
    const p = expectProblem(await api("POST", "/api/v1/connections", conn({ agent: undefined })), 400, "INVALID_ARGUMENT");
    expect(p.detail).toMatch(/agent or agentGroup is required/);
  });

  it("missing required field and bad name", async () => {
    const missing = expectProblem(await api("POST", "/api/v1/connections", { name: "x", type: "tcp", port: 1, agent: "site-a" }), 400, "INVALID_ARGUMENT");
    expect(missing.detail).toMatch(/host/);
    const name = expectProblem(await api("POST", "/api/v1/connections", conn({ name: "Not A Name" })), 400, "INVALID_ARGUMENT");
    expect(name.detail).toMatch(/name/);
  });

  it("malformed JSON", async () => {
    expectProblem(await http(gw.apiUrl, "POST", "/api/v1/connections", { token: gw.adminToken, rawBody: '{"name": ' }), 400, "INVALID_ARGUMENT");
  });

  it("an extra property is rejected, not silently dropped (POST and PATCH)", async () => {
    const created = await api("POST", "/api/v1/connections", conn({ name: "extra-prop", bogus: 1 }));
    expectProblem(created, 400, "INVALID_ARGUMENT");
    expect((await api("GET", "/api/v1/connections/extra-prop")).status).toBe(404);

    const base = await api("POST", "/api/v1/connections", conn({ name: "extra-patch" }));
    expect(base.status).toBe(201);
    // A typo'd field ("prot") must not be a silent no-op that answers 200.
    expectProblem(await api("PATCH", "/api/v1/connections/extra-patch", { prot: 6543 }), 400, "INVALID_ARGUMENT");
    expectProblem(await api("POST", "/api/v1/agents", { name: "agent-extra", groupp: "eu" }), 400, "INVALID_ARGUMENT");
  });

  it("token requests: unknown role, ttl above the maximum", async () => {
    expectProblem(await api("POST", "/api/v1/tokens", { subject: "alice", roles: ["god"] }), 400, "INVALID_ARGUMENT");
    const ttl = expectProblem(await api("POST", "/api/v1/tokens", { subject: "alice", ttlSeconds: 365 * 86400 }), 400, "INVALID_ARGUMENT");
    expect(ttl.detail).toMatch(/ttl/);
  });
});

describe("404, 409, 401 and 403", () => {
  it("unknown routes → 404 problem JSON", async () => {
    for (const [m, path] of [
      ["GET", "/api/v1/nope"],
      ["GET", "/nope"],
      ["POST", "/api/v1/whoami"],
    ] as const) {
      const p = expectProblem(await api(m, path), 404, "NOT_FOUND");
      expect(p.detail).toContain(path);
    }
  });

  it("unknown names and ids → 404 problem JSON naming them", async () => {
    const uuid = "00000000-0000-4000-8000-000000000000";
    for (const [m, path, what] of [
      ["GET", "/api/v1/connections/no-such-conn", "no-such-conn"],
      ["PATCH", "/api/v1/connections/no-such-conn", "no-such-conn"],
      ["DELETE", "/api/v1/connections/no-such-conn", "no-such-conn"],
      ["GET", "/api/v1/agents/no-such-agent", "no-such-agent"],
      ["POST", "/api/v1/agents/no-such-agent/revoke", "no-such-agent"],
      ["GET", `/api/v1/sessions/${uuid}`, uuid],
      ["POST", `/api/v1/tokens/${uuid}/revoke`, uuid],
    ] as const) {
      const p = expectProblem(await api(m, path, m === "PATCH" ? { port: 1 } : undefined), 404, "NOT_FOUND");
      expect(p.detail, `${m} ${path}`).toContain(what);
    }
    // A connection naming an agent that does not exist.
    const p = expectProblem(await api("POST", "/api/v1/connections", conn({ agent: "ghost" })), 404, "NOT_FOUND");
    expect(p.detail).toBe("no agent ghost");
  });

  it("duplicate names → 409 ALREADY_EXISTS", async () => {
    expect((await api("POST", "/api/v1/connections", conn({ name: "dup" }))).status).toBe(201);
    expect(expectProblem(await api("POST", "/api/v1/connections", conn({ name: "dup", port: 1 })), 409, "ALREADY_EXISTS").detail).toBe("connection dup already exists");
    expect(expectProblem(await api("POST", "/api/v1/agents", { name: "site-a" }), 409, "ALREADY_EXISTS").detail).toBe("agent site-a already exists");
  });

  it("renaming a connection onto an existing name → 409 ALREADY_EXISTS, not 500", async () => {
    expect((await api("POST", "/api/v1/connections", conn({ name: "ren-a" }))).status).toBe(201);
    expect((await api("POST", "/api/v1/connections", conn({ name: "ren-b" }))).status).toBe(201);
    expectProblem(await api("PATCH", "/api/v1/connections/ren-b", { name: "ren-a" }), 409, "ALREADY_EXISTS");
    expect((await api("GET", "/api/v1/connections/ren-b")).status).toBe(200);
  });

  it("no token → 401 UNAUTHENTICATED; a user token cannot create connections → 403", async () => {
    expectProblem(await api("GET", "/api/v1/connections", undefined, null), 401, "UNAUTHENTICATED");
    expectProblem(await api("GET", "/api/v1/connections", undefined, "not-a-token"), 401, "TOKEN_INVALID");
    const t = await api<{ token: string }>("POST", "/api/v1/tokens", { subject: "uma", roles: ["user"] });
    expect(t.status).toBe(201);
    expect((await api("GET", "/api/v1/connections", undefined, t.body.token)).status).toBe(200);
    expectProblem(await api("POST", "/api/v1/connections", conn(), t.body.token), 403, "PERMISSION_DENIED");
  });
});

describe("PATCH /api/v1/connections/:name", () => {
  type View = { id: string; name: string; host: string; port: number; agent: string | null; agentGroup: string | null; labels: Record<string, string>; hasSecrets: boolean; createdAt: string; updatedAt: string };

  it("changes only the given fields; GET reflects it; secrets stay write-only", async () => {
    const c = await api<View>("POST", "/api/v1/connections", conn({ name: "patch-me", labels: { env: "dev" }, secrets: { password: "hunter2-secret" } }));
    expect(c.status).toBe(201);
    expect(c.body.hasSecrets).toBe(true);
    expect(c.text).not.toContain("hunter2-secret");
    await new Promise((r) => setTimeout(r, 20));

    const p = await api<View>("PATCH", "/api/v1/connections/patch-me", { port: 6543, labels: { env: "prod", team: "db" } });
    expect(p.status, p.text).toBe(200);
    expect(p.body).toMatchObject({ id: c.body.id, name: "patch-me", host: "10.1.2.3", port: 6543, agent: "site-a", labels: { env: "prod", team: "db" }, hasSecrets: true, createdAt: c.body.createdAt });
    expect(new Date(p.body.updatedAt).getTime()).toBeGreaterThan(new Date(c.body.updatedAt).getTime());

    const g = await api<View>("GET", "/api/v1/connections/patch-me");
    expect(g.body).toEqual(p.body);
    expect(g.text).not.toContain("hunter2-secret");

    // Moving from an agent to an agent group clears the agent.
    const grp = await api<View>("PATCH", "/api/v1/connections/patch-me", { agentGroup: "eu-west" });
    expect(grp.body).toMatchObject({ agent: null, agentGroup: "eu-west", port: 6543 });
    // Invalid values are refused and change nothing.
    expectProblem(await api("PATCH", "/api/v1/connections/patch-me", { port: 0 }), 400, "INVALID_ARGUMENT");
    expectProblem(await api("PATCH", "/api/v1/connections/patch-me", { type: "postgres" }), 400, "INVALID_ARGUMENT");
    expect((await api<View>("GET", "/api/v1/connections/patch-me")).body.port).toBe(6543);
  });
});

describe("health and the CA", () => {
  it("GET /healthz needs no token and answers ok with the version", async () => {
    const r = await http<{ status: string; version: string }>(gw.apiUrl, "GET", "/healthz");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: "ok", version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it("GET /api/v1/ca returns the CA PEM whose DER sha256 is the caPin that POST /api/v1/agents returns", async () => {
    const ca = await http(gw.apiUrl, "GET", "/api/v1/ca");
    expect(ca.status).toBe(200);
    expect(ca.contentType).toMatch(/^application\/x-pem-file/);
    expect(ca.text).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n?$/);
    const cert = new X509Certificate(ca.text);
    expect(cert.ca).toBe(true);

    const a = await api<{ caPin: string; command: string; gateway: string; enrollmentToken: string }>("POST", "/api/v1/agents", { name: "pin-check" });
    expect(a.status).toBe(201);
    expect(a.body.caPin).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pemPin(ca.text)).toBe(a.body.caPin);
    expect(a.body.command).toBe(`airlock agent --gateway ${gw.agentAddress} --token ${a.body.enrollmentToken} --ca-pin ${a.body.caPin}`);
    // The same CA the gateway keeps on disk, and it signed the agent port's certificate.
    expect(pemPin(await readFile(gw.caFile, "utf8"))).toBe(a.body.caPin);
    const server = new X509Certificate(await readFile(gw.caFile.replace(/ca\.pem$/, "server.pem"), "utf8"));
    expect(server.verify(cert.publicKey)).toBe(true);
  });
});
