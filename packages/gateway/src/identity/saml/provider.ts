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
import { X509Certificate, randomBytes } from "node:crypto";
import { SAML, ValidateInResponseTo, type CacheProvider, type SamlConfig } from "@node-saml/node-saml";
// Deep import: node-saml's own XML helpers (xmldom and xml2js parsers, signature
// check), so the gateway judges the same document node-saml does without adding a parser.
// node-saml 5.x has no "exports" map; pinned in package.json.
import { getVerifiedXml, parseDomFromString, parseXml2JsFromString } from "@node-saml/node-saml/lib/xml.js";
import { AirlockError } from "@airlock/shared";

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

const NS_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion";
const NS_DSIG = "http://www.w3.org/2000/09/xmldsig#";
const STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const WEAK_ALGORITHMS = new Set([
  "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
  "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
  "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
  "http://www.w3.org/2000/09/xmldsig#sha1",
]);

/** Bigger than any real response (hundreds of groups included); bounds parse and verify work. */
const MAX_RESPONSE_CHARS = 512 * 1024;
const MAX_DEPTH = 64;
/** SAML bindings §3.4.3: RelayState MUST NOT exceed 80 bytes. */
const MAX_RELAY_STATE_BYTES = 80;
const DEFAULT_SKEW_MS = 30_000;
const MAX_SKEW_MS = 10 * 60_000;
/** How long node-saml considers a request id fresh; the caller's store has its own, shorter TTL. */
const REQUEST_ID_TTL_MS = 60 * 60_000;
const ANSWERED_CAP = 10_000;
const XS_DATETIME = /^\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// Minimal view of the xmldom nodes node-saml hands out (the gateway has no DOM lib types).
interface XNode {
  nodeType: number;
  nodeName: string;
  localName?: string | null;
  namespaceURI?: string | null;
  parentNode: XNode | null;
  textContent: string | null;
  /** null on xmldom's leaf nodes (text, comments). */
  childNodes: { length: number; item(i: number): XNode | null } | null;
}
interface XElement extends XNode {
  getAttributeNode(name: string): { value: string } | null;
}
interface XDocument extends XNode {
  documentElement: XElement | null;
}
const ELEMENT_NODE = 1;
const DOCUMENT_TYPE_NODE = 10;

function fail(message: string, cause?: unknown): never {
  throw new AirlockError("LOGIN_FAILED", message, cause === undefined ? undefined : { cause });
}

function configError(name: string, message: string, cause?: unknown): never {
  throw new AirlockError("CONFIG_INVALID", `SAML provider ${JSON.stringify(name)}: ${message}`, cause === undefined ? undefined : { cause });
}

const q = (s: string, max = 200) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

function attr(el: XElement, name: string): string | null {
  return el.getAttributeNode(name)?.value ?? null;
}

function isElement(n: XNode | null): n is XElement {
  return n !== null && n.nodeType === ELEMENT_NODE;
}

function children(el: XNode, ns: string, local: string): XElement[] {
  const out: XElement[] = [];
  const kids = el.childNodes;
  for (let i = 0; kids && i < kids.length; i++) {
    const c = kids.item(i);
    if (isElement(c) && c.localName === local && c.namespaceURI === ns) out.push(c);
  }
  return out;
}

function child(el: XNode, ns: string, local: string): XElement | undefined {
  return children(el, ns, local)[0];
}

/** Every element of the document, depth-first, refusing absurd nesting (xml-crypto's c14n recurses). */
function allElements(doc: XNode): XElement[] {
  const out: XElement[] = [];
  const stack: Array<[XNode, number]> = [[doc, 0]];
  while (stack.length > 0) {
    const [n, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) fail(`SAML response is nested deeper than ${MAX_DEPTH} levels: refusing it`);
    if (n.nodeType === DOCUMENT_TYPE_NODE) fail("SAML response contains a DOCTYPE: refusing it");
    if (isElement(n)) out.push(n);
    const kids = n.childNodes;
    for (let i = (kids?.length ?? 0) - 1; kids && i >= 0; i--) {
      const c = kids.item(i);
      if (c) stack.push([c, depth + 1]);
    }
  }
  return out;
}

function text(el: XElement | undefined): string {
  return (el?.textContent ?? "").trim();
}

/** An xs:dateTime with a time zone (SAML times are UTC), or a LOGIN_FAILED naming the field. */
function instant(value: string | null, what: string): number | null {
  if (value === null) return null;
  const ms = XS_DATETIME.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) fail(`SAML assertion has an invalid ${what} timestamp ${q(value, 40)}`);
  return ms;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Parses with xmldom (what the signature check walks) after xml2js/sax in strict
 * mode has accepted the text: xmldom alone shrugs off mismatched end tags and
 * unquoted attributes with a warning, and lenient recovery is where XML parser
 * differentials live. Both readers must see a well-formed document.
 */
