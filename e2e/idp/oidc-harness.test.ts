// Self-test of the test IdP harness (oidc-provider.ts + browser.ts): real
// oidc-provider, real Chromium, plain fetch + jose as the relying party.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { completeDeviceLogin, completeLogin, launchBrowser } from "./browser.js";
import { startTestOidc, type TestOidc } from "./oidc-provider.js";

interface TokenResponse {
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  error?: string;
  error_description?: string;
}

let idp: TestOidc;
let browser: Browser;
let cbServer: http.Server;
let callbackUrl: string;
const FULL_SCOPE = "openid profile email groups offline_access";

const b64url = (b: Buffer) => b.toString("base64url");

function pkcePair() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash("sha256").update(verifier).digest()) };
}

async function tokenRequest(params: Record<string, string>, auth: "basic" | "post" = "basic"): Promise<{ status: number; body: TokenResponse }> {
  const { clientId, clientSecret } = idp.gatewayClient;
  const body = new URLSearchParams(params);
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (auth === "basic") headers.authorization = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`;
  else {
    body.set("client_id", clientId);
    body.set("client_secret", clientSecret);
  }
  const res = await fetch(`${idp.issuer}/token`, { method: "POST", headers, body });
  return { status: res.status, body: (await res.json()) as TokenResponse };
}

async function verifyIdToken(idToken: string, nonce?: string): Promise<JWTPayload> {
  const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
  const { payload } = await jwtVerify(idToken, jwks, { issuer: idp.issuer, audience: idp.gatewayClient.clientId });
  if (nonce !== undefined) expect(payload.nonce).toBe(nonce);
  return payload;
}

beforeAll(async () => {
  cbServer = http.createServer((req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(`callback received ${req.url}`);
  });
  await new Promise<void>((r) => cbServer.listen(0, "127.0.0.1", r));
  callbackUrl = `http://127.0.0.1:${(cbServer.address() as AddressInfo).port}/callback`;
  idp = await startTestOidc({ redirectUris: [callbackUrl] });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await idp?.stop();
  cbServer?.closeAllConnections();
  await new Promise((r) => cbServer?.close(r));
});

