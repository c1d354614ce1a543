// Identity end to end against a real OpenID provider (npm `oidc-provider`,
// started here: e2e/idp/oidc-provider.ts) and real clients: the built CLI
// (`airlock login` with a loopback redirect, `--device`, `whoami`, `logout`),
// headless Chromium on the IdP's pages, psql and node-postgres through the
// Postgres front door, all against real gateway and agent processes on the
// machine's PostgreSQL.
//
// A second JWT issuer is a local JWKS server run by this file with keys made
// here: it mints the malformed and hostile tokens (expired, alg none, HS256
// with the public key, unknown kid) that a real IdP will not produce.
import { createHmac } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./harness/cli-helpers.js";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";
import { eventually, freePort, startCli, tempDir } from "./harness/processes.js";
import { completeDeviceLogin, completeLogin, launchBrowser } from "./idp/browser.js";
import { startTestOidc, type TestOidc } from "./idp/oidc-provider.js";

const AUD = "https://airlock.e2e.test";
const POLICY = {
  "access.cedar": `
@id("everyone-connects") permit (principal, action == Airlock::Action::"connect", resource);
@id("analysts-read") @reason("analysts may read")
permit (principal in Airlock::Group::"analysts", action in Airlock::Action::"read", resource);
@id("agents-read") @reason("AI agents may read")
permit (principal in Airlock::Group::"ai-agents", action in Airlock::Action::"read", resource);
`,
};

let env: PgEnv;
let idp: TestOidc;
let browser: Browser;
let apiUrl: string;
let devPort: number;
let rogue: { issuer: string; sign(claims: Record<string, unknown>, opts?: { kid?: string; alg?: string }): Promise<string>; publicPem: string; close(): void };

type Problem = { code: string; detail: string };
async function whoami(token: string | undefined): Promise<{ status: number; body: Problem & { subject?: string; groups?: string[]; roles?: string[]; method?: string } }> {
  const res = await fetch(`${apiUrl}/api/v1/whoami`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as Problem };
}
async function authEvents(q: string): Promise<Array<{ type: string; outcome: string; code: string | null; reason: string | null; subject: string | null; via: string | null }>> {
  const r = await env.gw.api<{ events: Array<{ type: string; outcome: string; code: string | null; reason: string | null; subject: string | null; via: string | null }> }>("GET", `/api/v1/auth/events?limit=500&${q}`);
  return r.body.events;
}

