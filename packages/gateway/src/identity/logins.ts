import { AirlockError, type Logger } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import type { Principal, Role } from "../auth/principal.js";
import { generateToken, hashToken, type Keyring } from "../crypto/index.js";
import type { Store } from "../store/index.js";
import type { IdentityConfig, SamlProviderConfigInput } from "./config.js";
import type { AuthEventLog } from "./events.js";
import { LoginRequests } from "./login-requests.js";
import type { OidcClient, OidcResult } from "./oidc/client.js";
import { groupsFromClaim, rolesForGroups, ttlForRoles } from "./roles.js";
import { SamlProvider } from "./saml/provider.js";
import type { UserService } from "./users.js";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  expires_at: string;
  refresh_token?: string;
  subject: string;
  roles: Role[];
  groups: string[];
  provider: string;
}

export interface LoginDeps {
  store: Store;
  keyring: Keyring;
  tokens: AccessTokenService;
  users: UserService;
  events: AuthEventLog;
  config: IdentityConfig;
  defaultTtlSeconds: number;
  oidc: Map<string, OidcClient>;
  saml: SamlProviderConfigInput[];
  /** The gateway's public base URL (redirect URIs, SAML entity id and ACS). */
  publicUrl: () => string;
  log: Logger;
}

type Method = "oidc" | "saml" | "device";

/**
 * Sign-in for people: OIDC code + PKCE and device flow, SAML SP-initiated.
 * Whatever the IdP, the result is the same: a user record, a login (the
 * refresh path, bounded by the IdP session and identity.loginMaxSeconds) and
 * a short-lived gateway access token whose lifetime follows the user's roles.
 */
export class LoginService {
  readonly requests: LoginRequests;

  private readonly samlProviders = new Map<string, SamlProvider>();
  /** Device sign-in id → last poll forwarded to the IdP (this process). */
  private readonly lastPoll = new Map<string, number>();

  constructor(private readonly d: LoginDeps) {
    this.requests = new LoginRequests(d.store, d.keyring, d.config.redirectAllowList);
  }

  publicUrl(): string {
    return this.d.publicUrl();
  }

  /** SAML providers are built on first use: their entity id and ACS URL come from the public URL, known once the API listens. */
  private saml(name: string): SamlProvider | undefined {
    let p = this.samlProviders.get(name);
    if (!p) {
      const c = this.d.saml.find((x) => x.name === name);
      if (!c) return undefined;
      const base = `${this.d.publicUrl()}/api/v1/auth/saml/${c.name}`;
      p = new SamlProvider({ ...c, spEntityId: base, acsUrl: `${base}/acs` });
      this.samlProviders.set(name, p);
    }
    return p;
  }

  samlMetadata(name: string): string {
    const p = this.saml(name);
    if (!p) throw new AirlockError("NOT_FOUND", `no SAML provider ${name}`);
    return p.metadata();
  }

  providers(): Array<{ name: string; type: "oidc" | "saml"; device: boolean }> {
    return [
      ...[...this.d.oidc.values()].filter((c) => c.cfg.login).map((c) => ({ name: c.cfg.name, type: "oidc" as const, device: true })),
      ...this.d.saml.map((c) => ({ name: c.name, type: "saml" as const, device: false })),
    ];
  }

  private oidcClient(name: string): OidcClient {
    const c = this.d.oidc.get(name);
    if (!c || !c.cfg.login) throw new AirlockError("NOT_FOUND", `no OIDC sign-in provider ${name} (known: ${this.providers().map((p) => p.name).join(", ") || "none"})`);
    return c;
  }

  /** Browser sign-in, step 1: the URL to send the user to (the IdP), remembered with the client's redirect and PKCE challenge. */
  async start(i: { provider: string; redirectUri: string; codeChallenge: string; clientState?: string }): Promise<{ authorizationUrl: string; expiresAt: string }> {
    this.requests.checkRedirect(i.redirectUri);
    this.requests.checkChallenge(i.codeChallenge);
    const client = { redirectUri: i.redirectUri, codeChallenge: i.codeChallenge, clientState: i.clientState ?? "" };
    const saml = this.saml(i.provider);
    if (saml) {
      const relay = generateToken("lc");
      const { url, requestId } = await saml.loginRequest(relay);
      const exp = await this.requests.create("saml", i.provider, relay, { ...client, requestId });
      return { authorizationUrl: url, expiresAt: exp.toISOString() };
    }
    const c = this.oidcClient(i.provider);
    const a = await c.authorizationUrl();
    const exp = await this.requests.create("code", i.provider, a.state, { ...client, verifier: a.verifier, state: a.state, nonce: a.nonce });
    return { authorizationUrl: a.url, expiresAt: exp.toISOString() };
  }

