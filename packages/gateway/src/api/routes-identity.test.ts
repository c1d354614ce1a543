// Identity management through a whole in-process gateway (embedded PGlite
// store, real fastify, real token service): service accounts and their scope,
// renewal and revocation, API keys (off unless enabled; hashed, expiry and last
// use shown), deleted users, logout, and the auth audit trail with a reason for
// every refusal. IdP sign-in flows are in e2e/identity-*.test.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { startGateway, type Gateway } from "../server.js";

let dir: string;
let gw: Gateway;
let admin: string;

async function call<T = Record<string, unknown>>(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(gw.apiUrl + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

type Event = { type: string; outcome: string; subject: string | null; code: string | null; reason: string | null; via: string | null };
async function events(q = ""): Promise<Event[]> {
  return (await call<{ events: Event[] }>("GET", `/api/v1/auth/events?limit=200${q}`, admin)).body.events;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-identity-"));
  gw = await startGateway(
    loadConfig({ dataDir: dir, api: { host: "127.0.0.1", port: 0 }, agents: { host: "127.0.0.1", port: 0, insecure: true }, postgres: { enabled: false, host: "127.0.0.1", port: 0, allowPlaintext: false }, identity: { apiKeys: { enabled: true, maxTtlDays: 30 } } } as never, {}),
    pino({ level: "silent" }),
  );
  admin = gw.bootstrapToken!;
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("service accounts", () => {
  let token: string;
  it("creates an account with groups and a connection scope, and mints a short-lived token", async () => {
    const r = await call<{ token: string; groups: string[]; connections: string[]; expiresAt: string }>("POST", "/api/v1/serviceaccounts", admin, { name: "ci-deployer", groups: ["deployers"], connections: ["staging-*"], tokenTtlSeconds: 900 });
    expect(r.status).toBe(201);
    expect(r.body.groups).toEqual(["deployers"]);
    token = r.body.token;
    const left = new Date(r.body.expiresAt).getTime() - Date.now();
    expect(left).toBeGreaterThan(800_000);
    expect(left).toBeLessThanOrEqual(900_000);
    const who = await call<{ subject: string; kind: string; method: string; groups: string[]; connections: string[] }>("GET", "/api/v1/whoami", token);
    expect(who.body).toMatchObject({ subject: "ci-deployer", kind: "service", method: "service", groups: ["deployers"], connections: ["staging-*"] });
  });

  it("refuses to create an account without a connection scope", async () => {
    const r = await call("POST", "/api/v1/serviceaccounts", admin, { name: "nothing", connections: [] });
    expect(r.status).toBe(400);
  });

  it("keeps the token inside its scope: a connection outside it is refused before any target is touched", async () => {
    await call("POST", "/api/v1/connections", admin, { name: "prod-db", type: "tcp", host: "127.0.0.1", port: 1, agentGroup: "nowhere" });
    const { mayUseConnection } = await import("../auth/principal.js");
    const p = await gw.identity.verify(token, { via: "rest" });
    expect(mayUseConnection(p, "staging-db")).toBe(true);
    expect(mayUseConnection(p, "prod-db")).toBe(false);
    // Through the WebSocket door: the session record says why it was refused.
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(`${gw.apiUrl.replace("http", "ws")}/api/v1/connections/prod-db/connect`, "airlock.tcp.v1", { headers: { authorization: `Bearer ${token}` } });
    const closed = await new Promise<string>((resolve) => {
      let msg = "";
      ws.on("message", (d) => (msg += d.toString()));
      ws.on("close", () => resolve(msg));
      ws.on("error", (e) => resolve(String(e)));
    });
    expect(closed).toMatch(/limited to connections staging-\*/);
    const s = await call<{ sessions: Array<{ subject: string; outcome: string; errorCode: string }> }>("GET", "/api/v1/sessions?subject=ci-deployer", admin);
    expect(s.body.sessions[0]).toMatchObject({ subject: "ci-deployer", outcome: "denied", errorCode: "PERMISSION_DENIED" });
  });

  it("lets the account renew its own token, never longer than its ttl", async () => {
    const r = await call<{ token: string; expiresAt: string }>("POST", "/api/v1/auth/renew", token, {});
    expect(r.status).toBe(200);
    expect(new Date(r.body.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(900_000);
    expect((await call("GET", "/api/v1/whoami", r.body.token)).status).toBe(200);
    // People renew by signing in (or with their refresh token), not here.
    expect((await call("POST", "/api/v1/auth/renew", admin, {})).status).toBe(403);
  });

  it("refuses every token of a revoked account with a reason, and records it", async () => {
    const r = await call<{ sessionsCut: number }>("POST", "/api/v1/serviceaccounts/ci-deployer/revoke", admin);
    expect(r.status).toBe(200);
    const who = await call<{ code: string; detail: string }>("GET", "/api/v1/whoami", token);
    expect(who.status).toBe(401);
    expect(who.body.code).toBe("IDENTITY_DISABLED");
    expect(who.body.detail).toMatch(/service account ci-deployer was revoked/);
    const ev = await events("&outcome=denied");
    expect(ev.some((e) => e.code === "IDENTITY_DISABLED" && /ci-deployer was revoked/.test(e.reason ?? "") && e.via === "rest")).toBe(true);
    expect((await events("&type=revoke")).some((e) => e.subject === "ci-deployer")).toBe(true);
  });
});

describe("API keys", () => {
  it("are long-lived, hashed, listed with expiry and last use", async () => {
    await call("POST", "/api/v1/serviceaccounts", admin, { name: "reporting-bot", groups: ["analysts"], connections: ["*"] });
    const k = await call<{ token: string; id: string; type: string; expiresAt: string }>("POST", "/api/v1/serviceaccounts/reporting-bot/tokens", admin, { apiKey: true, ttlSeconds: 20 * 86400 });
    expect(k.status).toBe(201);
    expect(k.body.type).toBe("api_key");
    expect(k.body.token).toMatch(/^alk_key_/);
    const who = await call<{ method: string; subject: string }>("GET", "/api/v1/whoami", k.body.token);
    expect(who.body).toMatchObject({ method: "api_key", subject: "reporting-bot" });
    const list = await call<{ enabled: boolean; apiKeys: Array<{ id: string; lastUsedAt: string | null; expiresAt: string }> }>("GET", "/api/v1/apikeys", admin);
    expect(list.body.enabled).toBe(true);
    const mine = list.body.apiKeys.find((x) => x.id === k.body.id)!;
    expect(mine.expiresAt).toBe(k.body.expiresAt);
    await new Promise((r) => setTimeout(r, 100)); // last-used is written in the background
    const again = await call<{ apiKeys: Array<{ id: string; lastUsedAt: string | null }> }>("GET", "/api/v1/apikeys", admin);
    expect(again.body.apiKeys.find((x) => x.id === k.body.id)!.lastUsedAt).not.toBeNull();
    // Stored hashed: the key itself is nowhere in the store.
    const rows = (await gw.store.sql("SELECT hash FROM access_tokens WHERE id = $1", [k.body.id])) as Array<{ hash: string }>;
    expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.hash).not.toContain(k.body.token);
  });

  it("cannot outlive the configured maximum", async () => {
    const r = await call<{ code: string }>("POST", "/api/v1/serviceaccounts/reporting-bot/tokens", admin, { apiKey: true, ttlSeconds: 31 * 86400 });
    expect(r.status).toBe(400);
  });
});

describe("people", () => {
  it("a deleted user's token is refused with that reason; logout ends a sign-in's tokens", async () => {
    const users = gw.users;
    const u = await users.upsert({ provider: "corp", externalId: "sub-1", name: "carol@example.com", groups: ["analysts"], roles: ["user"] });
    const login = await gw.store.prisma.login.create({ data: { userId: u.id, provider: "corp", method: "oidc", expiresAt: new Date(Date.now() + 3600_000) } });
    const t1 = await gw.tokens.mint({ subject: u.name, roles: ["user"], groups: u.groups, method: "oidc", provider: "corp", userId: u.id, loginId: login.id });
    const who = await call<{ subject: string; method: string; provider: string; groups: string[] }>("GET", "/api/v1/whoami", t1.token);
    expect(who.body).toMatchObject({ subject: "carol@example.com", method: "oidc", provider: "corp", groups: ["analysts"] });

    const out = await call<{ tokensRevoked: number }>("POST", "/api/v1/auth/logout", t1.token, {});
    expect(out.body.tokensRevoked).toBe(1);
    const after = await call<{ code: string; detail: string }>("GET", "/api/v1/whoami", t1.token);
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("TOKEN_REVOKED");

    const t2 = await gw.tokens.mint({ subject: u.name, roles: ["user"], method: "oidc", provider: "corp", userId: u.id });
    expect((await call("GET", "/api/v1/whoami", t2.token)).status).toBe(200);
    expect((await call("DELETE", `/api/v1/users/${encodeURIComponent(u.name)}`, admin)).status).toBe(200);
    const gone = await call<{ code: string; detail: string }>("GET", "/api/v1/whoami", t2.token);
    expect(gone.status).toBe(401);
    expect(gone.body.code).toBe("IDENTITY_DISABLED");
    expect(gone.body.detail).toMatch(/user carol@example.com was deleted/);
    const ev = await events("&outcome=denied");
    expect(ev.some((e) => e.code === "IDENTITY_DISABLED" && /carol@example.com was deleted/.test(e.reason ?? ""))).toBe(true);
  });

  it("every refused credential gets a 401 with its reason and an audit record", async () => {
    const expired = await gw.tokens.mint({ subject: "dave", roles: ["user"], ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const cases: Array<[string | undefined, string]> = [
      [undefined, "UNAUTHENTICATED"],
      ["garbage", "TOKEN_INVALID"],
      [expired.token, "TOKEN_EXPIRED"],
      // A JWT when the gateway trusts no issuer.
      ["eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwifQ.c2ln", "TOKEN_ISSUER_UNKNOWN"],
    ];
    for (const [tok, code] of cases) {
      const r = await call<{ code: string; detail: string; type: string }>("GET", "/api/v1/whoami", tok);
      expect(r.status, code).toBe(401);
      expect(r.body.code).toBe(code);
      expect(r.body.detail.length).toBeGreaterThan(10);
    }
    const ev = await events("&type=reject");
    for (const [, code] of cases) expect(ev.some((e) => e.code === code), code).toBe(true);
  });

  it("auditors read the trail; plain users do not", async () => {
    const aud = await gw.tokens.mint({ subject: "erin", roles: ["auditor"] });
    const usr = await gw.tokens.mint({ subject: "frank", roles: ["user"] });
    expect((await call("GET", "/api/v1/auth/events", aud.token)).status).toBe(200);
    expect((await call("GET", "/api/v1/auth/events", usr.token)).status).toBe(403);
    expect((await call("GET", "/api/v1/serviceaccounts", usr.token)).status).toBe(403);
  });
});

describe("hardening", () => {
  it("a refresh token is used once, even by two concurrent clients", async () => {
    const { generateToken, hashToken } = await import("../crypto/index.js");
    const u = await gw.users.upsert({ provider: "corp-saml", externalId: "gina", name: "gina@example.com", groups: ["analysts"], roles: ["user"] });
    const rt = generateToken("rt");
    await gw.store.prisma.login.create({ data: { userId: u.id, provider: "corp-saml", method: "saml", refreshHash: hashToken(rt), expiresAt: new Date(Date.now() + 3600_000) } });
    const body = JSON.stringify({ grant_type: "refresh_token", refresh_token: rt });
    const post = () => fetch(`${gw.apiUrl}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const [a, b] = await Promise.all([post(), post()]);
    expect([a.status, b.status].sort()).toEqual([200, 401]);
    const ok = (await (a.status === 200 ? a : b).json()) as { refresh_token: string; subject: string; groups: string[] };
    expect(ok).toMatchObject({ subject: "gina@example.com", groups: ["analysts"] });
    expect(ok.refresh_token).not.toBe(rt);
  });

  it("nobody takes over an existing name: a second person with the same email/username is provider-qualified", async () => {
    const first = await gw.users.upsert({ provider: "corp", externalId: "h-1", name: "henry", groups: [], roles: ["user"] });
    const other = await gw.users.upsert({ provider: "other-idp", externalId: "h-2", name: "henry", groups: [], roles: ["user"] });
    expect(first.name).toBe("henry");
    expect(other.name).toBe("other-idp:henry");
    // Nor a service account's name.
    const sa = await gw.users.upsert({ provider: "corp", externalId: "r-9", name: "reporting-bot", groups: [], roles: ["user"] });
    expect(sa.name).toBe("corp:reporting-bot");
    // Unsafe characters in an IdP's name are replaced, not refused.
    const odd = await gw.users.upsert({ provider: "corp", externalId: "x+/=", name: "Ivy Smith", groups: [], roles: ["user"] });
    expect(odd.name).toBe("Ivy_Smith");
  });

  it("revoking an account revokes its tokens: enabling it again does not bring a leaked one back", async () => {
    const r = await call<{ token: string }>("POST", "/api/v1/serviceaccounts", admin, { name: "leaky", connections: ["*"] });
    await call("POST", "/api/v1/serviceaccounts/leaky/revoke", admin);
    await call("POST", "/api/v1/serviceaccounts/leaky/enable", admin);
    const who = await call<{ code: string }>("GET", "/api/v1/whoami", r.body.token);
    expect(who.status).toBe(401);
    expect(who.body.code).toBe("TOKEN_REVOKED");
    // And a service account's tokens are not minted around the account.
    const t = await call<{ detail: string }>("POST", "/api/v1/tokens", admin, { subject: "leaky", kind: "service" });
    expect(t.status).toBe(400);
    expect(t.body.detail).toMatch(/is a service account/);
  });

  it("browser sign-in hands codes only to loopback or exactly allow-listed addresses", async () => {
    const { LoginRequests } = await import("../identity/login-requests.js");
    const lr = new LoginRequests(gw.store, null as never, ["https://app.example.com/auth/*"]);
    for (const ok of ["http://127.0.0.1:5000/callback", "http://[::1]:80/cb", "https://app.example.com/auth/done"]) expect(() => lr.checkRedirect(ok), ok).not.toThrow();
    for (const bad of ["https://app.example.com.evil.net/auth/x", "https://app.example.com@evil.net/auth/x", "https://app.example.com/other", "http://10.0.0.1:5000/cb", "javascript:alert(1)", "https://evil.net/?https://app.example.com/auth/"]) {
      expect(() => lr.checkRedirect(bad), bad).toThrow(/not allowed/);
    }
  });
});