async function parseXml(xml: string, what: string): Promise<XDocument> {
  let doc: XDocument;
  try {
    await parseXml2JsFromString(xml);
    doc = (await parseDomFromString(xml)) as unknown as XDocument;
  } catch (err) {
    fail(`${what} is not well-formed XML: ${(err as Error).message.split("\n")[0]!.slice(0, 200)}`, err);
  }
  if (!doc.documentElement) fail(`${what} is not an XML document`);
  return doc;
}

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
    if (typeof samlResponseB64 !== "string" || samlResponseB64.trim() === "") fail("SAML response is empty");
    if (samlResponseB64.length > MAX_RESPONSE_CHARS) fail(`SAML response is too large (${samlResponseB64.length} characters, at most ${MAX_RESPONSE_CHARS})`);
    const b64 = samlResponseB64.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) fail("SAML response is not base64");
    let xml: string;
    try {
      xml = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"));
    } catch (err) {
      fail("SAML response is not UTF-8 text", err);
    }
    if (!/^\s*</.test(xml.replace(/^\uFEFF/, ""))) fail("SAML response is not XML");
    // XML 1.0 forbids these; a lenient parser would read them as whitespace, which no signer did.
    if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(xml)) fail("SAML response contains characters that are not allowed in XML");
    if (/<!DOCTYPE|<!ENTITY/i.test(xml)) fail("SAML response contains a DOCTYPE or entity declaration: refusing it");
    const doc = await parseXml(xml, "SAML response");

    // 2. Shape (untrusted: only used to refuse).
    const elements = allElements(doc);
    const root = doc.documentElement!;
    if (root.localName !== "Response" || root.namespaceURI !== NS_PROTOCOL) {
      fail(`SAML response is not a samlp:Response (its root element is <${root.nodeName.slice(0, 60)}>)`);
    }
    const statusEl = child(root, NS_PROTOCOL, "Status");
    const statusCode = statusEl ? child(statusEl, NS_PROTOCOL, "StatusCode") : undefined;
    const status = statusCode ? attr(statusCode, "Value") : null;
    if (!statusEl || !statusCode || status === null) fail("SAML response has no Status");
    if (status !== STATUS_SUCCESS) {
      const sub = child(statusCode, NS_PROTOCOL, "StatusCode");
      const detail = [status, sub ? attr(sub, "Value") : null].filter((s): s is string => !!s).map((s) => s.replace(/^.*:/, "")).join("/");
      const message = text(child(statusEl, NS_PROTOCOL, "StatusMessage"));
      fail(`the identity provider refused the sign-in (status ${detail}${message ? `: ${q(message)}` : ""})`);
    }
    const encrypted = elements.filter((e) => e.localName === "EncryptedAssertion");
    if (encrypted.length > 0) fail("SAML response carries an encrypted assertion, which this gateway does not support: configure the IdP to sign, not encrypt, assertions");
    const assertions = elements.filter((e) => e.localName === "Assertion");
    if (assertions.length === 0) fail("SAML response carries no assertion");
    if (assertions.length > 1) fail(`SAML response carries ${assertions.length} assertions where exactly one is accepted (possible XML signature wrapping attack)`);
    const assertion = assertions[0]!;
    if (assertion.namespaceURI !== NS_ASSERTION || assertion.parentNode !== root) {
      fail("SAML assertion is not a direct child of the Response (possible XML signature wrapping attack)");
    }
    const signatures = children(assertion, NS_DSIG, "Signature");
    if (signatures.length === 0) fail("SAML response is not signed: its assertion carries no signature, and this gateway requires signed assertions");
    if (signatures.length > 1) fail("SAML assertion carries more than one signature: refusing it");
    for (const e of elements) {
      if (e.namespaceURI === NS_DSIG && (e.localName === "SignatureMethod" || e.localName === "DigestMethod")) {
        const alg = attr(e, "Algorithm") ?? "";
        if (WEAK_ALGORITHMS.has(alg)) fail(`SAML response is signed with SHA-1 (${alg}), which this gateway refuses: configure the IdP to sign with RSA-SHA256`);
      }
    }

    // 3. The assertion's signature, with the configured certificate(s).
    let signedXml: string | null;
    try {
      signedXml = getVerifiedXml(xml, assertion as unknown as Parameters<typeof getVerifiedXml>[1], this.idpCerts);
    } catch (err) {
      fail(`SAML assertion signature is invalid: ${(err as Error).message}`, err);
    }
    if (signedXml === null) {
      fail("SAML assertion signature is invalid: it was not made with the configured IdP certificate, or the assertion was changed after signing");
    }

    // 4. Everything else from the signed bytes only.
    const signedDoc = await parseXml(signedXml, "signed SAML assertion");
    allElements(signedDoc);
    const a = signedDoc.documentElement!;
    if (a.localName !== "Assertion" || a.namespaceURI !== NS_ASSERTION || attr(a, "ID") !== attr(assertion, "ID")) {
      fail("SAML signature does not cover the assertion (possible XML signature wrapping attack)");
    }
    const { identity, usableUntil } = this.checkAssertion(a, expectedRequestId);

    // The unsigned envelope must agree with the signed assertion.
    const destination = attr(root, "Destination");
    if (destination !== null && destination !== this.cfg.acsUrl) {
      fail(`SAML response Destination ${q(destination)} is not this gateway's ACS URL (${q(this.cfg.acsUrl)})`);
    }
    const inResponseTo = attr(root, "InResponseTo");
    if (inResponseTo === null) fail("SAML response has no InResponseTo: unsolicited (IdP-initiated) responses are not accepted; start the sign-in at the gateway");
    if (inResponseTo !== expectedRequestId) {
      fail(`SAML response answers an unknown or already used request (it answers ${q(inResponseTo, 64)}, this sign-in sent ${q(expectedRequestId, 64)})`);
    }
    if (this.cfg.idpIssuer !== undefined) {
      const responseIssuer = child(root, NS_ASSERTION, "Issuer");
      if (responseIssuer && text(responseIssuer) !== this.cfg.idpIssuer) fail(`SAML response issuer ${q(text(responseIssuer))} is not the configured IdP (${q(this.cfg.idpIssuer)})`);
    }

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

  /** The identity in a signed assertion, and until when the assertion could be presented. */
  private checkAssertion(a: XElement, expectedRequestId: string): { identity: SamlIdentity; usableUntil: number } {
    const now = Date.now();
    const skew = this.cfg.clockSkewMs;
    const clock = `gateway time ${iso(now)}, allowed clock skew ${Math.round(skew / 1000)}s`;

    if (attr(a, "Version") !== "2.0") fail("SAML assertion is not SAML 2.0");
    const issuer = text(child(a, NS_ASSERTION, "Issuer"));
    if (this.cfg.idpIssuer !== undefined && issuer !== this.cfg.idpIssuer) {
      fail(`SAML assertion issuer ${q(issuer)} is not the configured IdP (${q(this.cfg.idpIssuer)})`);
    }

    // Audience.
    const conditions = children(a, NS_ASSERTION, "Conditions");
    if (conditions.length !== 1) fail(conditions.length === 0 ? "SAML assertion has no Conditions (no audience, no validity window)" : "SAML assertion has more than one Conditions element");
    const cond = conditions[0]!;
    const restrictions = children(cond, NS_ASSERTION, "AudienceRestriction");
    if (restrictions.length === 0) fail("SAML assertion has no AudienceRestriction: it would be valid for any service, refusing it");
    for (const r of restrictions) {
      const audiences = children(r, NS_ASSERTION, "Audience").map((x) => text(x));
      if (!audiences.includes(this.cfg.spEntityId)) {
        fail(`SAML response audience ${audiences.length ? audiences.map((x) => q(x)).join(", ") : "(none)"} is not this gateway (${q(this.cfg.spEntityId)})`);
      }
    }

    // Time window.
    const checkWindow = (el: XElement, what: string) => {
      const notBefore = instant(attr(el, "NotBefore"), `${what} NotBefore`);
      const notOnOrAfter = instant(attr(el, "NotOnOrAfter"), `${what} NotOnOrAfter`);
      if (notBefore !== null && now + skew < notBefore) fail(`SAML assertion is not valid before ${iso(notBefore)} (${clock})`);
      if (notOnOrAfter !== null && now - skew >= notOnOrAfter) fail(`SAML assertion expired at ${iso(notOnOrAfter)} (${clock})`);
      return notOnOrAfter;
    };
    const conditionsEnd = checkWindow(cond, "Conditions");

    // Subject and its bearer confirmation (Web Browser SSO profile, SAML profiles §4.1.4.2).
    const subject = child(a, NS_ASSERTION, "Subject");
    if (!subject) fail("SAML assertion has no Subject");
    if (child(subject, NS_ASSERTION, "EncryptedID")) fail("SAML assertion has an encrypted NameID, which this gateway does not support");
    const nameIdEl = child(subject, NS_ASSERTION, "NameID");
    const nameId = text(nameIdEl);
    if (!nameIdEl || nameId === "") fail("SAML assertion has no NameID");
    const bearers = children(subject, NS_ASSERTION, "SubjectConfirmation").filter((s) => attr(s, "Method") === CM_BEARER);
    if (bearers.length === 0) fail("SAML assertion has no bearer SubjectConfirmation");
    let confirmationError: unknown = null;
    let confirmationEnd = Number.POSITIVE_INFINITY;
    const confirmed = bearers.some((sc) => {
      try {
        const data = child(sc, NS_ASSERTION, "SubjectConfirmationData");
        if (!data) fail("SAML assertion's bearer confirmation has no SubjectConfirmationData");
        const recipient = attr(data, "Recipient");
        if (recipient !== this.cfg.acsUrl) {
          fail(recipient === null ? "SAML assertion's bearer confirmation has no Recipient" : `SAML assertion Recipient ${q(recipient)} is not this gateway's ACS URL (${q(this.cfg.acsUrl)})`);
        }
        const irt = attr(data, "InResponseTo");
        if (irt !== expectedRequestId) {
          fail(irt === null ? "SAML assertion's bearer confirmation has no InResponseTo: unsolicited responses are not accepted" : `SAML response answers an unknown or already used request (its assertion answers ${q(irt, 64)}, this sign-in sent ${q(expectedRequestId, 64)})`);
        }
        if (attr(data, "NotOnOrAfter") === null) fail("SAML assertion's bearer confirmation has no NotOnOrAfter");
        confirmationEnd = checkWindow(data, "SubjectConfirmationData")!;
        return true;
      } catch (err) {
        confirmationError ??= err;
        return false;
      }
    });
    if (!confirmed) throw confirmationError;

    // Authentication statement.
    const authn = child(a, NS_ASSERTION, "AuthnStatement");
    if (!authn) fail("SAML assertion has no AuthnStatement (it does not say the user signed in)");
    const sessionEnd = instant(attr(authn, "SessionNotOnOrAfter"), "SessionNotOnOrAfter");
    if (sessionEnd !== null && now - skew >= sessionEnd) fail(`the identity provider's session ended at ${iso(sessionEnd)} (${clock})`);
    const sessionIndex = attr(authn, "SessionIndex") ?? undefined;

    // Attributes → subject, email, groups.
    const attributes = new Map<string, string[]>();
    const friendly = new Map<string, string[]>();
    for (const statement of children(a, NS_ASSERTION, "AttributeStatement")) {
      for (const at of children(statement, NS_ASSERTION, "Attribute")) {
        const values = children(at, NS_ASSERTION, "AttributeValue").map((v) => text(v)).filter((v) => v !== "");
        for (const [key, map] of [[attr(at, "Name"), attributes], [attr(at, "FriendlyName"), friendly]] as const) {
          if (key) map.set(key, [...(map.get(key) ?? []), ...values]);
        }
      }
    }
    const valuesOf = (name: string) => attributes.get(name) ?? friendly.get(name) ?? [];

    let subjectValue = nameId;
    if (this.cfg.subjectAttribute !== undefined) {
      const vs = [...new Set(valuesOf(this.cfg.subjectAttribute))];
      if (vs.length === 0) fail(`SAML assertion has no ${q(this.cfg.subjectAttribute)} attribute, configured as the user's identity (subjectAttribute)`);
      if (vs.length > 1) fail(`SAML assertion's ${q(this.cfg.subjectAttribute)} attribute (subjectAttribute) has ${vs.length} values where one is expected`);
      subjectValue = vs[0]!;
    }
    const email = valuesOf(this.cfg.emailAttribute)[0] ?? (nameIdEl && attr(nameIdEl, "Format") === NAMEID_EMAIL ? nameId : undefined);
    const groups = [...new Set(valuesOf(this.cfg.groupsAttribute))];

    const identity: SamlIdentity = { provider: this.name, subject: subjectValue, groups, nameId, inResponseTo: expectedRequestId };
    if (email !== undefined) identity.email = email;
    if (sessionIndex !== undefined) identity.sessionIndex = sessionIndex;
    if (sessionEnd !== null) identity.sessionNotOnOrAfter = new Date(sessionEnd);
    return { identity, usableUntil: Math.min(confirmationEnd, conditionsEnd ?? Number.POSITIVE_INFINITY) + skew };
  }
}
