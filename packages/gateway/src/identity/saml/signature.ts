// Steps 3 and 4a of judging a SAMLResponse: verify the Assertion's signature
// against the configured IdP certificate(s), and hand back the *signed bytes*,
// parsed, so that everything after this reads only what the IdP signed.
// Deep import: node-saml's own signature check (xml-crypto underneath), so the
// gateway verifies exactly as node-saml does. node-saml 5.x has no "exports" map;
// pinned in package.json.
import { getVerifiedXml } from "@node-saml/node-saml/lib/xml.js";
import { NS_ASSERTION, allElements, attr, type XElement } from "./dom.js";
import { fail } from "./errors.js";
import { parseXml } from "./input.js";

/**
 * node-saml's getVerifiedXml: one enveloped reference to that very element,
 * certificate from configuration, never from KeyInfo. Returns the signed
 * Assertion, re-parsed from xml-crypto's signed reference (not the posted document).
 */
export async function verifiedAssertion(xml: string, assertion: XElement, idpCerts: string[]): Promise<XElement> {
  let signedXml: string | null;
  try {
    signedXml = getVerifiedXml(xml, assertion as unknown as Parameters<typeof getVerifiedXml>[1], idpCerts);
  } catch (err) {
    fail(`SAML assertion signature is invalid: ${(err as Error).message}`, err);
  }
  if (signedXml === null) {
    fail("SAML assertion signature is invalid: it was not made with the configured IdP certificate, or the assertion was changed after signing");
  }

  const signedDoc = await parseXml(signedXml, "signed SAML assertion");
  allElements(signedDoc);
  const a = signedDoc.documentElement!;
  if (a.localName !== "Assertion" || a.namespaceURI !== NS_ASSERTION || attr(a, "ID") !== attr(assertion, "ID")) {
    fail("SAML signature does not cover the assertion (possible XML signature wrapping attack)");
  }
  return a;
}