  /** Step 2 (OIDC): the IdP redirected the browser back. Returns where to send the browser next (the client, with a login code or an error). */
  async oidcCallback(url: URL, clientAddr: string | null): Promise<string> {
    const req = await this.requests.answer("code", url.searchParams.get("state"));
    return this.finishBrowser(req, clientAddr, "oidc", async () => {
      const idpError = url.searchParams.get("error");
      if (idpError) throw new AirlockError("LOGIN_FAILED", `the identity provider refused the sign-in: ${idpError}${url.searchParams.get("error_description") ? ` (${url.searchParams.get("error_description")})` : ""}`);
      const d = req.data;
      return this.oidcClient(req.provider).finishCode(url, { verifier: d.verifier!, state: d.state!, nonce: d.nonce! });
    });
  }

  /** Step 2 (SAML): the IdP POSTed its response to our ACS. */
  async samlAcs(provider: string, body: { SAMLResponse?: string; RelayState?: string }, clientAddr: string | null): Promise<string> {
    const saml = this.saml(provider);
    if (!saml) throw new AirlockError("NOT_FOUND", `no SAML provider ${provider}`);
    const req = await this.requests.answer("saml", body.RelayState ?? null);
    if (req.provider !== provider) throw new AirlockError("LOGIN_FAILED", `this sign-in was started with ${req.provider}, not ${provider}`);
    return this.finishBrowser(req, clientAddr, "saml", async () => {
      if (!body.SAMLResponse) throw new AirlockError("LOGIN_FAILED", "no SAMLResponse in the POST");
      const id = await saml.validate(body.SAMLResponse, req.data.requestId!);
      return { externalId: id.subject, name: id.subject, email: id.email ?? null, displayName: null, groups: groupsFromClaim(id.groups), idpRefresh: null, sessionEnd: id.sessionNotOnOrAfter };
    });
  }

  private async finishBrowser(
    req: { id: string; provider: string; data: { redirectUri?: string; clientState?: string } },
    clientAddr: string | null,
    method: Method,
    idp: () => Promise<OidcResult & { sessionEnd?: Date }>,
  ): Promise<string> {
    const back = new URL(req.data.redirectUri!);
    if (req.data.clientState) back.searchParams.set("state", req.data.clientState);
    try {
      const r = await idp();
      const loginId = await this.createLogin(req.provider, method, r, clientAddr);
      back.searchParams.set("code", await this.requests.issueCode(req.id, loginId));
    } catch (err) {
      // Only our own errors carry a message meant for the client; anything else is logged, not echoed.
      if (!(err instanceof AirlockError)) this.d.log.error({ err: (err as Error)?.message, provider: req.provider }, "sign-in failed unexpectedly");
      const e = err instanceof AirlockError ? err : new AirlockError("LOGIN_FAILED", "sign-in failed at the gateway; see its log", { cause: err });
      this.d.events.note({ type: "login", outcome: "denied", provider: req.provider, via: method, code: e.code, reason: e.message, clientAddr });
      back.searchParams.set("error", "access_denied");
      back.searchParams.set("error_description", e.message.slice(0, 500));
    }
    return back.href;
  }

  /** Records the user and a login (before any token exists: no record, no token). */
  private async createLogin(provider: string, method: Method, r: OidcResult & { sessionEnd?: Date }, clientAddr: string | null): Promise<string> {
    const roles = rolesForGroups(this.d.config, r.groups);
    const user = await this.d.users.upsert({ provider, externalId: r.externalId, name: r.name, email: r.email, displayName: r.displayName, groups: r.groups, roles });
    const max = Date.now() + this.d.config.loginMaxSeconds * 1000;
    const expiresAt = new Date(r.sessionEnd ? Math.min(max, r.sessionEnd.getTime()) : max);
    const login = await this.d.store.prisma.login.create({
      data: { userId: user.id, provider, method, expiresAt, idpRefresh: r.idpRefresh ? this.seal(r.idpRefresh, user.id) : null },
    });
    await this.d.events.record({ type: "login", outcome: "ok", subject: user.name, provider, via: method, clientAddr });
    return login.id;
  }

  /** Step 3 (browser flows): the client trades the login code and its PKCE verifier for tokens. */
  async exchangeCode(code: string, verifier: string, clientAddr: string | null): Promise<TokenResponse> {
    const { loginId } = await this.requests.redeemCode(code, verifier).catch((err: unknown) => {
      const e = AirlockError.from(err);
      this.d.events.note({ type: "token", outcome: "denied", via: "rest", code: e.code, reason: e.message, clientAddr });
      throw e;
    });
    return this.issue(loginId, clientAddr, "token");
  }

