import { AirlockError, type Logger } from "@airlock/shared";
import { AccessTokenService } from "../auth/access-tokens.js";
import { isRole, type Principal } from "../auth/principal.js";
import type { Store } from "../store/index.js";
import { IDENTITY_DEFAULTS, type IdentityConfig } from "./config.js";
import { AuthEventLog } from "./events.js";
import { JwtVerifier, type JwtIssuerConfig, type VerifiedJwt } from "./jwt/verifier.js";
import { groupsFromClaim, rolesForGroups } from "./roles.js";
import { ServiceAccountService } from "./service-accounts.js";

export interface VerifyContext {
  /** Where the credential came in: rest | websocket | postgres. */
  via: string;
  clientAddr?: string | null;
}

interface MachineIssuer {
  subjectClaim: string;
  groupsClaim: string;
  /** People sign in with this provider too: only client-credentials tokens count as machines. */
  loginProvider: boolean;
}

/**
 * How long a JWT-derived principal is reused before its service account
 * binding is looked up again (revocation of a bound account reaches JWTs
 * within this long; the JWT's own expiry always applies at once).
 */
const JWT_PRINCIPAL_CACHE_MS = 5_000;

/**
 * The one place every credential is checked, whatever door it came in by
 * (REST, WebSocket, Postgres password, CLI): gateway access tokens and API
 * keys, and JWTs from trusted issuers (machines' client-credentials tokens).
 * Every refusal is recorded with its reason.
 */
export class IdentityService {
  private readonly jwt: JwtVerifier | null;
  private readonly machines = new Map<string, MachineIssuer>();
  /**
   * Keyed by the verifier's cached result object (the same object for every hit
   * on one token), so the hot path never hashes or compares the token again.
   */
  private principals = new WeakMap<VerifiedJwt, { principal: Principal; until: number }>();
  private readonly bindings = new Map<string, { sa: Awaited<ReturnType<ServiceAccountService["byExternalId"]>>; until: number }>();

  constructor(
    private readonly o: { tokens: AccessTokenService; serviceAccounts: ServiceAccountService; events: AuthEventLog; config: IdentityConfig; log: Logger },
  ) {
    const issuers: JwtIssuerConfig[] = [];
    for (const p of o.config.oidc) {
      if (!p.audience) continue;
      issuers.push({ name: p.name, issuer: p.issuer, audience: p.audience, ...(p.jwksUri ? { jwksUri: p.jwksUri } : {}) });
      this.machines.set(p.name, { subjectClaim: p.machineSubjectClaim, groupsClaim: p.groupsClaim, loginProvider: p.login });
    }
    for (const p of o.config.jwtIssuers) {
      issuers.push({ name: p.name, issuer: p.issuer, audience: p.audience, ...(p.jwksUri ? { jwksUri: p.jwksUri } : {}) });
      this.machines.set(p.name, { subjectClaim: p.machineSubjectClaim, groupsClaim: p.groupsClaim, loginProvider: false });
    }
    this.jwt = issuers.length ? new JwtVerifier(issuers) : null;
  }

  /** Resolves a credential to a principal or throws a 401-class AirlockError whose message says why (and records it). */
  async verify(credential: string | undefined, ctx: VerifyContext): Promise<Principal> {
    try {
      if (!credential) throw new AirlockError("UNAUTHENTICATED", "no access token: pass --token, set AIRLOCK_TOKEN or run `airlock login`");
      if (AccessTokenService.owns(credential)) return await this.o.tokens.verify(credential);
      if (JwtVerifier.looksLikeJwt(credential)) {
        if (!this.jwt) throw new AirlockError("TOKEN_ISSUER_UNKNOWN", "this gateway trusts no JWT issuer (configure identity.oidc[].audience or identity.jwtIssuers)");
        return await this.fromJwt(credential);
      }
      throw new AirlockError("TOKEN_INVALID", "not an Airlock access token, API key or JWT");
    } catch (err) {
      // Anything but our own errors (a store outage, a bug) refuses the credential without echoing internals.
      if (!(err instanceof AirlockError)) this.o.log.error({ err: (err as Error)?.message }, "credential check failed");
      const e = err instanceof AirlockError ? err : new AirlockError("STORE_UNAVAILABLE", "the credential could not be checked right now; try again", { cause: err });
      if (e.status === 401 || e.code === "FEATURE_DISABLED") {
        this.o.events.note({ type: "reject", outcome: "denied", via: ctx.via, code: e.code, reason: e.message, clientAddr: ctx.clientAddr ?? null });
      }
      throw e;
    }
  }