describe("test OpenID provider harness", () => {
  it("publishes discovery metadata with the flows the gateway needs", async () => {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const md = (await res.json()) as Record<string, unknown>;
    expect(md.issuer).toBe(idp.issuer);
    expect(md.token_endpoint).toBe(`${idp.issuer}/token`);
    expect(md.device_authorization_endpoint).toBe(`${idp.issuer}/device/auth`);
    expect(md.jwks_uri).toBe(`${idp.issuer}/jwks`);
    expect(md.grant_types_supported).toEqual(
      expect.arrayContaining(["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"]),
    );
    expect(md.code_challenge_methods_supported).toEqual(["S256"]);
    expect(md.scopes_supported).toEqual(expect.arrayContaining(["openid", "profile", "email", "groups", "offline_access"]));
    expect(md.claims_supported).toEqual(expect.arrayContaining(["groups", "email", "preferred_username"]));
    expect(md.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(["client_secret_basic", "client_secret_post"]));
  });

  it("rejects an authorization request without PKCE", async () => {
    const u = new URL(`${idp.issuer}/auth`);
    u.search = new URLSearchParams({ client_id: idp.gatewayClient.clientId, response_type: "code", redirect_uri: callbackUrl, scope: "openid", state: "s1" }).toString();
    const res = await fetch(u, { redirect: "manual" });
    expect(res.status).toBe(303);
    const loc = new URL(res.headers.get("location")!);
    expect(`${loc.origin}${loc.pathname}`).toBe(callbackUrl);
    expect(loc.searchParams.get("error")).toBe("invalid_request");
    expect(loc.searchParams.get("error_description")).toMatch(/PKCE/);
  });

  it("code + PKCE in a browser yields an ID token with groups and a refresh token; refresh works until revoked", async () => {
    const { verifier, challenge } = pkcePair();
    const state = b64url(randomBytes(12));
    const nonce = b64url(randomBytes(12));
    const auth = new URL(`${idp.issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: idp.gatewayClient.clientId,
      response_type: "code",
      redirect_uri: callbackUrl,
      scope: FULL_SCOPE,
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: "S256",
    }).toString();

    const { finalUrl, matchedUrl, text } = await completeLogin(browser, auth.href, "alice", callbackUrl);
    expect(finalUrl.startsWith(callbackUrl)).toBe(true);
    expect(text).toContain("callback received /callback?");
    const cb = new URL(matchedUrl);
    expect(cb.searchParams.get("state")).toBe(state);
    expect(cb.searchParams.get("iss")).toBe(idp.issuer);
    const code = cb.searchParams.get("code");
    expect(code).toBeTruthy();

    const tok = await tokenRequest({ grant_type: "authorization_code", code: code!, redirect_uri: callbackUrl, code_verifier: verifier });
    expect(tok.status, JSON.stringify(tok.body)).toBe(200);
    expect(tok.body.refresh_token).toBeTruthy();
    expect(tok.body.scope?.split(" ")).toEqual(expect.arrayContaining(["openid", "groups", "offline_access"]));
    const claims = await verifyIdToken(tok.body.id_token!, nonce);
    expect(claims).toMatchObject({
      sub: "alice",
      preferred_username: "alice",
      email: "alice@example.test",
      name: "Alice Admin",
      groups: ["airlock-admins", "engineering"],
    });

    // The (opaque) access token works at userinfo.
    const ui = await fetch(`${idp.issuer}/me`, { headers: { authorization: `Bearer ${tok.body.access_token}` } });
    expect(ui.status).toBe(200);
    expect(await ui.json()).toMatchObject({ sub: "alice", groups: ["airlock-admins", "engineering"] });

    // A runtime change to the user's groups shows up in the refreshed ID token.
    idp.users.set("alice", { ...idp.users.get("alice")!, groups: ["engineering"] });
    const refreshed = await tokenRequest({ grant_type: "refresh_token", refresh_token: tok.body.refresh_token! }, "post");
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect((await verifyIdToken(refreshed.body.id_token!)).groups).toEqual(["engineering"]);
    const currentRefresh = refreshed.body.refresh_token ?? tok.body.refresh_token!;

    await idp.revokeRefreshTokens("alice");
    const denied = await tokenRequest({ grant_type: "refresh_token", refresh_token: currentRefresh });
    expect(denied.status).toBe(400);
    expect(denied.body.error).toBe("invalid_grant");
    // The code cannot be replayed either.
    const replay = await tokenRequest({ grant_type: "authorization_code", code: code!, redirect_uri: callbackUrl, code_verifier: verifier });
    expect(replay.body.error).toBe("invalid_grant");
  });

  it("device flow: browser approval, then polling yields tokens with groups", async () => {
    idp.users.set("carol", { username: "carol", email: "carol@example.test", groups: ["db-readers"] });
    const res = await fetch(`${idp.issuer}/device/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: idp.gatewayClient.clientId, client_secret: idp.gatewayClient.clientSecret, scope: FULL_SCOPE }),
    });
    expect(res.status).toBe(200);
    const da = (await res.json()) as { device_code: string; user_code: string; verification_uri: string; verification_uri_complete: string; interval: number };
    expect(da.verification_uri).toBe(`${idp.issuer}/device`);
    expect(new URL(da.verification_uri_complete).searchParams.get("user_code")).toBe(da.user_code);

    const grant = { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: da.device_code };
    const pending = await tokenRequest(grant);
    expect(pending.body.error).toBe("authorization_pending");

    await completeDeviceLogin(browser, da.verification_uri_complete, "carol");

    const tok = await tokenRequest(grant);
    expect(tok.status, JSON.stringify(tok.body)).toBe(200);
    expect(tok.body.refresh_token).toBeTruthy();
    expect(await verifyIdToken(tok.body.id_token!)).toMatchObject({ sub: "carol", email: "carol@example.test", groups: ["db-readers"] });
    const again = await tokenRequest(grant);
    expect(again.body.error).toBe("invalid_grant");
  });

  it("machineToken returns an RS256 JWT for the requested audience with the client's groups", async () => {
    const aud = "http://gateway.test/api";
    const token = await idp.machineToken(aud);
    const header = decodeProtectedHeader(token);
    expect(header).toMatchObject({ alg: "RS256", typ: "at+jwt", kid: idp.signingKids()[0] });
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const { payload } = await jwtVerify(token, jwks, { issuer: idp.issuer, audience: aud, typ: "at+jwt" });
    expect(payload).toMatchObject({ sub: idp.machineClient.clientId, client_id: idp.machineClient.clientId, groups: ["ai-agents"] });
    expect(payload.exp! - payload.iat!).toBe(600);

    await expect(jwtVerify(token, jwks, { issuer: idp.issuer, audience: "http://other.test" })).rejects.toThrow(/aud/);
    await expect(idp.machineToken(aud, { clientSecret: "wrong" })).rejects.toThrow(/invalid_client/);
    // The gateway client may not use client_credentials.
    await expect(idp.machineToken(aud, idp.gatewayClient)).rejects.toThrow(/grant type is not allowed/);
  });

  it("rotateKeys publishes a new signing key and optionally drops the old one", async () => {
    const aud = "http://gateway.test/api";
    const [oldKid] = idp.signingKids();
    const oldToken = await idp.machineToken(aud);
    const jwksKids = async () => ((await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

    await idp.rotateKeys();
    const [newKid] = idp.signingKids();
    expect(newKid).not.toBe(oldKid);
    expect(await jwksKids()).toEqual([newKid, oldKid]);
    const newToken = await idp.machineToken(aud);
    expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    await jwtVerify(oldToken, jwks, { issuer: idp.issuer, audience: aud });
    await jwtVerify(newToken, jwks, { issuer: idp.issuer, audience: aud });

    await idp.rotateKeys({ keepOld: false });
    const kids = await jwksKids();
    expect(kids).toHaveLength(1);
    expect(kids).not.toContain(oldKid);
    expect(kids).not.toContain(newKid);
    await expect(jwtVerify(oldToken, createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)), { issuer: idp.issuer, audience: aud })).rejects.toThrow(
      /no applicable key/i,
    );
  });
});