  async startDevice(provider: string): Promise<{ deviceCode: string; userCode: string; verificationUri: string; verificationUriComplete?: string; interval: number; expiresIn: number }> {
    const r = await this.oidcClient(provider).startDevice();
    const handle = LoginRequests.deviceHandle();
    const interval = r.interval ?? 5;
    await this.requests.create("device", provider, handle, { deviceCode: r.device_code, interval }, r.expires_in * 1000);
    return { deviceCode: handle, userCode: r.user_code, verificationUri: r.verification_uri, ...(r.verification_uri_complete ? { verificationUriComplete: r.verification_uri_complete } : {}), interval, expiresIn: r.expires_in };
  }

  /** One poll of a device sign-in: LOGIN_PENDING until the user approved at the IdP, then tokens (once). */
  async pollDevice(handle: string, clientAddr: string | null): Promise<TokenResponse> {
    const req = await this.requests.device(handle);
    if (req.consumed) throw new AirlockError("LOGIN_FAILED", "this device sign-in already issued its token");
    // Polls faster than the IdP's interval are answered here, so a busy client cannot get our IdP client throttled.
    const now = Date.now();
    const last = this.lastPoll.get(req.id);
    const interval = (req.data.interval ?? 5) * 1000;
    if (last !== undefined && now - last < interval - 250) throw new AirlockError("LOGIN_PENDING", "slow down: poll less often", { details: { error: "slow_down", interval: req.data.interval } });
    if (this.lastPoll.size >= 10_000) this.lastPoll.clear();
    this.lastPoll.set(req.id, now);
    const p = await this.oidcClient(req.provider).pollDevice(req.data.deviceCode!).catch((err: unknown) => {
      const e = AirlockError.from(err, "LOGIN_FAILED");
      this.d.events.note({ type: "login", outcome: "denied", provider: req.provider, via: "device", code: e.code, reason: e.message, clientAddr });
      throw e;
    });
    if (p.status !== "done") throw new AirlockError("LOGIN_PENDING", p.status === "slow_down" ? "slow down: poll less often" : "waiting for the user to approve the sign-in", { details: { error: p.status === "slow_down" ? "slow_down" : "authorization_pending", interval: req.data.interval } });
    const loginId = await this.createLogin(req.provider, "device", p.result, clientAddr);
    if (!(await this.requests.consumeDevice(req.id, loginId))) throw new AirlockError("LOGIN_FAILED", "this device sign-in already issued its token");
    return this.issue(loginId, clientAddr, "token");
  }

  /** A new access token for a login, confirmed with the IdP when it gave a refresh token; rotates the refresh token. */
  async refresh(refreshToken: string, clientAddr: string | null): Promise<TokenResponse> {
    try {
      const login = await this.d.store.prisma.login.findUnique({ where: { refreshHash: hashToken(refreshToken) }, include: { user: true } });
      if (!login) throw new AirlockError("TOKEN_INVALID", "unknown or already used refresh token");
      if (login.endedAt) throw new AirlockError("TOKEN_REVOKED", `this sign-in ended at ${login.endedAt.toISOString()}`);
      if (login.user.deletedAt) throw new AirlockError("IDENTITY_DISABLED", `user ${login.user.name} was deleted at ${login.user.deletedAt.toISOString()}`);
      if (login.expiresAt.getTime() <= Date.now()) throw new AirlockError("TOKEN_EXPIRED", `this sign-in reached its end at ${login.expiresAt.toISOString()}: sign in again`);
      // Claim the refresh token before anything else: of two concurrent uses exactly one goes on.
      const next = generateToken("rt");
      const claimed = await this.d.store.prisma.login.updateMany({ where: { id: login.id, refreshHash: hashToken(refreshToken), endedAt: null }, data: { refreshHash: hashToken(next) } });
      if (claimed.count !== 1) throw new AirlockError("TOKEN_INVALID", "unknown or already used refresh token");
      if (login.idpRefresh) {
        const client = this.oidcClient(login.provider);
        const old = (this.d.keyring.decryptJson(login.idpRefresh, `idp-refresh:${login.userId}`) as { t: string }).t;
        const r = await client.refresh(old).catch(async (err: unknown) => {
          if (AirlockError.is(err, "TOKEN_REVOKED")) {
            // The IdP ended the session (or revoked the grant): so does the gateway.
            await this.end(login.id);
            throw err;
          }
          // The IdP is down or throttling us: keep the sign-in, hand the refresh token back for a retry.
          await this.d.store.prisma.login.updateMany({ where: { id: login.id, refreshHash: hashToken(next) }, data: { refreshHash: hashToken(refreshToken) } });
          throw err;
        });
        await this.d.store.prisma.login.update({ where: { id: login.id }, data: { idpRefresh: this.seal(r.idpRefresh, login.userId) } });
        if (r.result) {
          // Groups follow the IdP: a group removed there is gone from the next token.
          const roles = rolesForGroups(this.d.config, r.result.groups);
          await this.d.store.prisma.user.update({ where: { id: login.userId }, data: { groups: r.result.groups, roles } });
        }
      } else if (login.method !== "saml") {
        throw new AirlockError("TOKEN_INVALID", "this sign-in cannot be refreshed (the identity provider issued no refresh token)");
      }
      return await this.issue(login.id, clientAddr, "refresh", next);
    } catch (err) {
      const e = AirlockError.from(err);
      this.d.events.note({ type: "refresh", outcome: "denied", via: "refresh", code: e.code, reason: e.message, clientAddr });
      throw e;
    }
  }

