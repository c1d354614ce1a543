import { readFileSync } from "node:fs";
import { Type, type Static } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";

const Name = Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" });
const RoleName = Type.Union([Type.Literal("admin"), Type.Literal("user"), Type.Literal("auditor"), Type.Literal("reviewer")]);

/** An OpenID provider: people sign in through it, and (with `audience`) its client-credentials JWTs are accepted. */
export const OidcProviderSchema = Type.Object({
  name: Name,
  issuer: Type.String({ minLength: 1 }),
  clientId: Type.String({ minLength: 1 }),
  /** Client secret (or clientSecretFile); absent for a public client (PKCE only). */
  clientSecret: Type.Optional(Type.String({ minLength: 1 })),
  clientSecretFile: Type.Optional(Type.String({ minLength: 1 })),
  scopes: Type.Array(Type.String(), { default: ["openid", "profile", "email", "groups", "offline_access"] }),
  /** The ID token / access token claim with the user's groups. */
  groupsClaim: Type.String({ default: "groups" }),
  /** Claims tried in order for the name every record shows; the first present wins. */
  usernameClaims: Type.Array(Type.String(), { default: ["email", "preferred_username", "sub"] }),
  /** Extra authorization request parameters (e.g. prompt=consent, needed by some IdPs to issue refresh tokens). */
  authParams: Type.Record(Type.String(), Type.String(), { default: {} }),
  /** Accept this issuer's JWT access tokens (client-credentials) whose `aud` contains this. */
  audience: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })])),
  jwksUri: Type.Optional(Type.String()),
  /** Claim naming the machine in client-credentials tokens. */
  machineSubjectClaim: Type.String({ default: "sub" }),
  /** People may sign in with this provider (false: machine tokens only). */
  login: Type.Boolean({ default: true }),
});

export const SamlProviderSchema = Type.Object({
  name: Name,
  /** IdP single sign-on URL (HTTP-Redirect binding). */
  entryPoint: Type.String({ minLength: 1 }),
  /** IdP signing certificate(s), PEM. */
  idpCert: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
  groupsAttribute: Type.String({ default: "groups" }),
  subjectAttribute: Type.Optional(Type.String()),
  emailAttribute: Type.String({ default: "email" }),
});

export const IdentityConfigSchema = Type.Object({
  oidc: Type.Array(OidcProviderSchema, { default: [] }),
  saml: Type.Array(SamlProviderSchema, { default: [] }),
  /** Issuers trusted for machine JWTs only (no sign-in), e.g. a CI system's OIDC tokens. */
  jwtIssuers: Type.Array(
    Type.Object({ name: Name, issuer: Type.String(), audience: Type.Union([Type.String(), Type.Array(Type.String())]), jwksUri: Type.Optional(Type.String()), machineSubjectClaim: Type.String({ default: "sub" }), groupsClaim: Type.String({ default: "groups" }) }),
    { default: [] },
  ),
  /** IdP group → Airlock roles. Group "*" matches everyone who signs in. */
  roleMappings: Type.Array(Type.Object({ group: Type.String({ minLength: 1 }), roles: Type.Array(RoleName, { minItems: 1 }) }), { default: [] }),
  /** Roles of a signed-in person no mapping matched. */
  defaultRoles: Type.Array(RoleName, { default: ["user"] }),
  /** Lifetime of gateway access tokens issued at sign-in, per role (the shortest of the roles held applies). */
  tokenTtlSeconds: Type.Object(
    { admin: Type.Optional(Type.Integer({ minimum: 60 })), user: Type.Optional(Type.Integer({ minimum: 60 })), auditor: Type.Optional(Type.Integer({ minimum: 60 })), reviewer: Type.Optional(Type.Integer({ minimum: 60 })) },
    { default: {} },
  ),
  /** Refresh stops after this long even when the IdP would go on (and for SAML, whose session the gateway cannot ask about). */
  loginMaxSeconds: Type.Integer({ minimum: 300, default: 12 * 3600 }),
  apiKeys: Type.Object({ enabled: Type.Boolean({ default: false }), maxTtlDays: Type.Integer({ minimum: 1, maximum: 3650, default: 365 }) }, { default: {} }),
  /** Where a browser sign-in may hand its login code, besides loopback addresses (http://127.0.0.1:*, http://localhost:*, http://[::1]:*). */
  redirectAllowList: Type.Array(Type.String(), { default: [] }),
});

export type IdentityConfig = Static<typeof IdentityConfigSchema>;
export type OidcProviderConfig = Static<typeof OidcProviderSchema>;
export type SamlProviderConfigInput = Static<typeof SamlProviderSchema>;

