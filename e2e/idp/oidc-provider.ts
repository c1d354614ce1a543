// A real OpenID Provider for e2e tests: panva's oidc-provider (v9) on
// 127.0.0.1, in-process, with its built-in dev login/consent pages (any
// password). See browser.ts for driving those pages with Chromium.
//
// Clients:
// - gatewayClient: confidential web client (authorization_code with PKCE S256
//   required, refresh_token, device_code); secret accepted via
//   client_secret_basic or client_secret_post.
// - machineClient (and opts.machineClients): client_credentials only; with a
//   `resource` parameter the access token is an RS256 JWT (typ at+jwt) with
//   aud = resource, sub = client_id and a `groups` claim.
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import Provider, {
  type Adapter,
  type AdapterPayload,
  type Configuration,
  type KoaContextWithOIDC,
} from "oidc-provider";

export interface TestUser {
  username: string;
  email?: string;
  name?: string;
  groups: string[];
}

export interface MachineClient {
  clientId: string;
  clientSecret: string;
  groups: string[];
}

export interface TestOidc {
  /** e.g. http://127.0.0.1:PORT (no trailing slash). */
  issuer: string;
  /** Confidential client for the gateway: authorization_code (+PKCE S256 required), refresh_token, device_code. */
  gatewayClient: { clientId: string; clientSecret: string };
  /** Confidential client_credentials-only client for a machine/AI agent. */
  machineClient: MachineClient;
  /** Client-credentials JWT access token (aud = audience) for the machine client, or for other credentials. */
  machineToken(audience: string, opts?: { clientId?: string; clientSecret?: string; scope?: string }): Promise<string>;
  /** Users known to the IdP, by username; mutate at runtime to add/replace users or change their groups. */
  users: Map<string, TestUser>;
  /** kids currently published in the JWKS; the first one signs new tokens. */
  signingKids(): string[];
  /**
   * Rotates the signing key: a new RS256 key signs from now on and is published
   * in the JWKS; the old key(s) stay published with keepOld (default true).
   * Re-creates the Provider behind the same port; sessions, grants and tokens
   * (stored in a shared memory adapter) survive.
   */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<void>;
  /**
   * Deletes everything the IdP stores for the user: sessions, grants, refresh
   * and access tokens, pending codes. refresh_token grants fail afterwards
   * (invalid_grant) and the next authorization needs a fresh login.
   */
  revokeRefreshTokens(username: string): Promise<void>;
  stop(): Promise<void>;
}

export interface StartTestOidcOptions {
  /** Redirect URIs registered for the gateway client (http on 127.0.0.1 is fine). */
  redirectUris: string[];
  users?: TestUser[];
  accessTokenTtlSec?: number;
  idTokenTtlSec?: number;
  refreshTokenTtlSec?: number;
  /** Extra client_credentials clients besides machineClient. */
  machineClients?: MachineClient[];
  /**
   * oidc-provider silently drops offline_access (so: no refresh token) from a
   * code-flow request whose prompt lacks "consent". By default the harness adds
   * prompt=consent to authorization requests that ask for offline_access and
   * have no prompt at all, so a gateway needn't send it; set true to keep
   * oidc-provider's strict behaviour.
   */
  strictOfflineAccess?: boolean;
}

export const DEFAULT_USERS: TestUser[] = [
  { username: "alice", email: "alice@example.test", name: "Alice Admin", groups: ["airlock-admins", "engineering"] },
  { username: "bob", email: "bob@example.test", name: "Bob Builder", groups: ["engineering"] },
];

const GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code";

// ---------------------------------------------------------------------------
// Memory adapter with one enumerable store per TestOidc (the built-in one is a
// process-wide LRU that cannot be searched by account).

interface Entry {
  payload: AdapterPayload;
  expiresAt: number; // ms epoch; Infinity when no expiry
}

const GRANTABLE = new Set(["AccessToken", "AuthorizationCode", "RefreshToken", "DeviceCode", "BackchannelAuthenticationRequest", "PreAuthorizedCode"]);

class Store {
  readonly entries = new Map<string, Entry>();

