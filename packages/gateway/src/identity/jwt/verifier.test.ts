import { exportSPKI, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, b64json, expectCode, hmacToken, makeKey, noneToken, sign, TestIdp, type TestKey } from "./test-idp.js";
import { JwtVerifier, type JwtIssuerConfig, type JwtVerifierOptions } from "./verifier.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSec = () => Math.floor(Date.now() / 1000);

let idp: TestIdp;
let rsa: TestKey;
let ec: TestKey;

function issuerCfg(over: Partial<JwtIssuerConfig> = {}, of: TestIdp = idp): JwtIssuerConfig {
  return { name: "corp-idp", issuer: of.issuer, audience: AUDIENCE, ...over };
}
function verifierFor(over: Partial<JwtIssuerConfig> = {}, opts: JwtVerifierOptions = {}, of: TestIdp = idp): JwtVerifier {
  return new JwtVerifier([issuerCfg(over, of)], opts);
}
function hits(of: TestIdp = idp): number {
  return of.discoveryHits + of.jwksHits;
}

beforeAll(async () => {
  [rsa, ec] = await Promise.all([makeKey("RS256", "rsa-1"), makeKey("ES256", "ec-1")]);
  idp = await new TestIdp().start();
  idp.keys = [rsa.jwk, ec.jwk];
});
afterAll(async () => {
  await idp.stop();
});

describe("JwtVerifier: valid tokens", () => {
  it("accepts an RS256 token (JWKS found by discovery) and returns its claims", async () => {
    const v = verifierFor();
    const exp = nowSec() + 120;
    const token = await sign(rsa, idp.issuer, { exp, scope: "db:read" });
    const out = await v.verify(token);
    expect(out.provider).toBe("corp-idp");
    expect(out.issuer).toBe(idp.issuer);
    expect(out.claims).toMatchObject({ iss: idp.issuer, sub: "machine-1", aud: AUDIENCE, scope: "db:read", exp });
    expect(out.expiresAt.getTime()).toBe(exp * 1000);
  });

  it("accepts an ES256 token (explicit jwksUri: no discovery request)", async () => {
    const before = idp.discoveryHits;
    const v = verifierFor({ jwksUri: idp.jwksUri });
    const out = await v.verify(await sign(ec, idp.issuer, { sub: "agent-7" }));
    expect(out.claims.sub).toBe("agent-7");
    expect(idp.discoveryHits).toBe(before);
  });

  it("accepts aud arrays and any of several configured audiences", async () => {
    const v = verifierFor({ audience: ["other-api", AUDIENCE] });
    const out = await v.verify(await sign(rsa, idp.issuer, { aud: ["x", AUDIENCE] }));
    expect(out.claims.aud).toEqual(["x", AUDIENCE]);
  });

  it("accepts typ at+jwt (RFC 9068) and application/at+jwt, and no typ", async () => {
    const v = verifierFor();
    await expect(v.verify(await sign(rsa, idp.issuer, {}, { typ: "at+jwt" }))).resolves.toBeDefined();
    await expect(v.verify(await sign(rsa, idp.issuer, {}, { typ: "application/at+jwt" }))).resolves.toBeDefined();
    await expect(v.verify(await sign(rsa, idp.issuer, {}, { typ: undefined }))).resolves.toBeDefined();
  });

  it("tolerates clock skew: exp 10 s ago passes with the default 30 s tolerance", async () => {
    const out = await verifierFor().verify(await sign(rsa, idp.issuer, { exp: nowSec() - 10 }));
    expect(out.claims.sub).toBe("machine-1");
  });

  it("freezes the returned claims (they are shared through the cache)", async () => {
    const out = await verifierFor().verify(await sign(rsa, idp.issuer, { roles: ["a"] }));
    expect(Object.isFrozen(out)).toBe(true);
    expect(Object.isFrozen(out.claims)).toBe(true);
    expect(Object.isFrozen(out.claims.roles)).toBe(true);
  });

  it("tries every matching key when the token has no kid and the JWKS has several keys", async () => {
    const own = await new TestIdp().start();
    try {
      const other = await makeKey("RS256", "rsa-other");
      const signer = await makeKey("RS256", "rsa-signer");
      own.keys = [other.jwk, signer.jwk].map(({ kid: _kid, ...jwk }) => jwk);
      const token = await sign(signer, own.issuer, {}, { kid: undefined });
      const out = await verifierFor({}, {}, own).verify(token);
      expect(out.issuer).toBe(own.issuer);
    } finally {
      await own.stop();
    }
  });
});

