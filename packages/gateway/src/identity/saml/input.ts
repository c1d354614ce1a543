// Step 1 of judging a SAMLResponse: the bytes. Bounded size, base64, UTF-8,
// only XML characters, no DTD, and well-formed XML to two parsers.
// Deep import: node-saml's own XML helpers (xmldom and xml2js parsers), so the
// gateway judges the same document node-saml does without adding a parser.
// node-saml 5.x has no "exports" map; pinned in package.json.
import { parseDomFromString, parseXml2JsFromString } from "@node-saml/node-saml/lib/xml.js";
import type { XDocument } from "./dom.js";
import { fail } from "./errors.js";

/** Bigger than any real response (hundreds of groups included); bounds parse and verify work. */
const MAX_RESPONSE_CHARS = 512 * 1024;

/**
 * The posted SAMLResponse as text, refused unless it is bounded, base64, UTF-8
 * XML with no DTD. Returns the whitespace-free base64 too: node-saml is later
 * given exactly those bytes.
 */
export function decodeResponse(samlResponseB64: string): { b64: string; xml: string } {
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
  return { b64, xml };
}

/**
 * Parses with xmldom (what the signature check walks) after xml2js/sax in strict
 * mode has accepted the text: xmldom alone shrugs off mismatched end tags and
 * unquoted attributes with a warning, and lenient recovery is where XML parser
 * differentials live. Both readers must see a well-formed document.
 */
export async function parseXml(xml: string, what: string): Promise<XDocument> {
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
