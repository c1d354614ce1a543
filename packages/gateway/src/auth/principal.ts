import { AirlockError } from "@airlock/shared";

export const ROLES = ["admin", "user", "auditor", "reviewer"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, as established from a verified token. */
export interface Principal {
  subject: string;
  kind: "user" | "service";
  roles: Role[];
  /** Groups (from the token today, the IdP later); policies see them as the principal's parents. */
  groups: string[];
  tokenId: string;
  expiresAt: Date;
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
