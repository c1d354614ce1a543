// SAML 2.0 Service Provider for SP-initiated web sign-in (HTTP-Redirect
// AuthnRequest out, HTTP-POST Response in), built on @node-saml/node-saml.
//
// How a POSTed SAMLResponse is judged, in order (the first failure wins and
// says what was wrong, as LOGIN_FAILED):
//   1. the bytes: bounded size, base64, UTF-8, only XML characters, no DTD,
//      well-formed XML (strictly: both xml2js/sax-strict and xmldom accept it);
//   2. the shape, read from the untrusted document only to refuse: a
//      samlp:Response whose Status is Success, carrying exactly one
//      saml:Assertion (anywhere in the document: a second one is how XML
//      signature wrapping starts), as its direct child, with a signature that
//      does not use SHA-1;
//   3. the Assertion's signature against the configured IdP certificate(s)
//      (node-saml's getVerifiedXml: one enveloped reference to that very
//      element, certificate from configuration, never from KeyInfo);
//   4. everything the identity rests on is then read from the *signed bytes*
//      only (xml-crypto's signed reference), never from the posted document:
//      issuer (if configured), audience, time window, bearer confirmation
//      (Recipient = our ACS, InResponseTo = the request this sign-in sent,
//      NotOnOrAfter), AuthnStatement, NameID and attributes; the unsigned
//      envelope must agree (Destination, InResponseTo);
//   5. node-saml's own validatePostResponseAsync (wantAssertionsSigned,
//      audience, time window, validateInResponseTo "always") as a second,
//      independent gate; its NameID must match ours.
//
// Request ids and replay — what is whose job:
//   * loginRequest() returns the AuthnRequest ID. The CALLER stores it with
//     the RelayState, one-time, in its shared store (identity/login-requests.ts
//     marks the row answered before validation), and passes it to validate()
//     as expectedRequestId. That store is the authoritative replay defence:
//     it spans gateway processes and restarts, this class does not.
//   * validate() accepts a response only if it answers exactly
//     expectedRequestId (a per-call node-saml cacheProvider knows only that
//     id, and the signed SubjectConfirmationData must name it too).
//   * As a backstop against a caller bug, this instance also remembers
//     request ids it accepted (in memory, until the assertion has expired)
//     and refuses to accept one twice.
//
// Not supported (refused with a message): encrypted assertions, SHA-1
// signatures, IdP-initiated (unsolicited) responses, responses signed only
// at the Response level.
//
// Each step has its own file: input.ts (1), shape.ts (2, and the envelope
// check in 4), signature.ts (3), assertion.ts (4). This file runs them in
// order and owns configuration, AuthnRequests, metadata and replay.
import { X509Certificate, randomBytes } from "node:crypto";
import { SAML, ValidateInResponseTo, type CacheProvider, type SamlConfig } from "@node-saml/node-saml";
import { AirlockError } from "@airlock/shared";
import { checkAssertion } from "./assertion.js";
import { configError, fail, q } from "./errors.js";
import { decodeResponse, parseXml } from "./input.js";
import { checkEnvelope, checkShape } from "./shape.js";
import { verifiedAssertion } from "./signature.js";

export interface SamlProviderConfig {
  name: string;
  /** IdP SSO URL (HTTP-Redirect binding). */
  entryPoint: string;
  /** IdP signing certificate(s), PEM or bare base64 DER. Several during a key rollover. */
  idpCert: string | string[];
  /** Our entity id: Issuer of the AuthnRequest and the Audience we require. */
  spEntityId: string;
  /** Our Assertion Consumer Service URL (HTTP-POST): required Destination and Recipient. */
  acsUrl: string;
  /** Multi-valued attribute holding the user's groups (matched by Name, else FriendlyName). Default "groups". */
  groupsAttribute?: string;
  /** Single-valued attribute used as the identity; default: the NameID. */
  subjectAttribute?: string;
  /** Default "email". Falls back to the NameID when its Format is emailAddress. */
  emailAttribute?: string;
  /** Clock difference tolerated on NotBefore / NotOnOrAfter. Default 30 s. */
  clockSkewMs?: number;
  /** If set, the signed Assertion's Issuer must be exactly this (the IdP's entity id). */
  idpIssuer?: string;
}

export interface SamlIdentity {
  provider: string;
  subject: string;
  email?: string;
  groups: string[];
  nameId: string;
  sessionIndex?: string;
  /** Always the expectedRequestId: unsolicited responses are refused. */
  inResponseTo: string | null;
  sessionNotOnOrAfter?: Date;
}

const NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
/** SAML bindings §3.4.3: RelayState MUST NOT exceed 80 bytes. */
const MAX_RELAY_STATE_BYTES = 80;
const DEFAULT_SKEW_MS = 30_000;
const MAX_SKEW_MS = 10 * 60_000;
/** How long node-saml considers a request id fresh; the caller's store has its own, shorter TTL. */
const REQUEST_ID_TTL_MS = 60 * 60_000;
const ANSWERED_CAP = 10_000;

