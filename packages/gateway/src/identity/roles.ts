import type { Role } from "../auth/principal.js";
import type { IdentityConfig } from "./config.js";

/** Airlock roles for a signed-in person's IdP groups: every matching mapping adds its roles; none → defaultRoles. */
export function rolesForGroups(cfg: Pick<IdentityConfig, "roleMappings" | "defaultRoles">, groups: readonly string[]): Role[] {
  const out = new Set<Role>();
  for (const m of cfg.roleMappings) if (m.group === "*" || groups.includes(m.group)) for (const r of m.roles) out.add(r);
  if (!out.size) for (const r of cfg.defaultRoles) out.add(r);
  return [...out];
}

/** Token lifetime for a set of roles: the shortest configured among them, else the default. */
export function ttlForRoles(cfg: Pick<IdentityConfig, "tokenTtlSeconds">, roles: readonly Role[], fallback: number): number {
  const ttls = roles.map((r) => cfg.tokenTtlSeconds[r]).filter((t): t is number => typeof t === "number");
  return ttls.length ? Math.min(...ttls) : fallback;
}

/** Group names from a claim value: an array of strings, or one string (some IdPs send a single group that way). */
export function groupsFromClaim(v: unknown): string[] {
  const raw = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  const out: string[] = [];
  for (const g of raw) {
    if (typeof g !== "string") continue;
    // Policies and records use the group as an identifier: keep the safe characters, drop what cannot be one.
    const s = g.trim().replace(/[^A-Za-z0-9@._:/-]/g, "_").slice(0, 128);
    if (s && !out.includes(s)) out.push(s);
  }
  return out.slice(0, 256);
}
