// SAML 2.0 sign-in end to end: real gateway process, the built CLI
// (`airlock login` with its loopback redirect), and a STAND-IN SAML IdP built
// in the tests (packages/gateway/src/identity/saml/test-idp.ts: its own key and
// certificate, assertions signed with xml-crypto). No real SAML IdP runs on
// this machine; the stand-in plays the IdP's part of the HTTP-Redirect /
// HTTP-POST bindings: it reads the gateway's AuthnRequest and posts back a
// signed Response, as a browser would auto-submit the IdP's form.
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestSamlIdp, type TestSamlIdp } from "../packages/gateway/src/identity/saml/test-idp.js";
import { runCli } from "./harness/cli-helpers.js";
import { killAll, startCli, startGateway, tempDir, type GatewayProc } from "./harness/processes.js";

let gw: GatewayProc;
let idp: TestSamlIdp;

beforeAll(async () => {
  idp = await createTestSamlIdp({ entityId: "https://idp.stand-in.test", ssoUrl: "http://idp.stand-in.test/sso" });
  const dir = await tempDir("airlock-saml-");
  const file = join(dir, "identity.json");
  await writeFile(file, JSON.stringify({ saml: [{ name: "corp-saml", entryPoint: idp.ssoUrl, idpCert: idp.certPem, groupsAttribute: "groups" }], roleMappings: [{ group: "auditors", roles: ["auditor"] }] }));
  gw = await startGateway({ env: { AIRLOCK_IDENTITY_FILE: file } });
}, 60_000);

afterAll(async () => {
  await killAll();
});

/** What the user's browser does at the IdP: the stand-in answers the AuthnRequest, the form is posted to the ACS. */
async function postToAcs(authUrl: string, opts: Partial<Parameters<TestSamlIdp["respond"]>[0]> = {}, nameId = "grace@example.test", groups = ["analysts", "auditors"]) {
  const req = idp.parseRequest(authUrl);
  const SAMLResponse = idp.respond({ inResponseTo: req.id, acsUrl: req.acsUrl, audience: req.issuer, nameId, attributes: { email: nameId, groups }, ...opts });
  const form = new URLSearchParams({ SAMLResponse, RelayState: req.relayState ?? "" });
  const res = await fetch(req.acsUrl, { method: "POST", body: form, headers: { "content-type": "application/x-www-form-urlencoded" }, redirect: "manual" });
  return { res, form, req };
}

async function startLogin(): Promise<{ authorizationUrl: string; loop: http.Server; got: Promise<URL> }> {
  let resolve!: (u: URL) => void;
  const got = new Promise<URL>((r) => (resolve = r));
  const loop = http.createServer((req, res) => {
    res.end("ok");
    if (req.url?.startsWith("/callback")) resolve(new URL(req.url, "http://127.0.0.1"));
  });
  await new Promise<void>((r) => loop.listen(0, "127.0.0.1", r));
  const redirectUri = `http://127.0.0.1:${(loop.address() as { port: number }).port}/callback`;
  const r = await gw.api<{ authorizationUrl: string }>("POST", "/api/v1/auth/login", { provider: "corp-saml", redirectUri, codeChallenge: "y".repeat(43) });
  return { authorizationUrl: r.body.authorizationUrl, loop, got };
}

describe("SAML sign-in with signed assertions", () => {
  let replay: { acsUrl: string; form: URLSearchParams };

  it("`airlock login` → AuthnRequest → signed assertion → gateway token with the IdP's groups mapped to roles", async () => {
    const profileDir = await tempDir("airlock-profile-");
    const cli = startCli(["login", gw.apiUrl, "--no-browser"], { AIRLOCK_CONFIG_DIR: profileDir, AIRLOCK_URL: undefined, AIRLOCK_TOKEN: undefined });
    const line = await cli.waitFor(/^\s+http:\/\/idp\.stand-in\.test\S+$/m, 20_000);
    const { res, form, req } = await postToAcs(line.trim());
    expect(res.status).toBe(302);
    const back = res.headers.get("location")!;
    expect(back).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback\?.*code=alk_lc_/);
    const page = await fetch(back);
    expect(await page.text()).toMatch(/Signed in to Airlock/);
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(0);
    replay = { acsUrl: req.acsUrl, form };
    const profile = JSON.parse(await readFile(join(profileDir, "profile.json"), "utf8")) as { token: string; refreshToken?: string };
    const who = await runCli(["whoami", "--json"], { AIRLOCK_CONFIG_DIR: profileDir });
    expect(JSON.parse(who.stdout)).toMatchObject({ subject: "grace@example.test", method: "saml", provider: "corp-saml", groups: ["analysts", "auditors"], roles: ["auditor"] });
    // Refresh is bounded by the SAML session (SessionNotOnOrAfter, or the gateway's maximum).
    expect(profile.refreshToken).toMatch(/^alk_rt_/);
    const r = await fetch(`${gw.apiUrl}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token", refresh_token: profile.refreshToken }) });
    expect(r.status).toBe(200);
  });

  it("the same SAMLResponse posted again is refused as a replay, with an audit record", async () => {
    const res = await fetch(replay.acsUrl, { method: "POST", body: replay.form, headers: { "content-type": "application/x-www-form-urlencoded" }, redirect: "manual" });
    expect(res.status).toBe(401);
    const p = (await res.json()) as { code: string; detail: string };
    expect(p.code).toBe("LOGIN_FAILED");
    expect(p.detail).toMatch(/replayed/);
  });

  const refusals: Array<[string, Partial<Parameters<TestSamlIdp["respond"]>[0]>, RegExp]> = [
    ["an unsigned assertion", { sign: false }, /sign/i],
    ["an assertion signed by another key", { signWithOtherKey: true }, /signature/i],
    ["an assertion changed after signing", { tamper: (x) => x.replace("analysts", "admins") }, /signature|digest/i],
    ["an expired assertion", { notOnOrAfter: new Date(Date.now() - 600_000), sessionNotOnOrAfter: new Date(Date.now() - 600_000) }, /expired|NotOnOrAfter|too late/i],
    ["another audience", { audience: "https://someone-else.test" }, /audience/i],
  ];
  for (const [what, opts, reason] of refusals) {
    it(`refuses ${what}: the client gets access_denied with the reason, no code, and it is recorded`, async () => {
      const { authorizationUrl, loop, got } = await startLogin();
      const { res } = await postToAcs(authorizationUrl, opts);
      expect(res.status).toBe(302);
      await fetch(res.headers.get("location")!);
      const u = await got;
      loop.close();
      expect(u.searchParams.get("code")).toBeNull();
      expect(u.searchParams.get("error")).toBe("access_denied");
      expect(u.searchParams.get("error_description")).toMatch(reason);
      const ev = await gw.api<{ events: Array<{ type: string; outcome: string; via: string; reason: string }> }>("GET", "/api/v1/auth/events?type=login&outcome=denied&limit=100");
      expect(ev.body.events.some((e) => e.via === "saml" && reason.test(e.reason))).toBe(true);
    });
  }

  it("publishes SP metadata for the IdP admin", async () => {
    const res = await fetch(`${gw.apiUrl}/api/v1/auth/saml/corp-saml/metadata`);
    const xml = await res.text();
    expect(res.status).toBe(200);
    expect(xml).toContain(`${gw.apiUrl}/api/v1/auth/saml/corp-saml/acs`);
  });
});