/** The certificate(s) as PEM, each checked to be a parseable X.509 certificate. */
function certsToPem(name: string, idpCert: string | string[]): string[] {
  const list = Array.isArray(idpCert) ? idpCert : [idpCert];
  if (list.length === 0) configError(name, "idpCert is empty: give the IdP's signing certificate (PEM)");
  return list.map((raw, i) => {
    const s = typeof raw === "string" ? raw.trim() : "";
    if (s === "") configError(name, `idpCert[${i}] is empty`);
    try {
      const input = s.includes("-----BEGIN") ? s : Buffer.from(s.replace(/\s+/g, ""), "base64");
      return new X509Certificate(input).toString();
    } catch (err) {
      configError(name, `idpCert[${i}] is not an X.509 certificate (PEM or base64 DER): ${(err as Error).message}`, err);
    }
  });
}

function checkUrl(name: string, field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") configError(name, `${field} is required`);
  let u: URL;
  try {
    u = new URL(value);
  } catch (err) {
    configError(name, `${field} ${q(value)} is not an absolute URL`, err);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") configError(name, `${field} ${q(value)} must be an http(s) URL`);
  return value;
}

/** node-saml's request-id cache for one validate() call: it knows exactly the id this sign-in sent. */
function oneRequestCache(expectedRequestId: string): CacheProvider {
  const createdAt = new Date().toISOString();
  return {
    saveAsync: async () => null,
    getAsync: async (key) => (key === expectedRequestId ? createdAt : null),
    removeAsync: async () => null,
  };
}

const NO_CACHE: CacheProvider = { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null };

export class SamlProvider {
  readonly name: string;
  private readonly cfg: Required<Omit<SamlProviderConfig, "subjectAttribute" | "idpIssuer" | "idpCert">> & Pick<SamlProviderConfig, "subjectAttribute" | "idpIssuer">;
  private readonly idpCerts: string[];
  /** Request ids this instance accepted → when it may forget them (a backstop; the caller's store is the real one-time guard). */
  private readonly answered = new Map<string, number>();

  constructor(cfg: SamlProviderConfig) {
    const name = typeof cfg?.name === "string" ? cfg.name : "";
    if (name.trim() === "") throw new AirlockError("CONFIG_INVALID", "SAML provider: name is required");
    const optName = (field: keyof SamlProviderConfig, v: unknown, dflt?: string): string | undefined => {
      if (v === undefined || v === null) return dflt;
      if (typeof v !== "string" || v.trim() === "") configError(name, `${field} must be a non-empty attribute name`);
      return v;
    };
    const skew = cfg.clockSkewMs ?? DEFAULT_SKEW_MS;
    if (!Number.isFinite(skew) || skew < 0 || skew > MAX_SKEW_MS) configError(name, `clockSkewMs must be between 0 and ${MAX_SKEW_MS} (got ${String(cfg.clockSkewMs)})`);
    if (typeof cfg.spEntityId !== "string" || cfg.spEntityId.trim() === "") configError(name, "spEntityId is required");
    if (cfg.idpIssuer !== undefined && (typeof cfg.idpIssuer !== "string" || cfg.idpIssuer.trim() === "")) configError(name, "idpIssuer, when set, must be the IdP's entity id");
    this.name = name;
    this.cfg = {
      name,
      entryPoint: checkUrl(name, "entryPoint", cfg.entryPoint),
      spEntityId: cfg.spEntityId,
      acsUrl: checkUrl(name, "acsUrl", cfg.acsUrl),
      groupsAttribute: optName("groupsAttribute", cfg.groupsAttribute, "groups")!,
      subjectAttribute: optName("subjectAttribute", cfg.subjectAttribute),
      emailAttribute: optName("emailAttribute", cfg.emailAttribute, "email")!,
      clockSkewMs: skew,
      idpIssuer: cfg.idpIssuer,
    };
    this.idpCerts = certsToPem(name, cfg.idpCert);
    // Build one instance now so node-saml's own option checks run at startup, not at the first sign-in.
    try {
      this.saml(NO_CACHE);
    } catch (err) {
      configError(name, (err as Error).message, err);
    }
  }

  private saml(cacheProvider: CacheProvider, extra: Partial<SamlConfig> = {}): SAML {
    return new SAML({
      entryPoint: this.cfg.entryPoint,
      issuer: this.cfg.spEntityId,
      callbackUrl: this.cfg.acsUrl,
      audience: this.cfg.spEntityId,
      idpCert: this.idpCerts,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: REQUEST_ID_TTL_MS,
      cacheProvider,
      acceptedClockSkewMs: this.cfg.clockSkewMs,
      // Let the IdP pick its NameID format and authentication method (MFA, Kerberos, …):
      // asking for specific ones makes many IdPs refuse the request.
      identifierFormat: NAMEID_UNSPECIFIED,
      disableRequestedAuthnContext: true,
      ...extra,
    });
  }

  /** AuthnRequest redirect URL; returns the request ID so the caller can store it (one-time) with its login state. */
  async loginRequest(relayState: string): Promise<{ url: string; requestId: string }> {
    if (typeof relayState !== "string" || Buffer.byteLength(relayState) > MAX_RELAY_STATE_BYTES) {
      throw new AirlockError("INVALID_ARGUMENT", `SAML RelayState must be a string of at most ${MAX_RELAY_STATE_BYTES} bytes`);
    }
    // An xs:ID (NCName): leading underscore, 160 random bits.
    const requestId = `_${randomBytes(20).toString("hex")}`;
    try {
      const url = await this.saml(NO_CACHE, { generateUniqueId: () => requestId }).getAuthorizeUrlAsync(relayState, undefined, {});
      return { url, requestId };
    } catch (err) {
      throw AirlockError.from(err, "INTERNAL");
    }
  }

  /** SP metadata XML (for admins to register the gateway at the IdP). */
  metadata(): string {
    return this.saml(NO_CACHE).generateServiceProviderMetadata(null, null);
  }

  /**
   * Validates a POSTed SAMLResponse (base64). Requires a signed Assertion and
   * verifies audience, Destination/Recipient, time window, and that
   * InResponseTo equals expectedRequestId (looked up by the caller from
   * RelayState, in its one-time store). Every refusal is LOGIN_FAILED.
   */
  async validate(samlResponseB64: string, expectedRequestId: string): Promise<SamlIdentity> {
    if (typeof expectedRequestId !== "string" || expectedRequestId === "") fail("no SAML request is pending for this answer (no expected request ID)");
    this.forgetExpired();
    if (this.answered.has(expectedRequestId)) fail(`SAML response answers an unknown or already used request: request ${q(expectedRequestId, 64)} was already answered`);
    // Reserved synchronously, so two concurrent validations of one answer cannot both pass.
    this.answered.set(expectedRequestId, Number.POSITIVE_INFINITY);
    try {
      const { identity, usableUntil } = await this.judge(samlResponseB64, expectedRequestId);
      this.remember(expectedRequestId, usableUntil);
      return identity;
    } catch (err) {
      this.answered.delete(expectedRequestId);
      if (AirlockError.is(err)) throw err;
      // Anything unforeseen (a library's TypeError on odd input) is still a refused sign-in, never a crash.
      fail(`SAML response could not be processed: ${(err as Error)?.message ?? String(err)}`, err);
    }
  }

  private forgetExpired(): void {
    const now = Date.now();
    for (const [id, until] of this.answered) if (until <= now) this.answered.delete(id);
  }

  private remember(requestId: string, usableUntil: number): void {
    // Past this the assertion itself has expired, so it cannot be replayed anyway.
    this.answered.delete(requestId); // re-insert: Map order is the eviction order
    this.answered.set(requestId, usableUntil);
    while (this.answered.size > ANSWERED_CAP) {
      const oldest = this.answered.keys().next().value;
      if (oldest === undefined) break;
      this.answered.delete(oldest);
    }
  }

  private async judge(samlResponseB64: string, expectedRequestId: string): Promise<{ identity: SamlIdentity; usableUntil: number }> {
    // 1. Bytes.
    const { b64, xml } = decodeResponse(samlResponseB64);
    const doc = await parseXml(xml, "SAML response");

    // 2. Shape (untrusted: only used to refuse).
    const { root, assertion } = checkShape(doc);

    // 3. The assertion's signature, with the configured certificate(s).
    const a = await verifiedAssertion(xml, assertion, this.idpCerts);

    // 4. Everything else from the signed bytes only.
    const { identity, usableUntil } = checkAssertion(a, expectedRequestId, this.cfg);

    // The unsigned envelope must agree with the signed assertion.
    checkEnvelope(root, { acsUrl: this.cfg.acsUrl, requestId: expectedRequestId, idpIssuer: this.cfg.idpIssuer });

    // 5. node-saml, independently.
    let profile: Awaited<ReturnType<SAML["validatePostResponseAsync"]>>["profile"];
    try {
      ({ profile } = await this.saml(oneRequestCache(expectedRequestId)).validatePostResponseAsync({ SAMLResponse: b64 }));
    } catch (err) {
      fail(`SAML response rejected: ${(err as Error).message}`, err);
    }
    if (!profile) fail("SAML response carries no sign-in");
    if (profile.nameID !== identity.nameId || profile["inResponseTo"] !== expectedRequestId) {
      fail("SAML response is ambiguous: two XML readers disagree on its NameID or InResponseTo (refusing it)");
    }
    return { identity, usableUntil };
  }
}
