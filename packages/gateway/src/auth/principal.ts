import { AirlockError } from "@airlock/shared";

export const ROLES = ["admin", "user", "auditor", "reviewer"] as const;
export type Role = (typeof ROLES)[number];

/** How the caller's identity was established. */
export type AuthMethod = "admin" | "oidc" | "saml" | "device" | "refresh" | "service" | "dev" | "jwt" | "api_key";

/** Who is calling, as established from a verified credential. */
export interface Principal {
  /** The identity every record shows: "alice@example.com", "ci-deployer", "corp-idp:machine-1". */
  subject: string;
  kind: "user" | "service";
  roles: Role[];
  /** Groups (token, IdP claim or service account); policies see them as the principal's parents. */
  groups: string[];
  /** The gateway token behind the request; null for IdP JWTs presented directly. */
  tokenId: string | null;
  expiresAt: Date;
  method: AuthMethod;
  /** Identity provider for oidc/saml/jwt identities. */
  provider?: string;
  /** Connection name globs this identity is limited to (service accounts); absent = no limit besides policy. */
  connections?: string[];
  /** The sign-in the token came from (logout ends it). */
  loginId?: string | null;
}

export function isRole(r: string): r is Role {
  return (ROLES as readonly string[]).includes(r);
}

export function hasRole(p: Principal, ...roles: Role[]): boolean {
  return p.roles.includes("admin") || roles.some((r) => p.roles.includes(r));
}

/** Throws PERMISSION_DENIED unless the principal holds one of the roles (admin holds all). */
export function requireRole(p: Principal, ...roles: Role[]): void {
  if (!hasRole(p, ...roles)) {
    throw new AirlockError("PERMISSION_DENIED", `requires role ${roles.join(" or ")}; ${p.subject} has ${p.roles.join(", ") || "none"}`);
  }
}

/** Connection scope of service accounts: names or globs with `*`. */
export function mayUseConnection(p: Principal, connection: string): boolean {
  if (!p.connections) return true;
  return p.connections.some((g) => g === "*" || g === connection || (g.includes("*") && globRe(g).test(connection)));
}

export function requireConnection(p: Principal, connection: string): void {
  if (!mayUseConnection(p, connection)) {
    throw new AirlockError("PERMISSION_DENIED", `${p.subject} is limited to connections ${p.connections!.join(", ")}; ${connection} is not one of them`);
  }
}

function globRe(g: string): RegExp {
  return new RegExp(`^${g.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}
