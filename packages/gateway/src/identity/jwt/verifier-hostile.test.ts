import type { ErrorCode } from "@airlock/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, b64json, expectCode, makeKey, prng, rejection, sign, TestIdp, type TestKey } from "./test-idp.js";
import { JwtVerifier } from "./verifier.js";

// Hostile input: whatever arrives as a bearer token or Postgres password, the
// verifier answers with a 401-style AirlockError, promptly, without echoing the
// token and without sending requests to the IdP.

const nowSec = () => Math.floor(Date.now() / 1000);

let idp: TestIdp;
let rsa: TestKey;
let ec: TestKey;

beforeAll(async () => {
  [rsa, ec] = await Promise.all([makeKey("RS256", "rsa-1"), makeKey("ES256", "ec-1")]);
  idp = await new TestIdp().start();
  idp.keys = [rsa.jwk, ec.jwk];
});
afterAll(async () => {
  await idp.stop();
});

function verifierFor(): JwtVerifier {
  return new JwtVerifier([{ name: "corp-idp", issuer: idp.issuer, jwksUri: idp.jwksUri, audience: AUDIENCE }]);
}

describe("JwtVerifier: hostile input", () => {
  const ALLOWED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
    "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_ISSUER_UNKNOWN", "TOKEN_AUDIENCE_MISMATCH",
    "TOKEN_ALGORITHM_REJECTED", "TOKEN_KEY_UNKNOWN", "TOKEN_SIGNATURE_INVALID",
  ]);

  it("garbage strings → TOKEN_INVALID", async () => {
    const v = verifierFor();
    const garbage: unknown[] = [
      "", ".", "..", "...", "a.b.c", "at_123", "Bearer x.y.z", " ", "\u0000.\u0000.\u0000", "é.é.é", "x".repeat(40_000),
      `${b64json({ alg: "RS256" })}.${b64json({ iss: idp.issuer })}`, // two parts
      `${b64json({ alg: "RS256" })}.${b64json([1, 2])}.sig`, // payload not an object
      `${b64json("RS256")}.${b64json({})}.sig`, // header not an object
      `${b64json({ alg: "RS256" })}.${b64json({ iss: 42 })}.sig`, // iss not a string
      `${b64json({ kid: "rsa-1" })}.${b64json({ iss: idp.issuer })}.sig`, // no alg
      `${b64json({ alg: "RS256" })}.${b64json({ sub: "x" })}.sig`, // no iss
      `${b64json({ alg: "RSA-OAEP", enc: "A256GCM" })}.a.b.c.d`, // JWE
      `${b64json({ alg: "RS256" })}.${b64json({ iss: idp.issuer })}.sig=`, // padded
      undefined, null, 42, {},
    ];
    for (const g of garbage) {
      const err = await expectCode(v.verify(g as string), "TOKEN_INVALID", typeof g === "string" ? g : undefined);
      expect(err.message.length).toBeLessThan(400);
    }
  });

  it("2000 random and mutated tokens each fail with an AirlockError, never hanging", async () => {
    const rand = prng(0x5eed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const int = (n: number) => Math.floor(rand() * n);
    const v = verifierFor();
    const bases = [await sign(rsa, idp.issuer), await sign(ec, idp.issuer)];
    for (const b of bases) await v.verify(b); // warm the JWKS; unknown kids stay within the cooldown
    v.clear();
    const jwksBefore = idp.jwksHits;

    const CHARS = "ABCxyz019-_.=+/ \u00e9\u0000\"{}";
    const algs = ["RS256", "ES256", "PS256", "none", "None", "HS256", "HS512", "", "EdDSA", "RS256 ", 5, null, ["RS256"]];
    const kids = ["rsa-1", "ec-1", "zzz", 7, null, undefined, ""];
    const jsonish = ['{"alg":"RS256","kid":"rsa-1"', "[]", "null", '"x"', "{}", '{"__proto__":{"alg":"none"}}', '{"alg":"RS256","crit":["exp"],"exp":1}', '{"alg":"RS256","b64":false,"crit":["b64"]}', "1e400", '{"iss":"x","exp":1e400}'];
    const randomString = (len: number) => Array.from({ length: len }, () => pick([...CHARS])).join("");
    const randomClaims = (): Record<string, unknown> => ({
      iss: pick([idp.issuer, `${idp.issuer}/`, "https://evil", 1, null, undefined]),
      aud: pick([AUDIENCE, [AUDIENCE], "other", [], 3, undefined]),
      exp: pick([nowSec() + 300, nowSec() - 300, "soon", 1e400, -1, null, undefined]),
      nbf: pick([undefined, nowSec() + 999, "x"]),
      sub: pick(["machine-1", "admin", {}]),
    });

    const mutate = (base: string): string => {
      const parts = base.split(".") as [string, string, string];
      switch (int(9)) {
        case 0: { const i = int(base.length); return base.slice(0, i) + pick([...CHARS]) + base.slice(i + 1); }
        case 1: { const i = int(base.length); return base.slice(0, i) + base.slice(i + 1 + int(20)); }
        case 2: { const i = int(base.length); return base.slice(0, i) + randomString(1 + int(10)) + base.slice(i); }
        case 3: return base.slice(0, int(base.length));
        case 4: return [pick(parts), pick(parts), pick(parts)].join(".");
        case 5: return `${b64json({ alg: pick(algs), kid: pick(kids), typ: pick(["JWT", "at+jwt", "dpop+jwt", 1, undefined]) })}.${parts[1]}.${parts[2]}`;
        case 6: return `${parts[0]}.${b64json(randomClaims())}.${parts[2]}`;
        case 7: return `${Buffer.from(pick(jsonish)).toString("base64url")}.${Buffer.from(pick(jsonish)).toString("base64url")}.${pick([parts[2], "", randomString(int(50))])}`;
        default: return randomString(int(300));
      }
    };
    // Only signature bytes can survive a text change (base64url's unused trailing bits):
    // such a "mutation" is still the original token, so it is not a hostile input.
    const sameAsBase = (t: string) =>
      bases.some((b) => {
        const [bh, bp, bs] = b.split(".") as [string, string, string];
        const [h, p, s, extra] = t.split(".");
        return extra === undefined && h === bh && p === bp && s !== undefined && Buffer.from(s, "base64url").equals(Buffer.from(bs, "base64url"));
      });

    const codes = new Map<string, number>();
    let tried = 0;
    while (tried < 2000) {
      const token = mutate(pick(bases));
      if (sameAsBase(token)) continue;
      tried++;
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`verify hung on fuzz case #${tried}`)), 3_000);
      });
      const err = await rejection(Promise.race([v.verify(token), hang])).finally(() => clearTimeout(timer));
      expect(ALLOWED.has(err.code), `${err.code}: ${err.message}`).toBe(true);
      if (token.length >= 16) expect(err.message).not.toContain(token);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
    expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(2000);
    expect(codes.size).toBeGreaterThanOrEqual(5); // the mutations reach deep into verification, not only the parser
    expect(idp.jwksHits).toBe(jwksBefore); // no fuzz case made the verifier hammer the IdP
  });
});