describe("JwtVerifier: rejected claims", () => {
  it("expired → TOKEN_EXPIRED naming the expiry time", async () => {
    const exp = nowSec() - 120;
    const token = await sign(rsa, idp.issuer, { exp });
    const err = await expectCode(verifierFor().verify(token), "TOKEN_EXPIRED", token);
    expect(err.message).toContain(new Date(exp * 1000).toISOString());
  });

  it("nbf in the future → TOKEN_INVALID naming the time", async () => {
    const nbf = nowSec() + 600;
    const token = await sign(rsa, idp.issuer, { nbf });
    const err = await expectCode(verifierFor().verify(token), "TOKEN_INVALID", token);
    expect(err.message).toContain(`not valid before ${new Date(nbf * 1000).toISOString()}`);
  });

  it("wrong audience → TOKEN_AUDIENCE_MISMATCH naming expected and got", async () => {
    const token = await sign(rsa, idp.issuer, { aud: "some-other-app" });
    const err = await expectCode(verifierFor().verify(token), "TOKEN_AUDIENCE_MISMATCH", token);
    expect(err.message).toContain('"some-other-app"');
    expect(err.message).toContain(`"${AUDIENCE}"`);
  });

  it("unknown iss → TOKEN_ISSUER_UNKNOWN naming it, without any network request", async () => {
    const before = hits();
    const token = await sign(rsa, "https://evil.example.com", {});
    const err = await expectCode(verifierFor().verify(token), "TOKEN_ISSUER_UNKNOWN", token);
    expect(err.message).toContain("https://evil.example.com");
    expect(hits()).toBe(before);
  });

  it("missing exp, aud or iss → TOKEN_INVALID naming the claim", async () => {
    const v = verifierFor();
    for (const claim of ["exp", "aud", "iss"] as const) {
      const token = await sign(rsa, idp.issuer, { [claim]: undefined });
      const err = await expectCode(v.verify(token), "TOKEN_INVALID", token);
      expect(err.message).toContain(`"${claim}"`);
    }
  });

  it("typ of another token kind (dpop+jwt) → TOKEN_INVALID", async () => {
    const token = await sign(rsa, idp.issuer, {}, { typ: "dpop+jwt" });
    const err = await expectCode(verifierFor().verify(token), "TOKEN_INVALID", token);
    expect(err.message).toContain("dpop+jwt");
  });
});

