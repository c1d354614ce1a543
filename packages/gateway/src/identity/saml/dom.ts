// Namespace-aware helpers over the xmldom documents node-saml parses, shared
// by the checks on the posted Response and on the signed Assertion.
import { fail } from "./errors.js";

export const NS_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol";
export const NS_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion";
export const NS_DSIG = "http://www.w3.org/2000/09/xmldsig#";

const MAX_DEPTH = 64;

// Minimal view of the xmldom nodes node-saml hands out (the gateway has no DOM lib types).
export interface XNode {
  nodeType: number;
  nodeName: string;
  localName?: string | null;
  namespaceURI?: string | null;
  parentNode: XNode | null;
  textContent: string | null;
  /** null on xmldom's leaf nodes (text, comments). */
  childNodes: { length: number; item(i: number): XNode | null } | null;
}
export interface XElement extends XNode {
  getAttributeNode(name: string): { value: string } | null;
}
export interface XDocument extends XNode {
  documentElement: XElement | null;
}
const ELEMENT_NODE = 1;
const DOCUMENT_TYPE_NODE = 10;

export function attr(el: XElement, name: string): string | null {
  return el.getAttributeNode(name)?.value ?? null;
}

function isElement(n: XNode | null): n is XElement {
  return n !== null && n.nodeType === ELEMENT_NODE;
}

export function children(el: XNode, ns: string, local: string): XElement[] {
  const out: XElement[] = [];
  const kids = el.childNodes;
  for (let i = 0; kids && i < kids.length; i++) {
    const c = kids.item(i);
    if (isElement(c) && c.localName === local && c.namespaceURI === ns) out.push(c);
  }
  return out;
}

export function child(el: XNode, ns: string, local: string): XElement | undefined {
  return children(el, ns, local)[0];
}

/** Every element of the document, depth-first, refusing absurd nesting (xml-crypto's c14n recurses). */
export function allElements(doc: XNode): XElement[] {
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

export function text(el: XElement | undefined): string {
  return (el?.textContent ?? "").trim();
}