  get(key: string): AdapterPayload | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.payload;
  }

  adapterFor(model: string): Adapter {
    const key = (id: string) => `${model}:${id}`;
    const findBy = (pred: (p: AdapterPayload) => boolean) => {
      for (const [k, e] of this.entries) {
        if (k.startsWith(`${model}:`) && pred(e.payload)) return this.get(k);
      }
      return undefined;
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Infinity;
        this.entries.set(key(id), { payload, expiresAt });
      },
      find: async (id) => this.get(key(id)),
      findByUid: async (uid) => findBy((p) => p.uid === uid),
      findByUserCode: async (userCode) => findBy((p) => p.userCode === userCode),
      consume: async (id) => {
        const p = this.get(key(id));
        if (p) p.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        this.entries.delete(key(id));
      },
      revokeByGrantId: async (grantId) => {
        for (const [k, e] of this.entries) {
          if (e.payload.grantId === grantId && GRANTABLE.has(k.slice(0, k.indexOf(":")))) this.entries.delete(k);
        }
      },
    };
  }

  /** Deletes every stored artifact belonging to accountId (and any token of its grants). */
  purgeAccount(accountId: string): number {
    const grantIds = new Set<string>();
    let n = 0;
    for (const [k, e] of this.entries) {
      if (e.payload.accountId === accountId || e.payload.session?.accountId === accountId) {
        if (k.startsWith("Grant:")) grantIds.add(k.slice("Grant:".length));
        if (e.payload.grantId) grantIds.add(e.payload.grantId);
        this.entries.delete(k);
        n++;
      }
    }
    for (const [k, e] of this.entries) {
      if (e.payload.grantId && grantIds.has(e.payload.grantId)) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}

// ---------------------------------------------------------------------------
// oidc-provider prints a NOTICE the first time each default helper it wants you
// to customise runs (TTLs, device pages, error page...) and a WARNING about
// devInteractions. Drop just those lines while any test IdP is running.

let quietRefs = 0;
let restoreConsole: (() => void) | undefined;
const NOISE = [/^oidc-provider NOTICE: default .* function called/, /^oidc-provider WARNING: a quick start development-only feature devInteractions/];

function quietOn(): void {
  if (quietRefs++ > 0) return;
  const { info, warn } = console;
  const wrap =
    (orig: (...a: unknown[]) => void) =>
    (...args: unknown[]) => {
      const first = typeof args[0] === "string" ? args[0].replace(/\x1b\[[0-9;]*m/g, "") : "";
      if (NOISE.some((re) => re.test(first))) return;
      orig.apply(console, args);
    };
  console.info = wrap(info);
  console.warn = wrap(warn);
  restoreConsole = () => {
    console.info = info;
    console.warn = warn;
  };
}

function quietOff(): void {
  if (--quietRefs > 0) return;
  restoreConsole?.();
  restoreConsole = undefined;
}

// ---------------------------------------------------------------------------

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `test-${randomBytes(6).toString("hex")}`, alg: "RS256", use: "sig" };
}