  /** Mints the access token for a login; `refresh` is the already claimed next refresh token (refresh grant). */
  private async issue(loginId: string, clientAddr: string | null, type: "token" | "refresh", refreshed?: string): Promise<TokenResponse> {
    const login = await this.d.store.prisma.login.findUniqueOrThrow({ where: { id: loginId }, include: { user: true } });
    // Roles follow the current mappings, not those of the first sign-in.
    const roles = rolesForGroups(this.d.config, login.user.groups);
    const left = Math.floor((login.expiresAt.getTime() - Date.now()) / 1000);
    const ttl = Math.max(1, Math.min(ttlForRoles(this.d.config, roles, this.d.defaultTtlSeconds), left));
    const t = await this.d.tokens.mint({ subject: login.user.name, kind: "user", roles, groups: login.user.groups, method: login.method as Method, provider: login.provider, userId: login.userId, loginId, ttlSeconds: ttl });
    // Refresh only where the IdP session can bound it: an IdP refresh token (OIDC), or the SAML session's end.
    let refresh: string | undefined = refreshed;
    if (!refresh && (login.idpRefresh || login.method === "saml")) {
      refresh = generateToken("rt");
      await this.d.store.prisma.login.update({ where: { id: loginId }, data: { refreshHash: hashToken(refresh) } });
    }
    await this.d.events.record({ type, outcome: "ok", subject: login.user.name, provider: login.provider, via: login.method, clientAddr, tokenId: t.id });
    return { access_token: t.token, token_type: "Bearer", expires_in: ttl, expires_at: t.expiresAt.toISOString(), ...(refresh ? { refresh_token: refresh } : {}), subject: login.user.name, roles, groups: login.user.groups, provider: login.provider };
  }

  /** IdP refresh tokens are secrets: envelope-encrypted, bound to the user. */
  private seal(idpRefresh: string, userId: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.d.keyring.encryptJson({ t: idpRefresh }, `idp-refresh:${userId}`)) as Uint8Array<ArrayBuffer>;
  }

  /** Ends a login: no more refresh, every token of it refused. Returns the token ids (to cut their sessions). */
  async end(loginId: string): Promise<string[]> {
    const login = await this.d.store.prisma.login.findUnique({ where: { id: loginId } });
    await this.d.store.prisma.login.updateMany({ where: { id: loginId, endedAt: null }, data: { endedAt: new Date(), refreshHash: null, idpRefresh: null } });
    const ids = await this.d.tokens.revokeWhere({ loginId });
    if (login?.idpRefresh && !login.endedAt) {
      // The IdP's refresh token is of no use to anyone now: ask the IdP to drop it (best effort).
      const t = (this.d.keyring.decryptJson(login.idpRefresh, `idp-refresh:${login.userId}`) as { t: string }).t;
      await this.d.oidc.get(login.provider)?.revoke(t).catch((err: Error) => this.d.log.warn({ provider: login.provider, err: err.message }, "could not revoke the refresh token at the identity provider"));
    }
    return ids;
  }

  /** `airlock logout`: ends the caller's login (or just the token when it came from no login). */
  async logout(p: Principal, clientAddr: string | null): Promise<string[]> {
    const ids = p.loginId ? await this.end(p.loginId) : p.tokenId ? (await this.d.tokens.revoke(p.tokenId), [p.tokenId]) : [];
    await this.d.events.record({ type: "logout", outcome: "ok", subject: p.subject, provider: p.provider ?? null, via: "rest", clientAddr, tokenId: p.tokenId });
    return ids;
  }
}
