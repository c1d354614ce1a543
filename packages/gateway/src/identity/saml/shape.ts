// Steps 2 and 4b of judging a SAMLResponse: the parts read from the untrusted,
// posted document. They are only ever used to refuse: the identity itself is
// read from the signed bytes (assertion.ts).
import { NS_ASSERTION, NS_DSIG, NS_PROTOCOL, allElements, attr, child, children, text, type XDocument, type XElement } from "./dom.js";
import { fail, q } from "./errors.js";

const STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success";
const WEAK_ALGORITHMS = new Set([
  "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
  "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
  "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
  "http://www.w3.org/2000/09/xmldsig#sha1",
]);

/**
 * A samlp:Response whose Status is Success, carrying exactly one saml:Assertion
 * (anywhere in the document: a second one is how XML signature wrapping starts),
 * as its direct child, with one signature that does not use SHA-1.
 * Returns the Response element and the Assertion element to verify.
 */
export function checkShape(doc: XDocument): { root: XElement; assertion: XElement } {
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
  return { root, assertion };
}

/**
 * The unsigned envelope must agree with the signed assertion: Destination (if
 * present) is our ACS, InResponseTo is the request this sign-in sent, and the
 * Response's Issuer (if present) is the configured IdP.
 */
export function checkEnvelope(root: XElement, expected: { acsUrl: string; requestId: string; idpIssuer: string | undefined }): void {
  const destination = attr(root, "Destination");
  if (destination !== null && destination !== expected.acsUrl) {
    fail(`SAML response Destination ${q(destination)} is not this gateway's ACS URL (${q(expected.acsUrl)})`);
  }
  const inResponseTo = attr(root, "InResponseTo");
  if (inResponseTo === null) fail("SAML response has no InResponseTo: unsolicited (IdP-initiated) responses are not accepted; start the sign-in at the gateway");
  if (inResponseTo !== expected.requestId) {
    fail(`SAML response answers an unknown or already used request (it answers ${q(inResponseTo, 64)}, this sign-in sent ${q(expected.requestId, 64)})`);
  }
  if (expected.idpIssuer !== undefined) {
    const responseIssuer = child(root, NS_ASSERTION, "Issuer");
    if (responseIssuer && text(responseIssuer) !== expected.idpIssuer) fail(`SAML response issuer ${q(text(responseIssuer))} is not the configured IdP (${q(expected.idpIssuer)})`);
  }
}