describe("JwtVerifier: algorithms and signatures", () => {
  const claims = (): JWTPayload => ({ iss: idp.issuer, sub: "machine-1", aud: AUDIENCE, exp: nowSec() + 300 });

  it('alg "none" (any spelling) → TOKEN_ALGORITHM_REJECTED before any network', async () => {
    const v = verifierFor();
    const before = hits();
    await expectCode(v.verify(noneToken(claims())), "TOKEN_ALGORITHM_REJECTED");
    const shouting = `${b64json({ alg: "NONE" })}.${b64json(claims())}.`;
    await expectCode(v.verify(shouting), "TOKEN_ALGORITHM_REJECTED");
    expect(hits()).toBe(before);
  });

  it("HS256 signed with the issuer's RSA public key PEM as HMAC secret → TOKEN_ALGORITHM_REJECTED", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const v = verifierFor({ jwksUri: idp.jwksUri });
    const before = hits();
    for (const token of [hmacToken(pem, claims(), rsa.kid), hmacToken(pem, claims()), hmacToken(pem.trim(), claims())]) {
      const err = await expectCode(v.verify(token), "TOKEN_ALGORITHM_REJECTED", token);
      expect(err.message).toContain("HS256");
    }
    expect(hits()).toBe(before);
  });

  it("an asymmetric alg outside the issuer's allow list → TOKEN_ALGORITHM_REJECTED listing the allowed ones", async () => {
    const token = await sign(rsa, idp.issuer);
    const err = await expectCode(verifierFor({ algorithms: ["ES256"] }).verify(token), "TOKEN_ALGORITHM_REJECTED", token);
    expect(err.message).toContain("RS256");
    expect(err.message).toContain("allowed: ES256");
  });

  it("tampered payload → TOKEN_SIGNATURE_INVALID", async () => {
    const token = await sign(rsa, idp.issuer, { sub: "machine-1" });
    const [h, p, s] = token.split(".") as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as JWTPayload;
    const forged = `${h}.${b64json({ ...payload, sub: "admin" })}.${s}`;
    await expectCode(verifierFor().verify(forged), "TOKEN_SIGNATURE_INVALID", forged);
  });

  it("tampered signature and a foreign key claiming the issuer's kid → TOKEN_SIGNATURE_INVALID", async () => {
    const v = verifierFor();
    const token = await sign(ec, idp.issuer);
    const [h, p, s] = token.split(".") as [string, string, string];
    const sig = Buffer.from(s, "base64url");
    sig[5] = (sig[5] ?? 0) ^ 0xff;
    await expectCode(v.verify(`${h}.${p}.${sig.toString("base64url")}`), "TOKEN_SIGNATURE_INVALID");

    const attacker = await makeKey("RS256", rsa.kid);
    const forged = await sign(attacker, idp.issuer);
    await expectCode(v.verify(forged), "TOKEN_SIGNATURE_INVALID", forged);
  });
});

describe("JwtVerifier: JWKS rotation and unknown keys", () => {
  it("unknown kid → TOKEN_KEY_UNKNOWN after exactly one refetch; none again within the cooldown", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      const v = verifierFor({ jwksUri: own.jwksUri }, { jwksCooldownMs: 300 }, own);
      await v.verify(await sign(rsa, own.issuer));
      expect(own.jwksHits).toBe(1);
      await sleep(350); // let the cooldown pass
      const stranger = await makeKey("RS256", "not-published");
      const token = await sign(stranger, own.issuer);
      const err = await expectCode(v.verify(token), "TOKEN_KEY_UNKNOWN", token);
      expect(err.message).toContain('"not-published"');
      expect(own.jwksHits).toBe(2);
      // Right after a fetch the cooldown stops a flood of unknown kids from hammering the IdP.
      await expectCode(v.verify(await sign(stranger, own.issuer, { jti: "2" })), "TOKEN_KEY_UNKNOWN");
      expect(own.jwksHits).toBe(2);
    } finally {
      await own.stop();
    }
  });

  it("rotation: a token with a new kid verifies after one refetch", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      const v = verifierFor({ jwksUri: own.jwksUri }, { jwksCooldownMs: 0 }, own);
      await v.verify(await sign(rsa, own.issuer));
      expect(own.jwksHits).toBe(1);

      const next = await makeKey("ES256", "rotated-2");
      own.keys = [next.jwk]; // the IdP rotated: the old key is gone
      const out = await v.verify(await sign(next, own.issuer, { sub: "after-rotation" }));
      expect(out.claims.sub).toBe("after-rotation");
      expect(own.jwksHits).toBe(2);
      // The new key is cached now: further tokens need no fetch.
      await v.verify(await sign(next, own.issuer, { sub: "again" }));
      expect(own.jwksHits).toBe(2);
    } finally {
      await own.stop();
    }
  });
});

