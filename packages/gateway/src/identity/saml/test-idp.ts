// A stand-in SAML 2.0 Identity Provider for TESTS ONLY. It is NOT a real IdP:
// it authenticates nobody, keeps no sessions, checks nothing about the
// requests it parses, and signs whatever a test asks it to. It exists so the
// gateway's SAML Service Provider can be driven end to end in-process:
//
//   sp.loginRequest() → idp.parseRequest(url) → idp.respond({...}) → sp.validate()
//
// The Response XML is written by hand here, independently of node-saml (which
// the SP uses), so the two sides do not share a bug. The Assertion is signed
// with xml-crypto: enveloped signature, RSA-SHA256, exclusive c14n, the
// ds:Signature placed right after the Assertion's Issuer as the schema wants.
// Its key and self-signed certificate are generated fresh for each instance,
// plus a second, unrelated key pair for "signed by someone else" tests.
//
// (Named test-*.ts: excluded from the gateway build; xml-crypto is a devDependency.)
// tsyringe (inside @peculiar/x509) needs the Reflect polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import { SignedXml } from "xml-crypto";

export interface TestSamlIdp {
  certPem: string;
  entityId: string;
  ssoUrl: string;
  /** Parses an AuthnRequest redirect URL (deflated SAMLRequest) → its ID, AssertionConsumerServiceURL, Issuer. */
  parseRequest(url: string): { id: string; acsUrl: string; issuer: string; relayState: string | null };
  /** Builds a base64 SAMLResponse for a user, signing the Assertion (enveloped signature, RSA-SHA256, exclusive c14n) unless options say otherwise. */
  respond(opts: RespondOptions): string;
}

export interface RespondOptions {
  inResponseTo: string;
  /** Response Destination and (unless `recipient` is given) SubjectConfirmationData Recipient. */
  acsUrl: string;
  audience: string;
  nameId: string;
  attributes?: Record<string, string | string[]>;
  /** Conditions and SubjectConfirmationData NotOnOrAfter (default: now + 5 min). */
  notOnOrAfter?: Date;
  /** Conditions NotBefore (default: now - 1 min). */
  notBefore?: Date;
  /** false: no signature at all (default true). */
  sign?: boolean;
  /** Sign with a key the SP does not know (the IdP's other, unpublished key). */
  signWithOtherKey?: boolean;
  /** Applied to the final XML (after signing) before base64. */
  tamper?: (xml: string) => string;
  /** Issuer of Response and Assertion (default: the IdP's entity id). */
  issuer?: string;
  // Additions beyond the basic brief, for specific SP checks:
  /** SubjectConfirmationData Recipient, when it should differ from acsUrl. */
  recipient?: string;
  /** NameID Format (default unspecified). */
  nameIdFormat?: string;
  /** AuthnStatement SessionNotOnOrAfter (default: now + 8 h). */
  sessionNotOnOrAfter?: Date;
  /** Signature/digest algorithm (default sha256); "sha1" to test that the SP refuses it. */
  algorithm?: "sha256" | "sha1";
}