export async function startTestOidc(opts: StartTestOidcOptions): Promise<TestOidc> {
  const users = new Map<string, TestUser>((opts.users ?? DEFAULT_USERS).map((u) => [u.username, u]));
  const gatewayClient = { clientId: "airlock-gateway", clientSecret: randomBytes(24).toString("base64url") };
  const machineClient: MachineClient = {
    clientId: "airlock-machine-agent",
    clientSecret: randomBytes(24).toString("base64url"),
    groups: ["ai-agents"],
  };
  const machines = new Map<string, MachineClient>([machineClient, ...(opts.machineClients ?? [])].map((m) => [m.clientId, m]));
  const accessTtl = opts.accessTokenTtlSec ?? 600;
  const idTtl = opts.idTokenTtlSec ?? 600;
  const refreshTtl = opts.refreshTokenTtlSec ?? 24 * 3600;
  const store = new Store();
  const cookieKeys = [randomBytes(32).toString("base64url")];
  let keys: JWK[] = [await newSigningKey()];

  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end("starting");
  };
  const server = http.createServer((req, res) => handler(req, res));
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const config = (): Configuration => ({
    adapter: (model: string) => store.adapterFor(model),
    clients: [
      {
        client_id: gatewayClient.clientId,
        client_secret: gatewayClient.clientSecret,
        client_name: "Airlock Gateway (test)",
        redirect_uris: opts.redirectUris,
        response_types: ["code"],
        grant_types: ["authorization_code", "refresh_token", GRANT_DEVICE_CODE],
        token_endpoint_auth_method: "client_secret_basic",
      },
      ...[...machines.values()].map((m) => ({
        client_id: m.clientId,
        client_secret: m.clientSecret,
        redirect_uris: [],
        response_types: [],
        grant_types: ["client_credentials"],
        token_endpoint_auth_method: "client_secret_basic" as const,
      })),
    ],
    jwks: { keys },
    cookies: { keys: cookieKeys },
    scopes: ["openid", "offline_access", "profile", "email", "groups"],
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "preferred_username"],
      groups: ["groups"],
    },
    // Put scope-requested claims (email, preferred_username, groups...) into
    // the ID token too, not only into the userinfo response.
    conformIdTokenClaims: false,
    findAccount: (_ctx, sub) => {
      const u = users.get(sub);
      if (!u) return undefined;
      return {
        accountId: u.username,
        claims: () => ({
          sub: u.username,
          preferred_username: u.username,
          name: u.name ?? u.username,
          groups: [...u.groups],
          ...(u.email ? { email: u.email, email_verified: true } : {}),
        }),
      };
    },
    pkce: { required: () => true }, // v9 requires PKCE only for public clients by default
    issueRefreshToken: (_ctx, client, code) =>
      client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
    extraTokenClaims: (_ctx, token) => {
      if (token.kind === "ClientCredentials") {
        const m = machines.get(token.clientId ?? "");
        return m ? { groups: [...m.groups] } : undefined;
      }
      const u = users.get(token.accountId);
      return u ? { groups: [...u.groups], preferred_username: u.username } : undefined;
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only an explicit `resource` parameter selects a resource server;
        // without one, user flows get an opaque (userinfo) access token.
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: "airlock",
          audience: resource,
          accessTokenTTL: accessTtl,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      IdToken: idTtl,
      RefreshToken: refreshTtl,
      AuthorizationCode: 120,
      DeviceCode: 600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: Math.max(refreshTtl, 24 * 3600),
    },
  });

  quietOn();
  const build = () => {
    const provider = new Provider(issuer, config());
    if (!opts.strictOfflineAccess) {
      provider.use(async (ctx, next) => {
        if (ctx.method === "GET" && ctx.path === "/auth") {
          const q = ctx.query;
          const scope = typeof q.scope === "string" ? q.scope.split(" ") : [];
          if (scope.includes("offline_access") && q.prompt === undefined) ctx.query = { ...q, prompt: "consent" };
        }
        await next();
      });
    }
    provider.on("server_error", (_ctx: KoaContextWithOIDC, err: Error) => console.error("test IdP server_error:", err));
    handler = provider.callback();
    return provider;
  };
  try {
    build();
  } catch (err) {
    quietOff();
    server.close();
    throw err;
  }

  let stopped = false;
  return {
    issuer,
    gatewayClient,
    machineClient,
    users,
    signingKids: () => keys.map((k) => k.kid!),
    async machineToken(audience, o = {}) {
      const body = new URLSearchParams({ grant_type: "client_credentials", resource: audience });
      if (o.scope) body.set("scope", o.scope);
      const id = o.clientId ?? machineClient.clientId;
      const secret = o.clientSecret ?? machineClient.clientSecret;
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body,
      });
      const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || !json.access_token) {
        throw new Error(`client_credentials failed (${res.status}): ${json.error ?? ""} ${json.error_description ?? ""}`.trim());
      }
      return json.access_token;
    },
    async rotateKeys(o = {}) {
      const fresh = await newSigningKey();
      keys = o.keepOld === false ? [fresh] : [fresh, ...keys];
      build();
    },
    async revokeRefreshTokens(username) {
      store.purgeAccount(username);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      quietOff();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