describe("JwtVerifier: identity provider availability", () => {
  it("nothing listening → IDP_UNAVAILABLE with cause", async () => {
    const dead = await new TestIdp().start();
    await dead.stop();
    const token = await sign(rsa, dead.issuer);
    const err = await expectCode(verifierFor({}, {}, dead).verify(token), "IDP_UNAVAILABLE", token);
    expect(err.cause).toBeDefined();
    expect(err.message).toContain(dead.issuer);
  });

  it("discovery or JWKS answering 503 → IDP_UNAVAILABLE; recovers once the IdP is back", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      own.mode = "error";
      const token = await sign(rsa, own.issuer);
      const viaDiscovery = verifierFor({}, {}, own);
      const viaJwks = verifierFor({ jwksUri: own.jwksUri }, {}, own);
      expect((await expectCode(viaDiscovery.verify(token), "IDP_UNAVAILABLE", token)).message).toContain("HTTP 503");
      expect((await expectCode(viaJwks.verify(token), "IDP_UNAVAILABLE", token)).message).toContain("/jwks");
      own.mode = "ok";
      await expect(viaDiscovery.verify(token)).resolves.toMatchObject({ provider: "corp-idp" });
      await expect(viaJwks.verify(token)).resolves.toMatchObject({ provider: "corp-idp" });
    } finally {
      await own.stop();
    }
  });

  it("a hanging IdP → IDP_UNAVAILABLE after httpTimeoutMs (discovery and JWKS)", async () => {
    const own = await new TestIdp().start();
    try {
      own.mode = "hang";
      const token = await sign(rsa, own.issuer);
      const started = Date.now();
      const [a, b] = await Promise.all([
        expectCode(verifierFor({}, { httpTimeoutMs: 300 }, own).verify(token), "IDP_UNAVAILABLE"),
        expectCode(verifierFor({ jwksUri: own.jwksUri }, { httpTimeoutMs: 300 }, own).verify(token), "IDP_UNAVAILABLE"),
      ]);
      // The timeout fired: a hanging IdP would otherwise hold the call until the test timed out.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(a.message).toContain("timed out");
      expect(b.message).toContain("timed out");
    } finally {
      await own.stop();
    }
  });

  it("a discovery document naming another issuer → IDP_UNAVAILABLE (its keys are not trusted)", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      own.discoveryOverride = { issuer: "https://someone-else.example.com" };
      const err = await expectCode(verifierFor({}, {}, own).verify(await sign(rsa, own.issuer)), "IDP_UNAVAILABLE");
      expect(err.message).toContain("someone-else");
      expect(own.jwksHits).toBe(0);
    } finally {
      await own.stop();
    }
  });

  it("concurrent first calls share one discovery and one JWKS fetch", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk, ec.jwk];
      const v = verifierFor({}, {}, own);
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(i % 2 ? ec : rsa, own.issuer, { jti: `t${i}` })));
      const results = await Promise.all(tokens.map((t) => v.verify(t)));
      expect(results.map((r) => r.claims.jti)).toEqual(tokens.map((_, i) => `t${i}`));
      expect(own.discoveryHits).toBe(1);
      expect(own.jwksHits).toBe(1);
    } finally {
      await own.stop();
    }
  });
});