const crypto: webcrypto.Crypto = webcrypto;
const RSA_PARAMS = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" } as const;
const ALGS = {
  sha256: { signature: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", digest: "http://www.w3.org/2001/04/xmlenc#sha256" },
  sha1: { signature: "http://www.w3.org/2000/09/xmldsig#rsa-sha1", digest: "http://www.w3.org/2000/09/xmldsig#sha1" },
} as const;
const EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

interface KeyAndCert {
  keyPem: string;
  certPem: string;
}

async function keyAndCert(cn: string): Promise<KeyAndCert> {
  const keys = await crypto.subtle.generateKey(RSA_PARAMS, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: `01${randomBytes(8).toString("hex")}`,
      name: `CN=${cn}`,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
      signingAlgorithm: RSA_PARAMS,
      keys,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    },
    crypto,
  );
  return {
    keyPem: KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string,
    certPem: cert.toString("pem"),
  };
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

function unesc(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    if (e === "amp") return "&";
    return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

const newId = () => `_${randomBytes(16).toString("hex")}`;
const instant = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export async function createTestSamlIdp(opts: { entityId?: string; ssoUrl?: string } = {}): Promise<TestSamlIdp> {
  const entityId = opts.entityId ?? "http://idp.test/metadata";
  const ssoUrl = opts.ssoUrl ?? "http://idp.test/sso";
  const [own, other] = await Promise.all([keyAndCert("Airlock Test IdP"), keyAndCert("Some Other IdP")]);

  function parseRequest(url: string): { id: string; acsUrl: string; issuer: string; relayState: string | null } {
    const u = new URL(url);
    const sso = new URL(ssoUrl);
    if (u.origin !== sso.origin || u.pathname !== sso.pathname) throw new Error(`test IdP: ${url} is not this IdP's SSO URL (${ssoUrl})`);
    const samlRequest = u.searchParams.get("SAMLRequest");
    if (!samlRequest) throw new Error("test IdP: no SAMLRequest in the URL");
    const xml = inflateRawSync(Buffer.from(samlRequest, "base64")).toString("utf8");
    const open = /<(?:[\w.-]+:)?AuthnRequest\b([^>]*)>/.exec(xml);
    if (!open) throw new Error("test IdP: SAMLRequest is not an AuthnRequest");
    const attrs = new Map<string, string>();
    for (const m of open[1]!.matchAll(/([\w:.-]+)\s*=\s*"([^"]*)"/g)) attrs.set(m[1]!, unesc(m[2]!));
    const issuer = /<(?:[\w.-]+:)?Issuer\b[^>]*>([^<]*)<\/(?:[\w.-]+:)?Issuer>/.exec(xml);
    const id = attrs.get("ID");
    const acsUrl = attrs.get("AssertionConsumerServiceURL");
    if (!id || !acsUrl || !issuer) throw new Error("test IdP: AuthnRequest lacks ID, AssertionConsumerServiceURL or Issuer");
    return { id, acsUrl, issuer: unesc(issuer[1]!.trim()), relayState: u.searchParams.get("RelayState") };
  }

  function respond(o: RespondOptions): string {
    const now = new Date();
    const notBefore = o.notBefore ?? new Date(now.getTime() - 60_000);
    const notOnOrAfter = o.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000);
    const sessionEnd = o.sessionNotOnOrAfter ?? new Date(now.getTime() + 8 * 3_600_000);
    const issuer = esc(o.issuer ?? entityId);
    const attributes = Object.entries(o.attributes ?? {})
      .map(([name, v]) => {
        const values = (Array.isArray(v) ? v : [v]).map((x) => `<saml:AttributeValue xsi:type="xs:string">${esc(x)}</saml:AttributeValue>`).join("");
        return `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values}</saml:Attribute>`;
      })
      .join("");
    const assertion =
      `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="${newId()}" Version="2.0" IssueInstant="${instant(now)}">` +
      `<saml:Issuer>${issuer}</saml:Issuer>` +
      `<saml:Subject>` +
      `<saml:NameID Format="${esc(o.nameIdFormat ?? NAMEID_UNSPECIFIED)}">${esc(o.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
      `<saml:SubjectConfirmationData InResponseTo="${esc(o.inResponseTo)}" NotOnOrAfter="${instant(notOnOrAfter)}" Recipient="${esc(o.recipient ?? o.acsUrl)}"/>` +
      `</saml:SubjectConfirmation>` +
      `</saml:Subject>` +
      `<saml:Conditions NotBefore="${instant(notBefore)}" NotOnOrAfter="${instant(notOnOrAfter)}">` +
      `<saml:AudienceRestriction><saml:Audience>${esc(o.audience)}</saml:Audience></saml:AudienceRestriction>` +
      `</saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${instant(now)}" SessionIndex="${newId()}" SessionNotOnOrAfter="${instant(sessionEnd)}">` +
      `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
      `</saml:AuthnStatement>` +
      (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : "") +
      `</saml:Assertion>`;
    let xml =
      `<?xml version="1.0" encoding="UTF-8"?>` +
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${newId()}" Version="2.0" IssueInstant="${instant(now)}" Destination="${esc(o.acsUrl)}" InResponseTo="${esc(o.inResponseTo)}">` +
      `<saml:Issuer>${issuer}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      assertion +
      `</samlp:Response>`;
    if (o.sign !== false) {
      const signer = o.signWithOtherKey ? other : own;
      const alg = ALGS[o.algorithm ?? "sha256"];
      const sig = new SignedXml({ privateKey: signer.keyPem, publicCert: signer.certPem, signatureAlgorithm: alg.signature, canonicalizationAlgorithm: EXC_C14N });
      sig.addReference({ xpath: "//*[local-name(.)='Assertion']", transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: alg.digest });
      sig.computeSignature(xml, { prefix: "ds", location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: "after" } });
      xml = sig.getSignedXml();
    }
    if (o.tamper) xml = o.tamper(xml);
    return Buffer.from(xml, "utf8").toString("base64");
  }

  return { certPem: own.certPem, entityId, ssoUrl, parseRequest, respond };
}