/** A JWT issuer we control (keys made here), trusted by the gateway as `lab`. */
async function startRogueIssuer() {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "lab-1", alg: "RS256", use: "sig" };
  const { createPublicKey } = await import("node:crypto");
  const publicPem = createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
  const srv = http.createServer((req, res) => {
    const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    if (req.url === "/.well-known/openid-configuration") return void res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
    if (req.url === "/jwks") return void res.end(JSON.stringify({ keys: [jwk] }));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const issuer = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  return {
    issuer,
    publicPem,
    close: () => srv.close(),
    sign: (claims: Record<string, unknown>, o: { kid?: string } = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: o.kid ?? "lab-1" }).sign(privateKey),
  };
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

beforeAll(async () => {
  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  devPort = await freePort();
  idp = await startTestOidc({
    redirectUris: [`${apiUrl}/api/v1/auth/oidc/callback`, `http://127.0.0.1:${devPort}/api/v1/auth/oidc/callback`],
    users: [
      { username: "alice", email: "alice@example.test", name: "Alice", groups: ["analysts", "airlock-admins"] },
      { username: "bob", email: "bob@example.test", name: "Bob", groups: ["developers"] },
      { username: "carol", email: "carol@example.test", name: "Carol", groups: ["analysts"] },
    ],
  });
  rogue = await startRogueIssuer();
  const dir = await tempDir("airlock-identity-");
  const identityFile = join(dir, "identity.json");
  await writeFile(
    identityFile,
    JSON.stringify({
      oidc: [{ name: "corp", issuer: idp.issuer, clientId: idp.gatewayClient.clientId, clientSecret: idp.gatewayClient.clientSecret, audience: AUD }],
      jwtIssuers: [{ name: "lab", issuer: rogue.issuer, audience: AUD }],
      roleMappings: [{ group: "airlock-admins", roles: ["admin"] }],
      tokenTtlSeconds: { admin: 900, user: 1800 },
    }),
  );
  env = await startPgEnv({
    name: "identity",
    policy: POLICY,
    setupSql: "CREATE TABLE customers (id int, name text); INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace');",
    env: { AIRLOCK_IDENTITY_FILE: identityFile },
    apiPort,
  });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await env?.close();
  await idp?.stop();
  rogue?.close();
});

/** `airlock login` (browser flow) in its own profile dir; the test plays the user in Chromium. */
async function cliLogin(username: string, gateway = apiUrl): Promise<{ profileDir: string; token: string; refreshToken?: string; callbackUrl: string; out: string }> {
  const profileDir = await tempDir("airlock-profile-");
  const cli = startCli(["login", gateway, "--no-browser"], { AIRLOCK_CONFIG_DIR: profileDir, AIRLOCK_URL: undefined, AIRLOCK_TOKEN: undefined });
  const line = await cli.waitFor(/^\s+http\S+\/auth\?\S+$/m, 20_000);
  const r = await completeLogin(browser, line.trim(), username, `${gateway}/api/v1/auth/oidc/callback`);
  const exit = await cli.exited;
  expect(exit.code, cli.output()).toBe(0);
  expect(r.text).toMatch(/Signed in to Airlock/);
  const profile = JSON.parse(await readFile(join(profileDir, "profile.json"), "utf8")) as { token: string; refreshToken?: string };
  return { profileDir, ...profile, callbackUrl: r.matchedUrl, out: cli.output() };
}

describe("people: OIDC code + PKCE through `airlock login`", () => {
  let alice: Awaited<ReturnType<typeof cliLogin>>;
  let bob: Awaited<ReturnType<typeof cliLogin>>;

  it("signs alice in through the browser and saves a short-lived gateway token with a refresh path", async () => {
    alice = await cliLogin("alice");
    expect(alice.out).toMatch(/Signed in to .* as alice@example\.test \(admin; groups analysts, airlock-admins\)/);
    expect(alice.token).toMatch(/^alk_at_/);
    expect(alice.refreshToken).toMatch(/^alk_rt_/);
    const who = await runCli(["whoami", "--json"], { AIRLOCK_CONFIG_DIR: alice.profileDir });
    const w = JSON.parse(who.stdout) as { subject: string; kind: string; method: string; provider: string; roles: string[]; groups: string[]; expiresAt: string };
    expect(w).toMatchObject({ subject: "alice@example.test", kind: "user", method: "oidc", provider: "corp", roles: ["admin"], groups: ["analysts", "airlock-admins"] });
    // admin's lifetime (900 s) is shorter than user's (1800 s): the shortest role wins.
    const left = new Date(w.expiresAt).getTime() - Date.now();
    expect(left).toBeGreaterThan(800_000);
    expect(left).toBeLessThanOrEqual(900_000);
    const human = await runCli(["whoami"], { AIRLOCK_CONFIG_DIR: alice.profileDir });
    expect(human.stdout).toMatch(/signed in:\s+oidc via corp/);
  });

  it("the group claim decides: analyst alice may select, developer bob may not", async () => {
    bob = await cliLogin("bob");
    const a = await env.connect(alice.token);
    a.on("error", () => {});
    expect((await a.query("select name from customers order by id")).rows.map((r) => r.name)).toEqual(["Ada", "Grace"]);
    await a.end();
    const b = await env.connect(bob.token);
    b.on("error", () => {}); // cut later, when bob's sign-in ends
    const err = await errorOf(b.query("select name from customers"));
    expect(err.code).toBe("42501");
    expect(err.message).toMatch(/statement denied/);
    await b.end();
    const sessions = await env.sessions("bob@example.test");
    expect(sessions.length).toBeGreaterThan(0);
  });

  it("a replayed authorization code (the IdP's callback again) is refused with a reason and recorded", async () => {
    const res = await fetch(alice.callbackUrl, { redirect: "manual" });
    expect(res.status).toBe(401);
    const p = (await res.json()) as Problem;
    expect(p.code).toBe("LOGIN_FAILED");
    expect(p.detail).toMatch(/already completed.*replayed/);
    const forged = await fetch(`${apiUrl}/api/v1/auth/oidc/callback?code=abc&state=not-ours`, { redirect: "manual" });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as Problem).detail).toMatch(/state mismatch/);
    const ev = await authEvents("type=login&outcome=denied");
    expect(ev.some((e) => /replayed/.test(e.reason ?? ""))).toBe(true);
    expect(ev.some((e) => /state mismatch/.test(e.reason ?? ""))).toBe(true);
  });

  it("a nonce that does not match the sign-in is refused (the IdP's answer goes back to the client as an error)", async () => {
    // A client of our own: it starts the sign-in, then the URL's nonce is swapped before the user opens it.
    let got = "";
    const loop = http.createServer((req, res) => {
      if (req.url?.startsWith("/callback")) got = req.url;
      res.end("ok");
    });
    await new Promise<void>((r) => loop.listen(0, "127.0.0.1", r));
    const redirectUri = `http://127.0.0.1:${(loop.address() as { port: number }).port}/callback`;
    const start = await fetch(`${apiUrl}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ provider: "corp", redirectUri, codeChallenge: "x".repeat(43), state: "s1" }) });
    const { authorizationUrl } = (await start.json()) as { authorizationUrl: string };
    const tampered = new URL(authorizationUrl);
    tampered.searchParams.set("nonce", "attacker-chosen-nonce");
    const done = await completeLogin(browser, tampered.href, "carol", redirectUri);
    loop.close();
    expect(got, JSON.stringify(done)).not.toBe("");
    const q = new URL(got, "http://x").searchParams;
    expect(q.get("error")).toBe("access_denied");
    expect(q.get("error_description")).toMatch(/nonce/i);
    expect(q.get("code")).toBeNull();
    expect((await authEvents("type=login&outcome=denied")).some((e) => /nonce/i.test(e.reason ?? ""))).toBe(true);
  });

  it("refresh renews the token while the IdP session lives, and stops once the IdP ends it", async () => {
    const r1 = await fetch(`${apiUrl}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token", refresh_token: bob.refreshToken }) });
    expect(r1.status).toBe(200);
    const t1 = (await r1.json()) as { access_token: string; refresh_token: string; groups: string[] };
    expect(t1.groups).toEqual(["developers"]);
    expect((await whoami(t1.access_token)).status).toBe(200);
    // The old refresh token was rotated away.
    const reuse = await fetch(`${apiUrl}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token", refresh_token: bob.refreshToken }) });
    expect(reuse.status).toBe(401);
    await idp.revokeRefreshTokens("bob");
    const r2 = await fetch(`${apiUrl}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token", refresh_token: t1.refresh_token }) });
    expect(r2.status).toBe(401);
    expect(((await r2.json()) as Problem).detail).toMatch(/identity provider ended the session/);
    // Ending the login refuses every token it issued.
    expect((await whoami(t1.access_token)).status).toBe(401);
    expect((await whoami(bob.token)).body.code).toBe("TOKEN_REVOKED");
  });

  it("`airlock logout` ends the sign-in and cuts its live psql session", async () => {
    const c = await env.connect(alice.token);
    await c.query("select 1");
    const closed = new Promise<string>((resolve) => c.on("error", (e) => resolve(e.message)));
    const out = await runCli(["logout"], { AIRLOCK_CONFIG_DIR: alice.profileDir });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/1 live session\(s\) cut/);
    expect(await closed).toMatch(/signed out|revoked/);
    expect((await whoami(alice.token)).body.code).toBe("TOKEN_REVOKED");
  });
});

