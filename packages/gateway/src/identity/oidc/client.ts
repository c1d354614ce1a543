import * as oidc from "openid-client";
import { AirlockError } from "@airlock/shared";
import type { OidcProviderConfig } from "../config.js";
import { groupsFromClaim } from "../roles.js";

/** What the gateway takes from an IdP's answer. */
export interface OidcResult {
  externalId: string;
  name: string;
  email: string | null;
  displayName: string | null;
  groups: string[];
  /** IdP refresh token, when issued: the gateway's refresh path is confirmed with it. */
  idpRefresh: string | null;
}

export type DevicePoll = { status: "pending" | "slow_down" } | { status: "done"; result: OidcResult };

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * One OpenID provider, seen from the gateway as Relying Party (openid-client):
 * authorization code with PKCE and nonce, the device authorization grant
 * polled one request at a time (so any gateway process can answer a poll), and
 * refresh. Discovery happens on first use and is retried after a failure.
 */
export class OidcClient {
  private config: Promise<oidc.Configuration> | null = null;

  constructor(
    readonly cfg: OidcProviderConfig,
    private readonly redirectUri: () => string,
  ) {}

  private async conf(): Promise<oidc.Configuration> {
    if (!this.config) {
      const url = new URL(this.cfg.issuer);
      // Plain http only for an IdP on this machine (tests, dev); anything else must be https.
      const insecure = url.protocol === "http:" && LOOPBACK.has(url.hostname);
      const auth = this.cfg.clientSecret ? oidc.ClientSecretBasic(this.cfg.clientSecret) : oidc.None();
      this.config = oidc.discovery(url, this.cfg.clientId, undefined, auth, { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 10 }).catch((err: unknown) => {
        this.config = null;
        throw new AirlockError("IDP_UNAVAILABLE", `cannot reach identity provider ${this.cfg.name} (${this.cfg.issuer}): ${(err as Error).message}`, { cause: err });
      });
    }
    return this.config;
  }

  /** An authorization URL with fresh PKCE verifier, state and nonce (the caller keeps them, once). */
  async authorizationUrl(): Promise<{ url: string; verifier: string; state: string; nonce: string }> {
    const c = await this.conf();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(c, {
      ...this.cfg.authParams,
      redirect_uri: this.redirectUri(),
      scope: this.cfg.scopes.join(" "),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return { url: url.href, verifier, state, nonce };
  }

  /** The callback: exchanges the code (PKCE verifier), checks state and the ID token's nonce, signature, issuer, audience. */
  async finishCode(callbackUrl: URL, checks: { verifier: string; state: string; nonce: string }): Promise<OidcResult> {
    const c = await this.conf();
    try {
      const tokens = await oidc.authorizationCodeGrant(c, callbackUrl, { pkceCodeVerifier: checks.verifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true });
      return this.result(tokens.claims(), tokens.refresh_token ?? null);
    } catch (err) {
      throw loginError(this.cfg.name, err);
    }
  }

  async startDevice(): Promise<oidc.DeviceAuthorizationResponse> {
    const c = await this.conf();
    try {
      return await oidc.initiateDeviceAuthorization(c, { scope: this.cfg.scopes.join(" ") });
    } catch (err) {
      throw loginError(this.cfg.name, err);
    }
  }

  /** One poll of the token endpoint for a device sign-in. */
  async pollDevice(deviceCode: string): Promise<DevicePoll> {
    const c = await this.conf();
    try {
      const tokens = await oidc.genericGrantRequest(c, DEVICE_GRANT, { device_code: deviceCode });
      return { status: "done", result: this.result(tokens.claims(), tokens.refresh_token ?? null) };
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError && (err.error === "authorization_pending" || err.error === "slow_down")) return { status: err.error === "slow_down" ? "slow_down" : "pending" };
      throw loginError(this.cfg.name, err);
    }
  }

  /** Refresh at the IdP: succeeds only while the IdP session lives. Claims are null when no new ID token came back. */
  async refresh(idpRefresh: string): Promise<{ result: OidcResult | null; idpRefresh: string }> {
    const c = await this.conf();
    try {
      const tokens = await oidc.refreshTokenGrant(c, idpRefresh);
      const next = tokens.refresh_token ?? idpRefresh;
      const claims = tokens.claims();
      return { result: claims ? this.result(claims, next) : null, idpRefresh: next };
    } catch (err) {
      // invalid_grant: the IdP ended the session or revoked the grant. Anything else (down, throttled) is not an answer.
      if (err instanceof oidc.ResponseBodyError && err.error === "invalid_grant") {
        throw new AirlockError("TOKEN_REVOKED", `the identity provider ended the session: ${err.error}${err.error_description ? ` (${err.error_description})` : ""}`, { cause: err });
      }
      const e = loginError(this.cfg.name, err, "the identity provider did not renew the session");
      throw e.code === "IDP_UNAVAILABLE" ? e : new AirlockError("IDP_UNAVAILABLE", e.message, { cause: err });
    }
  }

  /** Best effort: tells the IdP a refresh token is no longer needed (logout, user deleted). */
  async revoke(idpRefresh: string): Promise<void> {
    const c = await this.conf();
    if (!c.serverMetadata().revocation_endpoint) return;
    await oidc.tokenRevocation(c, idpRefresh, { token_type_hint: "refresh_token" });
  }

  private result(claims: oidc.IDToken | undefined, idpRefresh: string | null): OidcResult {
    if (!claims) throw new AirlockError("LOGIN_FAILED", `identity provider ${this.cfg.name} returned no ID token (is the openid scope configured?)`);
    let name: string | null = null;
    for (const k of this.cfg.usernameClaims) {
      // An unverified email must not name anyone (it could be somebody else's address).
      if (k === "email" && claims.email_verified === false) continue;
      const v = claims[k];
      if (typeof v === "string" && v) {
        name = v;
        break;
      }
    }
    return {
      externalId: claims.sub,
      name: (name ?? claims.sub).slice(0, 128),
      email: typeof claims.email === "string" ? claims.email : null,
      displayName: typeof claims.name === "string" ? claims.name : null,
      groups: groupsFromClaim(claims[this.cfg.groupsClaim]),
      idpRefresh,
    };
  }
}

/** Maps openid-client failures to LOGIN_FAILED with the IdP's own words (never tokens). */
function loginError(provider: string, err: unknown, prefix = "sign-in failed"): AirlockError {
  if (err instanceof AirlockError) return err;
  if (err instanceof oidc.ResponseBodyError) return new AirlockError("LOGIN_FAILED", `${prefix} at ${provider}: ${err.error}${err.error_description ? ` (${err.error_description})` : ""}`, { cause: err });
  if (err instanceof oidc.AuthorizationResponseError) return new AirlockError("LOGIN_FAILED", `${prefix} at ${provider}: ${err.error}${err.error_description ? ` (${err.error_description})` : ""}`, { cause: err });
  const e = err as Error & { code?: string };
  if (e?.name === "TypeError" && /fetch/i.test(e.message)) return new AirlockError("IDP_UNAVAILABLE", `cannot reach identity provider ${provider}: ${e.message}`, { cause: err });
  // openid-client wraps oauth4webapi's specific reason (e.g. 'unexpected ID Token "nonce" claim value') as the cause.
  const inner = (e as Error & { cause?: unknown })?.cause;
  const why = inner instanceof Error && inner.message && inner.message !== e.message ? `${e.message}: ${inner.message}` : (e?.message ?? String(err));
  return new AirlockError("LOGIN_FAILED", `${prefix} at ${provider}: ${why}`, { cause: err });
}
