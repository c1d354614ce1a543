// Verifies JWT access tokens that machines and AI agents obtain from an
// OpenID provider (client-credentials grant) and present directly to the
// gateway, as an HTTP bearer token or as the Postgres password.
//
// Order of checks, cheapest and most network-free first:
//   1. result cache (hot path: one Map lookup + expiry check);
//   2. unverified decode: structure, alg (none/HS* rejected outright), iss → issuer config,
//      alg allow list, typ — so forged or foreign tokens never trigger an IdP fetch;
//   3. jose jwtVerify: signature with the issuer's JWKS key, then iss, aud, exp, nbf.
// Every failure is an AirlockError whose message says what was wrong; the token
// text itself never appears in a message.
import { AirlockError } from "@airlock/shared";
import { errors, jwtVerify, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult } from "jose";
import { isForbiddenAlgorithm, resolveIssuers, resolveOptions, type JwtIssuerConfig, type JwtVerifierOptions, type ResolvedIssuer, type ResolvedOptions } from "./config.js";
import { IssuerKeys } from "./issuer-keys.js";
import { mapVerifyError } from "./map-error.js";
import { ResultCache } from "./result-cache.js";
import { decodeUnverified, describeValue, looksLikeJwt } from "./token-parse.js";

export type { JwtIssuerConfig, JwtVerifierOptions } from "./config.js";
export { DEFAULT_ALGORITHMS } from "./config.js";

export interface VerifiedJwt {
  /** Name of the issuer config that accepted the token. */
  provider: string;
  issuer: string;
  /** Verified claims. Shared with the result cache: frozen, treat as read-only. */
  claims: JWTPayload;
  expiresAt: Date;
}

/**
 * `typ` header values accepted (compared case-insensitively, "application/" optional per RFC 7515
 * §4.1.9). Absent is accepted too: most IdPs send "JWT" or nothing; RFC 9068 access tokens send
 * "at+jwt". Anything else (dpop+jwt, logout+jwt, secevent+jwt, ...) is some other kind of token
 * signed by the same key and must not pass as an access token.
 */
const ACCEPTED_TYP: ReadonlySet<string> = new Set(["jwt", "at+jwt"]);