describe("people: device authorization grant", () => {
  it("`airlock login --device` prints a URL and code; the user approves elsewhere; the CLI gets its token", async () => {
    const profileDir = await tempDir("airlock-profile-");
    const cli = startCli(["login", apiUrl, "--device"], { AIRLOCK_CONFIG_DIR: profileDir, AIRLOCK_URL: undefined, AIRLOCK_TOKEN: undefined });
    const line = await cli.waitFor(/\(or open (\S+)\)/, 20_000);
    const url = /\(or open (\S+)\)/.exec(line)![1]!;
    await completeDeviceLogin(browser, url, "carol");
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/as carol@example\.test \(user; groups analysts\)/);
    const p = JSON.parse(await readFile(join(profileDir, "profile.json"), "utf8")) as { token: string };
    const w = await whoami(p.token);
    expect(w.body).toMatchObject({ subject: "carol@example.test", method: "device", groups: ["analysts"] });
  });
});

describe("machines: client-credentials JWTs straight from the IdP", () => {
  it("psql with the JWT as password: the machine's own identity, its groups in policy, recorded as such", async () => {
    const jwt = await idp.machineToken(AUD);
    const { execFile } = await import("node:child_process");
    const out = await new Promise<string>((resolve, reject) =>
      execFile("psql", [env.url("", { user: "machine" }).replace(":@", "@"), "-Atc", "select count(*) from customers"], { env: { ...process.env, PGPASSWORD: jwt } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
    );
    expect(out.trim()).toBe("2");
    const subject = `corp:${idp.machineClient.clientId}`;
    // psql exits as soon as it has its answer; the gateway closes the session record right after.
    const s = await eventually(async () => {
      const r = await env.gw.api<{ sessions: Array<{ subject: string; subjectKind?: string; authMethod?: string; outcome: string }> }>("GET", `/api/v1/sessions?subject=${encodeURIComponent(subject)}`);
      return r.body.sessions[0]?.outcome === "active" ? undefined : r;
    });
    expect(s.body.sessions[0]).toMatchObject({ subject, subjectKind: "service", authMethod: "jwt", outcome: "ok" });
    const w = await whoami(jwt);
    expect(w.body).toMatchObject({ subject, kind: "service", method: "jwt", groups: ["ai-agents"] });
  });

  it("a service account bound to the machine identity takes over its groups and scope, and its revocation refuses the JWT", async () => {
    const jwt = await idp.machineToken(AUD);
    const sa = await env.gw.api("POST", "/api/v1/serviceaccounts", { name: "etl-agent", groups: ["ai-agents"], connections: [env.connection], externalIds: [`corp:${idp.machineClient.clientId}`] });
    expect(sa.status).toBe(201);
    expect((await whoami(jwt)).body).toMatchObject({ subject: "etl-agent", method: "jwt" });
    expect((await env.gw.api("POST", "/api/v1/serviceaccounts/etl-agent/revoke")).status).toBe(200);
    const w = await whoami(jwt);
    expect(w.status).toBe(401);
    expect(w.body.code).toBe("IDENTITY_DISABLED");
    expect(w.body.detail).toMatch(/etl-agent .* was revoked/);
  });
});

describe("refused credentials: a clear 401 reason and an audit record each", () => {
  it("expired, wrong audience, wrong issuer, alg none, HS256 with the public key, unknown kid", async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: rogue.issuer, aud: AUD, sub: "robot", iat: now, exp: now + 600 };
    const hs = (() => {
      const input = `${b64u({ alg: "HS256", typ: "JWT", kid: "lab-1" })}.${b64u(base)}`;
      return `${input}.${createHmac("sha256", rogue.publicPem).update(input).digest("base64url")}`;
    })();
    const cases: Array<[string, string, string | RegExp]> = [
      ["expired", await rogue.sign({ ...base, iat: now - 7200, exp: now - 3600 }), "TOKEN_EXPIRED"],
      ["wrong audience", await rogue.sign({ ...base, aud: "someone-else" }), "TOKEN_AUDIENCE_MISMATCH"],
      ["wrong audience from the real IdP", await idp.machineToken("https://someone-else.test"), "TOKEN_AUDIENCE_MISMATCH"],
      ["wrong issuer", await rogue.sign({ ...base, iss: "https://evil.example" }), "TOKEN_ISSUER_UNKNOWN"],
      ["alg none", `${b64u({ alg: "none", typ: "JWT" })}.${b64u(base)}.`, "TOKEN_ALGORITHM_REJECTED"],
      ["HS256 signed with the public key", hs, "TOKEN_ALGORITHM_REJECTED"],
      ["unknown kid", await rogue.sign(base, { kid: "not-published" }), "TOKEN_KEY_UNKNOWN"],
    ];
    for (const [what, token, code] of cases) {
      const r = await whoami(token);
      expect(r.status, what).toBe(401);
      expect(r.body.code, what).toBe(code);
      expect(r.body.detail.length, what).toBeGreaterThan(15);
    }
    const ev = await authEvents("type=reject");
    for (const [what, , code] of cases) expect(ev.some((e) => e.code === code), what).toBe(true);
  });

  it("the front door refuses a bad JWT password with FATAL 28P01 and the reason", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await rogue.sign({ iss: rogue.issuer, aud: AUD, sub: "robot", iat: now - 7200, exp: now - 3600 });
    const c = new pg.Client(env.config(expired));
    const err = await errorOf(c.connect());
    expect(err.code).toBe("28P01");
    expect(err.message).toMatch(/expired/);
    const ev = await authEvents("type=reject");
    expect(ev.some((e) => e.via === "postgres" && e.code === "TOKEN_EXPIRED")).toBe(true);
  });
});

