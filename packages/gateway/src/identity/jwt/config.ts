// Configuration of the JWT verifier and its validation. Mistakes that would
// weaken verification (symmetric or "none" algorithms, no audience) fail at
// construction with CONFIG_INVALID instead of surfacing as odd 401s later.
import { AirlockError } from "@airlock/shared";

export interface JwtIssuerConfig {
  /** Provider name used in the result (e.g. "corp-idp"). */
  name: string;
  /** Exact expected `iss`. */
  issuer: string;
  /** JWKS URL; when absent, discovered once from `${issuer}/.well-known/openid-configuration` (jwks_uri). */
  jwksUri?: string;
  /** The gateway's audience(s): the token's aud must contain one. Required. */
  audience: string | string[];
  /**
   * Allowed algorithms; default {@link DEFAULT_ALGORITHMS}. HS* and none are never allowed even if
   * listed (construction throws CONFIG_INVALID).
   */
  algorithms?: string[];
  /** Clock skew tolerance in seconds, default 30. */
  clockToleranceSec?: number;
}

export interface JwtVerifierOptions {
  /** Verified results are cached by token text until min(exp, now + resultCacheMs); default 60_000. 0 disables. */
  resultCacheMs?: number;
  /** Max cached results (bounded; evict oldest), default 10_000. */
  resultCacheMax?: number;
  /** JWKS cache: keys refetched at most this often when an unknown kid shows up (rotation), default 30_000 (jose's cooldownDuration). */
  jwksCooldownMs?: number;
  /** JWKS max age before a refetch, default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** Timeout for JWKS/discovery HTTP, default 5000. */
  httpTimeoutMs?: number;
}

export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze([
  "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]);

/**
 * Every algorithm that may appear in an allow list: the asymmetric JWS algorithms jose verifies
 * with public keys from a JWKS. Anything else (typos, HS*, none, experimental names) is a
 * configuration error rather than a silently dead entry.
 */
const SUPPORTED_ALGORITHMS: ReadonlySet<string> = new Set([...DEFAULT_ALGORITHMS, "Ed25519"]);

/** Symmetric (HMAC) or unsigned: never acceptable for tokens minted by a third party. */
export function isForbiddenAlgorithm(alg: string): boolean {
  const upper = alg.toUpperCase();
  return upper === "NONE" || upper.startsWith("HS");
}

export interface ResolvedIssuer {
  readonly name: string;
  readonly issuer: string;
  readonly jwksUri: URL | undefined;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly algorithmSet: ReadonlySet<string>;
  readonly clockToleranceSec: number;
}

export interface ResolvedOptions {
  readonly resultCacheMs: number;
  readonly resultCacheMax: number;
  readonly jwksCooldownMs: number;
  readonly jwksCacheMaxAgeMs: number;
  readonly httpTimeoutMs: number;
}

function invalid(message: string): AirlockError {
  return new AirlockError("CONFIG_INVALID", `JWT verifier: ${message}`);
}

function parseHttpUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new AirlockError("CONFIG_INVALID", `JWT verifier: ${what} ${JSON.stringify(value)} is not a URL`, { cause });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid(`${what} ${JSON.stringify(value)} must be http(s)`);
  return url;
}

function resolveIssuer(cfg: JwtIssuerConfig): ResolvedIssuer {
  if (typeof cfg.name !== "string" || cfg.name === "") throw invalid("every issuer needs a name");
  const label = `issuer "${cfg.name}"`;
  if (typeof cfg.issuer !== "string" || cfg.issuer === "") throw invalid(`${label} has no issuer`);

  const audience = typeof cfg.audience === "string" ? [cfg.audience] : cfg.audience;
  // Without an audience any token of the IdP (for any application) would be accepted.
  if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== "string" || a === "")) {
    throw invalid(`${label} needs a non-empty audience`);
  }

  const algorithms = cfg.algorithms ?? DEFAULT_ALGORITHMS;
  if (algorithms.length === 0) throw invalid(`${label} allows no algorithm`);
  for (const alg of algorithms) {
    if (isForbiddenAlgorithm(alg)) throw invalid(`${label}: algorithm ${JSON.stringify(alg)} is never allowed (symmetric or unsigned)`);
    if (!SUPPORTED_ALGORITHMS.has(alg)) throw invalid(`${label}: algorithm ${JSON.stringify(alg)} is not supported`);
  }

  const clockToleranceSec = cfg.clockToleranceSec ?? 30;
  if (!Number.isFinite(clockToleranceSec) || clockToleranceSec < 0) throw invalid(`${label}: clockToleranceSec must be >= 0`);

  // Discovery needs the issuer to be a URL; with an explicit jwksUri any issuer string works.
  const jwksUri = cfg.jwksUri === undefined ? undefined : parseHttpUrl(cfg.jwksUri, `${label} jwksUri`);
  if (jwksUri === undefined) parseHttpUrl(cfg.issuer, `${label} issuer (used for discovery, no jwksUri given)`);

  return Object.freeze({
    name: cfg.name,
    issuer: cfg.issuer,
    jwksUri,
    audience: Object.freeze([...audience]),
    algorithms: Object.freeze([...algorithms]),
    algorithmSet: new Set(algorithms),
    clockToleranceSec,
  });
}

/** Validates issuer configs; the result is keyed by exact `iss` for the per-token lookup. */
export function resolveIssuers(issuers: readonly JwtIssuerConfig[]): Map<string, ResolvedIssuer> {
  if (!Array.isArray(issuers)) throw invalid("issuers must be an array");
  const byIssuer = new Map<string, ResolvedIssuer>();
  for (const cfg of issuers) {
    const resolved = resolveIssuer(cfg);
    // Two configs for one `iss` would make the provider name (and audience) ambiguous.
    if (byIssuer.has(resolved.issuer)) throw invalid(`issuer ${JSON.stringify(resolved.issuer)} is configured twice`);
    byIssuer.set(resolved.issuer, resolved);
  }
  return byIssuer;
}

function nonNegative(value: number | undefined, fallback: number, name: string, integer = false): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < 0 || (integer && !Number.isInteger(v))) {
    throw invalid(`${name} must be a non-negative ${integer ? "integer" : "number"}`);
  }
  return v;
}

export function resolveOptions(opts: JwtVerifierOptions = {}): ResolvedOptions {
  return Object.freeze({
    resultCacheMs: nonNegative(opts.resultCacheMs, 60_000, "resultCacheMs"),
    resultCacheMax: nonNegative(opts.resultCacheMax, 10_000, "resultCacheMax", true),
    jwksCooldownMs: nonNegative(opts.jwksCooldownMs, 30_000, "jwksCooldownMs"),
    jwksCacheMaxAgeMs: nonNegative(opts.jwksCacheMaxAgeMs, 600_000, "jwksCacheMaxAgeMs"),
    // jose requires an integer timeout; 0 would abort every fetch at once.
    httpTimeoutMs: Math.max(1, nonNegative(opts.httpTimeoutMs, 5_000, "httpTimeoutMs", true)),
  });
}