describe("JwtVerifier: result cache", () => {
  // jwksCacheMaxAgeMs 0 makes every uncached verification refetch the JWKS, so the
  // fetch counter shows exactly which calls went past the result cache.
  it("a second verify of the same token is served from the cache: same result, no network", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      const v = verifierFor({ jwksUri: own.jwksUri }, { jwksCacheMaxAgeMs: 0 }, own);
      const token = await sign(rsa, own.issuer);
      const first = await v.verify(token);
      expect(own.jwksHits).toBe(1);
      const second = await v.verify(token);
      expect(second).toBe(first);
      expect(second.claims).toEqual(first.claims);
      expect(own.jwksHits).toBe(1);

      v.clear();
      const third = await v.verify(token);
      expect(third).not.toBe(first);
      expect(third.claims).toEqual(first.claims);
      expect(own.jwksHits).toBe(2);
    } finally {
      await own.stop();
    }
  });

  it("resultCacheMs 0 disables the cache; a short resultCacheMs expires entries", async () => {
    const own = await new TestIdp().start();
    try {
      own.keys = [rsa.jwk];
      const token = await sign(rsa, own.issuer);
      const off = verifierFor({ jwksUri: own.jwksUri }, { jwksCacheMaxAgeMs: 0, resultCacheMs: 0 }, own);
      expect(await off.verify(token)).not.toBe(await off.verify(token));
      expect(own.jwksHits).toBe(2);

      const short = verifierFor({ jwksUri: own.jwksUri }, { jwksCacheMaxAgeMs: 0, resultCacheMs: 100 }, own);
      const a = await short.verify(token);
      expect(await short.verify(token)).toBe(a);
      expect(own.jwksHits).toBe(3);
      await sleep(150);
      expect(await short.verify(token)).not.toBe(a);
      expect(own.jwksHits).toBe(4);
    } finally {
      await own.stop();
    }
  });

  it("a cached token is rejected once its exp passes", async () => {
    const v = verifierFor({ clockToleranceSec: 0 });
    const exp = nowSec() + 2;
    const token = await sign(rsa, idp.issuer, { exp });
    const first = await v.verify(token);
    expect(await v.verify(token)).toBe(first); // cached
    await sleep(exp * 1000 - Date.now() + 50);
    const err = await expectCode(v.verify(token), "TOKEN_EXPIRED", token);
    expect(err.message).toContain(new Date(exp * 1000).toISOString());
  });

  // Timing is measured by `pnpm bench auth`, never asserted here: this checks that a large token arriving
  // as a fresh string (as parsed from each request) is a hit, without network, and prints the cost.
  it("a large token arriving as a fresh string is a cache hit (no network), cost printed", async () => {
    const v = verifierFor();
    const token = await sign(rsa, idp.issuer, { groups: Array.from({ length: 80 }, (_, i) => `group-${i}-with-a-long-name`) }); // ~4 KB
    expect(token.length).toBeGreaterThan(3_000);
    const expected = await v.verify(token);
    const bytes = Buffer.from(token);
    const n = 20_000;
    const run = async (count: number) => {
      for (let i = 0; i < count; i++) {
        // A new string per call, like a token parsed out of each request (its hash is not cached).
        if ((await v.verify(bytes.toString("latin1"))) !== expected) throw new Error("cache miss");
      }
    };
    const fetches = idp.jwksHits;
    await run(2_000); // warm up
    const start = process.hrtime.bigint();
    await run(n);
    const perHitUs = Number(process.hrtime.bigint() - start) / n / 1000;
    expect(idp.jwksHits).toBe(fetches);
    console.log(`JwtVerifier cache hit, ${token.length}-char token as a fresh string: ${perHitUs.toFixed(2)} µs`);
  });
});

describe("JwtVerifier: configuration", () => {
  it.each([
    ["HS256 in the allow list", { algorithms: ["RS256", "HS256"] }],
    ["none in the allow list", { algorithms: ["none"] }],
    ["an unknown algorithm", { algorithms: ["RS257"] }],
    ["an empty allow list", { algorithms: [] }],
    ["an empty audience", { audience: [] }],
    ["an empty audience string", { audience: "" }],
    ["a jwksUri that is not a URL", { jwksUri: "not a url" }],
    ["a non-URL issuer without jwksUri", { issuer: "corp" }],
    ["a negative clock tolerance", { clockToleranceSec: -1 }],
  ] as [string, Partial<JwtIssuerConfig>][])("rejects %s with CONFIG_INVALID", (_label, over) => {
    expect(() => verifierFor(over)).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
  });

  it("rejects a duplicate issuer and bad options with CONFIG_INVALID; accepts a non-URL issuer with jwksUri", () => {
    expect(() => new JwtVerifier([issuerCfg(), issuerCfg({ name: "again" })])).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(() => verifierFor({}, { resultCacheMax: -1 })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(() => verifierFor({}, { httpTimeoutMs: 1.5 })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(verifierFor({ issuer: "corp", jwksUri: idp.jwksUri })).toBeInstanceOf(JwtVerifier);
  });
});

describe("JwtVerifier.looksLikeJwt", () => {
  it("routes JWTs (also unsigned ones) to the verifier and opaque tokens away", async () => {
    expect(JwtVerifier.looksLikeJwt(await sign(rsa, idp.issuer))).toBe(true);
    expect(JwtVerifier.looksLikeJwt(noneToken({ iss: "x" }))).toBe(true);
    for (const opaque of ["at_3f9a0c", "ak_Zm9vLmJhci5iYXo", "", "a.b.c", "abc.def", "eyJhbGciOiJSUzI1NiJ9.e30.a.b.c", `${b64json([1])}.e30.sig`, `${b64json({ alg: "RS256" })}..sig`, `${b64json({ alg: "RS256" })}.e30.si+g`]) {
      expect(JwtVerifier.looksLikeJwt(opaque), opaque).toBe(false);
    }
  });
});
