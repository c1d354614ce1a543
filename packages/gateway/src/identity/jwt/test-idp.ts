// Test helper: a real local HTTP "OpenID provider" serving a discovery
// document and a JWKS the test controls, counting every request so tests can
// assert exactly how often the verifier went to the network.
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AirlockError, type ErrorCode } from "@airlock/shared";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { expect } from "vitest";

export interface TestKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(alg: "RS256" | "ES256", kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

export type IdpMode = "ok" | "error" | "hang";

export class TestIdp {
  /** Keys published in the JWKS; replace to simulate rotation. */
  keys: JWK[] = [];
  mode: IdpMode = "ok";
  /** Overrides of the discovery document (e.g. a different issuer). */
  discoveryOverride: Record<string, unknown> = {};
  discoveryHits = 0;
  jwksHits = 0;
  private server: Server | undefined;
  private hanging = new Set<import("node:http").ServerResponse>();
  issuer = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (path === "/.well-known/openid-configuration") this.discoveryHits++;
      else if (path === "/jwks") this.jwksHits++;
      if (this.mode === "hang") {
        this.hanging.add(res);
        return;
      }
      if (this.mode === "error") {
        res.writeHead(503).end("down");
        return;
      }
      res.setHeader("content-type", "application/json");
      if (path === "/.well-known/openid-configuration") {
        res.end(JSON.stringify({ issuer: this.issuer, jwks_uri: `${this.issuer}/jwks`, ...this.discoveryOverride }));
      } else if (path === "/jwks") {
        res.end(JSON.stringify({ keys: this.keys }));
      } else {
        res.writeHead(404).end("{}");
      }
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.issuer = `http://127.0.0.1:${port}`;
    return this;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export const AUDIENCE = "airlock-gateway";

/** Signs a token for `idp` with sensible defaults (valid for 5 min, aud = AUDIENCE); `claims` override. */
export async function sign(
  key: TestKey,
  issuer: string,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: issuer, sub: "machine-1", aud: AUDIENCE, iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .sign(key.privateKey);
}

export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Unsigned token: {"alg":"none"} header, payload, empty signature. */
export function noneToken(payload: JWTPayload): string {
  return `${b64json({ alg: "none", typ: "JWT" })}.${b64json(payload)}.`;
}

/** The key-confusion forgery: HS256 with the issuer's public key (PEM text) as HMAC secret. */
export function hmacToken(secret: string, payload: JWTPayload, kid?: string): string {
  const input = `${b64json({ alg: "HS256", typ: "JWT", ...(kid === undefined ? {} : { kid }) })}.${b64json(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Deterministic PRNG so fuzz failures reproduce. */
export { mulberry32 as prng } from "../../test-prng.js";

export async function rejection(promise: Promise<unknown>): Promise<AirlockError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AirlockError);
    return err as AirlockError;
  }
  throw new Error("expected the promise to reject");
}

/** Asserts the code, and that the message never echoes the token (or its signature). */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode, token?: string): Promise<AirlockError> {
  const err = await rejection(promise);
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  if (token !== undefined && token.length >= 16) {
    expect(err.message).not.toContain(token);
    const sig = token.split(".")[2];
    if (sig !== undefined && sig.length >= 16) expect(err.message).not.toContain(sig);
  }
  return err;
}