describe("deleting a signed-in user", () => {
  it("refuses the user's tokens with that reason", async () => {
    idp.users.set("dan", { username: "dan", email: "dan@example.test", groups: ["analysts"] });
    const dan = await cliLogin("dan");
    expect((await whoami(dan.token)).status).toBe(200);
    expect((await env.gw.api("DELETE", "/api/v1/users/dan%40example.test")).status).toBe(200);
    const w = await whoami(dan.token);
    expect(w.status).toBe(401);
    expect(w.body.code).toBe("IDENTITY_DISABLED");
    expect(w.body.detail).toMatch(/user dan@example.test was deleted/);
    expect((await authEvents("type=reject")).some((e) => /dan@example.test was deleted/.test(e.reason ?? ""))).toBe(true);
  });
});

describe("airlock dev pointed at an issuer", () => {
  it("`airlock dev --issuer … --client-id …` signs people in through the IdP, groups and admin group mapped", async () => {
    const dir = await tempDir("airlock-dev-oidc-");
    const dev = startCli(
      ["dev", "--data-dir", dir, "--api-port", String(devPort), "--agent-port", "0", "--pg-port", "0", "--issuer", idp.issuer, "--client-id", idp.gatewayClient.clientId, "--admin-group", "airlock-admins"],
      { AIRLOCK_OIDC_CLIENT_SECRET: idp.gatewayClient.clientSecret },
    );
    await dev.waitFor(/^ready$/m, 60_000);
    expect(dev.output()).toMatch(/Sign in through .*airlock login/);
    const alice = await cliLogin("alice", `http://127.0.0.1:${devPort}`);
    const who = await runCli(["whoami", "--json"], { AIRLOCK_CONFIG_DIR: alice.profileDir });
    expect(JSON.parse(who.stdout)).toMatchObject({ subject: "alice@example.test", method: "oidc", roles: ["admin"], groups: ["analysts", "airlock-admins"] });
    // The built-in dev identities keep working beside the IdP.
    const info = JSON.parse(await readFile(join(dir, "dev.json"), "utf8")) as { devToken: string };
    const res = await fetch(`http://127.0.0.1:${devPort}/api/v1/whoami`, { headers: { authorization: `Bearer ${info.devToken}` } });
    expect(((await res.json()) as { subject: string; method: string })).toMatchObject({ subject: "dev", method: "dev" });
    await dev.kill("SIGINT");
  });
});