  private async fromJwt(token: string): Promise<Principal> {
    const v = await this.jwt!.verify(token);
    const now = Date.now();
    const hit = this.principals.get(v);
    if (hit && hit.until > now) return hit.principal;
    const m = this.machines.get(v.provider)!;
    const sub = v.claims[m.subjectClaim];
    if (typeof sub !== "string" || !sub) throw new AirlockError("TOKEN_INVALID", `token from ${v.provider} has no ${m.subjectClaim} claim`);
    if (!/^[A-Za-z0-9@._:/+=-]{1,200}$/.test(sub)) throw new AirlockError("TOKEN_INVALID", `token from ${v.provider} has a ${m.subjectClaim} that cannot name an identity`);
    // A login provider's tokens about a person (its access or ID tokens) are not machine credentials:
    // people sign in and get gateway tokens, so logout and user deletion apply to them. Client-credentials
    // tokens name the client itself as subject (RFC 9068 §2.2).
    if (m.loginProvider && v.claims.client_id !== sub && v.claims.azp !== sub) {
      throw new AirlockError("TOKEN_INVALID", `a token about a person from ${v.provider} is not accepted here: sign in with \`airlock login\` (machine tokens come from the client-credentials grant)`);
    }
    const externalId = `${v.provider}:${sub}`;
    const sa = await this.binding(externalId, now);
    let principal: Principal;
    if (sa) {
      if (sa.revokedAt) throw new AirlockError("IDENTITY_DISABLED", `service account ${sa.name} (bound to ${externalId}) was revoked at ${sa.revokedAt.toISOString()}`);
      principal = { subject: sa.name, kind: "service", roles: sa.roles.filter(isRole), groups: sa.groups, connections: sa.connections, tokenId: null, expiresAt: v.expiresAt, method: "jwt", provider: v.provider };
    } else {
      const groups = groupsFromClaim(v.claims[m.groupsClaim]);
      // Unbound machines get roles only from explicit group mappings (never "*", which is meant for people),
      // else the user role: connect where policy permits, nothing more.
      const roles = rolesForGroups({ roleMappings: this.o.config.roleMappings.filter((r) => r.group !== "*"), defaultRoles: ["user"] }, groups);
      principal = { subject: externalId, kind: "service", roles, groups, tokenId: null, expiresAt: v.expiresAt, method: "jwt", provider: v.provider };
    }
    this.principals.set(v, { principal, until: now + JWT_PRINCIPAL_CACHE_MS });
    return principal;
  }

  /**
   * The service account bound to a machine identity, remembered per identity
   * for JWT_PRINCIPAL_CACHE_MS: a machine fetching a fresh token every few
   * minutes must not cost a store lookup per token.
   */
  private async binding(externalId: string, now: number) {
    const hit = this.bindings.get(externalId);
    if (hit && hit.until > now) return hit.sa;
    const sa = await this.o.serviceAccounts.byExternalId(externalId);
    if (this.bindings.size >= 10_000) this.bindings.clear();
    this.bindings.set(externalId, { sa, until: now + JWT_PRINCIPAL_CACHE_MS });
    return sa;
  }

  /** After a service account or user changed: drop cached JWT principals for it. */
  forget(subject: string): void {
    this.bindings.clear();
    // WeakMaps cannot be searched: drop them all (JWT principals are rebuilt from the verifier's cache in µs).
    this.principals = new WeakMap();
    this.o.tokens.forget((p) => p.subject === subject);
  }
}

/** An IdentityService that knows gateway tokens only (no IdP): for tools and tests that need the auth plugin. */
export function tokenOnlyIdentity(store: Store, tokens: AccessTokenService, log: Logger): IdentityService {
  return new IdentityService({ tokens, serviceAccounts: new ServiceAccountService(store, tokens, { defaultTtlSeconds: 3600, maxTtlSeconds: 86400 }), events: new AuthEventLog(store, log), config: IDENTITY_DEFAULTS, log });
}
