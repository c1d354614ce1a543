import { createHash, randomUUID } from "node:crypto";
import { AirlockError } from "@airlock/shared";
import { generateToken, hashToken, type Keyring } from "../crypto/index.js";
import type { Store } from "../store/index.js";

/** What a sign-in in progress remembers (encrypted at rest: PKCE verifiers and IdP device codes are secrets). */
export interface PendingLogin {
  /** oidc: PKCE verifier, state and nonce sent to the IdP. */
  verifier?: string;
  state?: string;
  nonce?: string;
  /** saml: the AuthnRequest ID the answer must be InResponseTo. */
  requestId?: string;
  /** device: the IdP's device code. */
  deviceCode?: string;
  interval?: number;
  /** Where the browser takes the login code, with the client's own state and PKCE challenge (code/saml). */
  redirectUri?: string;
  clientState?: string;
  codeChallenge?: string;
}

const REQUEST_TTL_MS = 10 * 60_000;
const CODE_TTL_MS = 2 * 60_000;
const LOOPBACK_RE = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}(\/[^?#]*)?$/;

/**
 * An allow-list entry matches a redirect with exactly its origin, and its path
 * as a prefix when it ends in "*" (never a raw string prefix: "https://app.example.com*"
 * must not match "https://app.example.com.evil.net").
 */
function allowed(pattern: string, uri: string): boolean {
  try {
    const prefix = pattern.endsWith("*");
    const p = new URL(prefix ? pattern.slice(0, -1) : pattern);
    const u = new URL(uri);
    if (u.origin !== p.origin || u.username || u.password || u.hash) return false;
    return prefix ? u.pathname.startsWith(p.pathname) : u.href === p.href;
  } catch {
    return false;
  }
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** RFC 7636 S256: BASE64URL(SHA256(verifier)). */
export function s256(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

/**
 * Sign-ins in progress, kept in the store (any gateway process can take the
 * IdP's answer) and each handle usable once: a replayed callback, an unknown
 * state or a reused login code is refused with a reason.
 */
export class LoginRequests {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly redirectAllowList: string[],
  ) {}

  checkRedirect(uri: string): void {
    if (LOOPBACK_RE.test(uri) || this.redirectAllowList.some((p) => allowed(p, uri))) return;
    throw new AirlockError("INVALID_ARGUMENT", `redirect ${JSON.stringify(uri.slice(0, 200))} is not allowed: use a loopback address (http://127.0.0.1:PORT/…) or one in identity.redirectAllowList`);
  }

  checkChallenge(c: string | undefined): void {
    if (!c || !/^[A-Za-z0-9_-]{43,128}$/.test(c)) throw new AirlockError("INVALID_ARGUMENT", "codeChallenge must be the base64url S256 PKCE challenge of the client's verifier (43-128 chars)");
  }

  async create(kind: "code" | "device" | "saml", provider: string, handle: string, data: PendingLogin, ttlMs = REQUEST_TTL_MS): Promise<Date> {
    const expiresAt = new Date(Date.now() + ttlMs);
    const id = randomUUID();
    // The row id is the encryption's associated data: a blob copied to another row does not decrypt.
    await this.store.prisma.loginRequest.create({ data: { id, handleHash: sha256(handle), provider, kind, data: new Uint8Array(this.keyring.encryptJson(data, `login:${id}`)) as Uint8Array<ArrayBuffer>, expiresAt } });
    // Old requests are cleaned up as new ones arrive; nothing else needs a timer.
    this.store.prisma.loginRequest.deleteMany({ where: { expiresAt: { lt: new Date(Date.now() - 3600_000) } } }).catch(() => {});
    return expiresAt;
  }

  /**
   * Takes the IdP's answer for a handle exactly once. Unknown → state mismatch
   * (or expired and cleaned); already answered → a replay.
   */
  async answer(kind: "code" | "saml", handle: string | null): Promise<{ id: string; provider: string; data: PendingLogin }> {
    if (!handle) throw new AirlockError("LOGIN_FAILED", "the identity provider's answer carries no state: refusing it (state mismatch)");
    const row = await this.store.prisma.loginRequest.findUnique({ where: { handleHash: sha256(handle) } });
    if (!row || row.kind !== kind) throw new AirlockError("LOGIN_FAILED", "unknown sign-in state: this answer belongs to no sign-in started here (state mismatch)");
    if (row.expiresAt.getTime() < Date.now()) throw new AirlockError("LOGIN_FAILED", `this sign-in expired at ${row.expiresAt.toISOString()}; start again`);
    const took = await this.store.prisma.loginRequest.updateMany({ where: { id: row.id, answeredAt: null }, data: { answeredAt: new Date() } });
    if (took.count !== 1) throw new AirlockError("LOGIN_FAILED", "this sign-in was already completed: the authorization answer (code) was replayed");
    return { id: row.id, provider: row.provider, data: this.keyring.decryptJson(row.data, `login:${row.id}`) as PendingLogin };
  }

  /** A device sign-in by its gateway handle (polled many times until it completes). */
  async device(handle: string): Promise<{ id: string; provider: string; data: PendingLogin; loginId: string | null; consumed: boolean }> {
    const row = await this.store.prisma.loginRequest.findUnique({ where: { handleHash: hashToken(handle) } });
    if (!row || row.kind !== "device") throw new AirlockError("LOGIN_FAILED", "unknown device sign-in");
    if (row.expiresAt.getTime() < Date.now()) throw new AirlockError("LOGIN_FAILED", `the device sign-in expired at ${row.expiresAt.toISOString()}; start again`);
    return { id: row.id, provider: row.provider, data: this.keyring.decryptJson(row.data, `login:${row.id}`) as PendingLogin, loginId: row.loginId, consumed: !!row.consumedAt };
  }

  /** Marks a device sign-in as done exactly once (two pollers racing get one token). */
  async consumeDevice(id: string, loginId: string): Promise<boolean> {
    const r = await this.store.prisma.loginRequest.updateMany({ where: { id, consumedAt: null }, data: { consumedAt: new Date(), loginId } });
    return r.count === 1;
  }

  /** After the IdP step: a one-time login code for the client, bound to its PKCE challenge. */
  async issueCode(id: string, loginId: string): Promise<string> {
    const code = generateToken("lc");
    await this.store.prisma.loginRequest.update({ where: { id }, data: { resultHash: hashToken(code), loginId, expiresAt: new Date(Date.now() + CODE_TTL_MS) } });
    return code;
  }

  /** The client exchanges the login code with its PKCE verifier, once. */
  async redeemCode(code: string, verifier: string): Promise<{ loginId: string; provider: string }> {
    const row = await this.store.prisma.loginRequest.findUnique({ where: { resultHash: hashToken(code) } });
    if (!row || !row.loginId) throw new AirlockError("LOGIN_FAILED", "unknown login code");
    if (row.consumedAt) throw new AirlockError("LOGIN_FAILED", "this login code was already used");
    if (row.expiresAt.getTime() < Date.now()) throw new AirlockError("LOGIN_FAILED", "this login code expired");
    const data = this.keyring.decryptJson(row.data, `login:${row.id}`) as PendingLogin;
    if (!data.codeChallenge || s256(verifier) !== data.codeChallenge) throw new AirlockError("LOGIN_FAILED", "the code verifier does not match the challenge this sign-in was started with (PKCE)");
    const took = await this.store.prisma.loginRequest.updateMany({ where: { id: row.id, consumedAt: null }, data: { consumedAt: new Date() } });
    if (took.count !== 1) throw new AirlockError("LOGIN_FAILED", "this login code was already used");
    return { loginId: row.loginId, provider: row.provider };
  }

  static deviceHandle(): string {
    return generateToken("dc");
  }
}