interface IssuerEntry {
  readonly cfg: ResolvedIssuer;
  readonly keys: IssuerKeys;
  readonly verifyOptions: JWTVerifyOptions;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export class JwtVerifier {
  private readonly issuers = new Map<string, IssuerEntry>();
  private readonly opts: ResolvedOptions;
  private readonly results: ResultCache<VerifiedJwt>;
  /** Bumped by clear(): results of verifications that started before it are not cached. */
  private generation = 0;

  constructor(issuers: JwtIssuerConfig[], opts?: JwtVerifierOptions) {
    this.opts = resolveOptions(opts);
    this.results = new ResultCache(this.opts.resultCacheMs > 0 ? this.opts.resultCacheMax : 0);
    for (const [iss, cfg] of resolveIssuers(issuers)) {
      this.issuers.set(iss, {
        cfg,
        keys: new IssuerKeys(cfg, this.opts),
        verifyOptions: {
          issuer: cfg.issuer,
          audience: [...cfg.audience],
          algorithms: [...cfg.algorithms],
          clockTolerance: cfg.clockToleranceSec,
          // An access token without expiry would stay valid forever.
          requiredClaims: ["exp"],
        },
      });
    }
  }

  /** Cheap syntactic check: three base64url segments and a JSON header (routes JWTs vs. opaque "at_"/"ak_" tokens). */
  static looksLikeJwt(token: string): boolean {
    return looksLikeJwt(token);
  }

  /** Verifies signature, alg allow list, iss, aud, exp, nbf; throws AirlockError (TOKEN_*, IDP_UNAVAILABLE). */
  async verify(token: string): Promise<VerifiedJwt> {
    if (typeof token === "string") {
      const hit = this.results.get(token, Date.now());
      if (hit !== undefined) return hit;
    }
    const generation = this.generation;
    let result: VerifiedJwt;
    try {
      result = await this.verifyUncached(token);
    } catch (err) {
      // Belt and braces: whatever escapes is still a 401-style AirlockError, never a raw error.
      throw err instanceof AirlockError ? err : new AirlockError("TOKEN_INVALID", "token could not be verified", { cause: err });
    }
    if (generation === this.generation) {
      const now = Date.now();
      this.results.set(token, result, Math.min(result.expiresAt.getTime(), now + this.opts.resultCacheMs), now);
    }
    return result;
  }

  /** Drops cached results (e.g. after config reload). JWKS caches are kept. */
  clear(): void {
    this.generation++;
    this.results.clear();
  }

  private async verifyUncached(token: string): Promise<VerifiedJwt> {
    const { header, payload } = decodeUnverified(token);

    const { alg } = header;
    if (typeof alg !== "string" || alg === "") throw new AirlockError("TOKEN_INVALID", 'token header has no "alg"');
    // Before the issuer lookup: these are wrong whatever the issuer. HS* with a public key as
    // HMAC secret is the classic key-confusion forgery; "none" is no signature at all.
    if (isForbiddenAlgorithm(alg)) {
      throw new AirlockError(
        "TOKEN_ALGORITHM_REJECTED",
        `token algorithm ${describeValue(alg)} is never accepted: tokens must be signed with an asymmetric algorithm`,
      );
    }

    const { iss } = payload;
    if (iss === undefined) throw new AirlockError("TOKEN_INVALID", 'token has no "iss" claim');
    if (typeof iss !== "string") throw new AirlockError("TOKEN_INVALID", `token "iss" claim must be a string, got ${describeValue(iss)}`);
    const entry = this.issuers.get(iss);
    if (entry === undefined) throw new AirlockError("TOKEN_ISSUER_UNKNOWN", `token issuer ${describeValue(iss)} is not a trusted issuer`);
    const { cfg } = entry;

    if (!cfg.algorithmSet.has(alg)) {
      throw new AirlockError(
        "TOKEN_ALGORITHM_REJECTED",
        `token algorithm ${describeValue(alg)} is not accepted for issuer ${cfg.issuer} (allowed: ${cfg.algorithms.join(", ")})`,
      );
    }

    const { typ } = header;
    if (typ !== undefined) {
      const normalized = typeof typ === "string" ? typ.toLowerCase().replace(/^application\//, "") : undefined;
      if (normalized === undefined || !ACCEPTED_TYP.has(normalized)) {
        throw new AirlockError("TOKEN_INVALID", `token type (typ header) ${describeValue(typ)} is not an access token type (expected JWT or at+jwt)`);
      }
    }

    let verified: JWTVerifyResult;
    try {
      verified = await this.verifySignatureAndClaims(token, entry);
    } catch (err) {
      throw mapVerifyError(err, { cfg, alg, kid: header.kid });
    }

    const claims = verified.payload;
    const expiresAt = new Date((claims.exp ?? Number.NaN) * 1000);
    if (Number.isNaN(expiresAt.getTime())) {
      throw new AirlockError("TOKEN_INVALID", `token "exp" claim ${describeValue(claims.exp)} is not a usable time`);
    }
    return Object.freeze({ provider: cfg.name, issuer: cfg.issuer, claims: deepFreeze(claims), expiresAt });
  }

  private async verifySignatureAndClaims(token: string, entry: IssuerEntry): Promise<JWTVerifyResult> {
    try {
      return await jwtVerify(token, entry.keys.getKey, entry.verifyOptions);
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // Several JWKS keys fit (token without kid, or a reused kid): the token is good if one of
      // them verifies it. jose leaves this loop to the caller.
      for await (const key of err) {
        try {
          return await jwtVerify(token, key, entry.verifyOptions);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }
}
