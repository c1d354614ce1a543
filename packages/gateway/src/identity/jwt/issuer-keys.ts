// Signing keys of one issuer: the JWKS URL (configured, or discovered once
// from the OpenID configuration) and jose's remote JWKS cache behind it.
// Network failures become IDP_UNAVAILABLE here, at the one place that talks
// to the IdP, so the verifier can tell "the IdP is down" apart from "this
// token is bad" without guessing from jose's error classes.
import { AirlockError } from "@airlock/shared";
import { createRemoteJWKSet, errors, type CryptoKey, type FlattenedJWSInput, type JWSHeaderParameters, type RemoteJWKSet } from "jose";
import type { ResolvedIssuer, ResolvedOptions } from "./config.js";

/** Short, token-free reason for a failed fetch (undici hides the socket error in `cause`). */
function fetchFailureReason(err: unknown): string {
  if (err instanceof AirlockError) return err.message;
  if (err instanceof errors.JWKSTimeout || (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"))) {
    return "timed out";
  }
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  return detail === undefined || err.message.includes(detail) ? err.message : `${err.message} (${detail})`;
}

/**
 * Errors of the key *selection* (the token names a key the set does not have, or several match):
 * the caller maps them to token errors. Everything else out of the remote set is a fetch, parse
 * or key-import failure, i.e. the IdP's fault.
 */
function isKeySelectionError(err: unknown): boolean {
  return err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys;
}

export class IssuerKeys {
  private remote: RemoteJWKSet | undefined;
  private jwksUrl: URL | undefined;
  /** In-flight discovery shared by concurrent first calls; reset on failure so a later call retries. */
  private discovering: Promise<RemoteJWKSet> | undefined;

  constructor(
    private readonly cfg: ResolvedIssuer,
    private readonly opts: ResolvedOptions,
  ) {
    if (cfg.jwksUri !== undefined) this.useJwksUrl(cfg.jwksUri);
  }

  /**
   * jose key resolver. jose's remote set already shares one in-flight JWKS fetch among
   * concurrent callers, refetches on an unknown kid at most once per cooldown, and refreshes
   * after the max age.
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const remote = this.remote ?? (await this.discover());
    try {
      return await remote(header, token);
    } catch (err) {
      if (isKeySelectionError(err)) throw err;
      throw new AirlockError(
        "IDP_UNAVAILABLE",
        `signing keys of issuer ${this.cfg.issuer} could not be loaded from ${this.jwksUrl?.href ?? "?"}: ${fetchFailureReason(err)}`,
        { cause: err },
      );
    }
  };

  private useJwksUrl(url: URL): RemoteJWKSet {
    this.jwksUrl = url;
    this.remote = createRemoteJWKSet(url, {
      cooldownDuration: this.opts.jwksCooldownMs,
      cacheMaxAge: this.opts.jwksCacheMaxAgeMs,
      timeoutDuration: this.opts.httpTimeoutMs,
    });
    return this.remote;
  }

  private discover(): Promise<RemoteJWKSet> {
    this.discovering ??= this.fetchJwksUri().then(
      (url) => this.useJwksUrl(url),
      (err: unknown) => {
        this.discovering = undefined;
        throw err;
      },
    );
    return this.discovering;
  }

  private async fetchJwksUri(): Promise<URL> {
    const { issuer } = this.cfg;
    const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const unavailable = (reason: string, cause?: unknown): AirlockError =>
      new AirlockError("IDP_UNAVAILABLE", `OpenID discovery for issuer ${issuer} failed (${url}): ${reason}`, cause === undefined ? undefined : { cause });

    let doc: unknown;
    try {
      const res = await fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.opts.httpTimeoutMs),
      });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw unavailable(`HTTP ${res.status}`);
      }
      doc = await res.json();
    } catch (err) {
      if (err instanceof AirlockError) throw err;
      throw unavailable(err instanceof SyntaxError ? "response is not JSON" : fetchFailureReason(err), err);
    }

    if (typeof doc !== "object" || doc === null) throw unavailable("response is not a JSON object");
    const { issuer: docIssuer, jwks_uri: jwksUri } = doc as Record<string, unknown>;
    // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be identical to the one asked for;
    // otherwise keys of another issuer could end up trusted for this one.
    if (docIssuer !== issuer) throw unavailable(`document names issuer ${JSON.stringify(docIssuer)}, expected ${JSON.stringify(issuer)}`);
    if (typeof jwksUri !== "string") throw unavailable("document has no jwks_uri");
    try {
      const parsed = new URL(jwksUri);
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new TypeError("not http(s)");
      return parsed;
    } catch (err) {
      throw unavailable(`jwks_uri ${JSON.stringify(jwksUri)} is not an http(s) URL`, err);
    }
  }
}