export const IDENTITY_DEFAULTS: IdentityConfig = {
  oidc: [],
  saml: [],
  jwtIssuers: [],
  roleMappings: [],
  defaultRoles: ["user"],
  tokenTtlSeconds: {},
  loginMaxSeconds: 12 * 3600,
  apiKeys: { enabled: false, maxTtlDays: 365 },
  redirectAllowList: [],
};

const OIDC_DEFAULTS = { scopes: ["openid", "profile", "email", "groups", "offline_access"], groupsClaim: "groups", usernameClaims: ["email", "preferred_username", "sub"], authParams: {}, machineSubjectClaim: "sub", login: true };

/**
 * Identity settings from the environment: AIRLOCK_IDENTITY_FILE (JSON of the
 * whole section) and, for the common single-provider case, AIRLOCK_OIDC_*.
 */
export function identityFromEnv(env: NodeJS.ProcessEnv): Partial<IdentityConfig> | undefined {
  let out: Partial<IdentityConfig> = {};
  if (env.AIRLOCK_IDENTITY_FILE) {
    try {
      out = JSON.parse(readFileSync(env.AIRLOCK_IDENTITY_FILE, "utf8")) as Partial<IdentityConfig>;
    } catch (err) {
      throw new AirlockError("CONFIG_INVALID", `AIRLOCK_IDENTITY_FILE ${env.AIRLOCK_IDENTITY_FILE}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (env.AIRLOCK_OIDC_ISSUER) {
    const p = {
      ...OIDC_DEFAULTS,
      name: env.AIRLOCK_OIDC_NAME ?? "oidc",
      issuer: env.AIRLOCK_OIDC_ISSUER,
      clientId: env.AIRLOCK_OIDC_CLIENT_ID ?? "",
      clientSecret: env.AIRLOCK_OIDC_CLIENT_SECRET || undefined,
      ...(env.AIRLOCK_OIDC_SCOPES ? { scopes: env.AIRLOCK_OIDC_SCOPES.split(/[ ,]+/).filter(Boolean) } : {}),
      ...(env.AIRLOCK_OIDC_GROUPS_CLAIM ? { groupsClaim: env.AIRLOCK_OIDC_GROUPS_CLAIM } : {}),
      ...(env.AIRLOCK_OIDC_AUDIENCE ? { audience: env.AIRLOCK_OIDC_AUDIENCE } : {}),
    };
    out = { ...out, oidc: [...(out.oidc ?? []), p as OidcProviderConfig] };
  }
  if (env.AIRLOCK_ADMIN_GROUPS) {
    const groups = env.AIRLOCK_ADMIN_GROUPS.split(",").map((s) => s.trim()).filter(Boolean);
    out = { ...out, roleMappings: [...(out.roleMappings ?? []), ...groups.map((group) => ({ group, roles: ["admin" as const] }))] };
  }
  if (env.AIRLOCK_API_KEYS !== undefined) out = { ...out, apiKeys: { maxTtlDays: out.apiKeys?.maxTtlDays ?? 365, enabled: env.AIRLOCK_API_KEYS === "true" } };
  return Object.keys(out).length ? out : undefined;
}

/** Fills provider defaults and reads secret files; config errors are listed, not thrown one by one. */
export function normalizeIdentity(id: IdentityConfig, problems: string[], maxTtlSeconds: number): IdentityConfig {
  const oidc = id.oidc.map((p, i) => {
    const q = { ...OIDC_DEFAULTS, ...p } as OidcProviderConfig;
    if (q.clientSecretFile && !q.clientSecret) {
      try {
        q.clientSecret = readFileSync(q.clientSecretFile, "utf8").trim();
      } catch (err) {
        problems.push(`/identity/oidc/${i}/clientSecretFile: ${(err as Error).message}`);
      }
    }
    if (!q.clientId) problems.push(`/identity/oidc/${i}/clientId: required`);
    return q;
  });
  const saml = id.saml;
  const jwtIssuers = id.jwtIssuers;
  for (const [role, ttl] of Object.entries(id.tokenTtlSeconds)) {
    if (ttl !== undefined && ttl > maxTtlSeconds) problems.push(`/identity/tokenTtlSeconds/${role}: ${ttl} exceeds the token maximum ${maxTtlSeconds}`);
  }
  const names = [...oidc, ...saml, ...jwtIssuers].map((p) => p.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) problems.push(`/identity: provider name ${dup} is used twice`);
  return { ...IDENTITY_DEFAULTS, ...id, apiKeys: { ...IDENTITY_DEFAULTS.apiKeys, ...id.apiKeys }, oidc, saml, jwtIssuers };
}
