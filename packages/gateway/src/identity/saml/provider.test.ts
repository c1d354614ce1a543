import { parseDomFromString, xpath } from "@node-saml/node-saml/lib/xml.js";
import { AirlockError } from "@airlock/shared";
import { ExclusiveCanonicalization } from "xml-crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { SamlProvider, type SamlIdentity, type SamlProviderConfig } from "./provider.js";
import { createTestSamlIdp, type RespondOptions, type TestSamlIdp } from "./test-idp.js";
import { mulberry32 } from "../../test-prng.js";

const SP_ENTITY = "https://gw.example/api/v1/auth/saml/corp-saml";
const ACS = `${SP_ENTITY}/acs`;
const ALICE_ATTRS = { groups: ["dba", "ops", "dba"], email: "alice@example.com" };

let idp: TestSamlIdp;
let otherIdp: TestSamlIdp;

beforeAll(async () => {
  [idp, otherIdp] = await Promise.all([createTestSamlIdp(), createTestSamlIdp({ entityId: "http://other-idp.test/metadata" })]);
});

function makeSp(over: Partial<SamlProviderConfig> = {}): SamlProvider {
  return new SamlProvider({ name: "corp-saml", entryPoint: idp.ssoUrl, idpCert: idp.certPem, spEntityId: SP_ENTITY, acsUrl: ACS, ...over });
}

/** SP-initiated: the SP builds an AuthnRequest, the stand-in IdP reads it and answers for alice. */
async function signIn(sp: SamlProvider, over: Partial<RespondOptions> = {}, relayState = "rs-1"): Promise<{ response: string; requestId: string }> {
  const { url, requestId } = await sp.loginRequest(relayState);
  const req = idp.parseRequest(url);
  const response = idp.respond({ inResponseTo: req.id, acsUrl: req.acsUrl, audience: req.issuer, nameId: "alice", attributes: ALICE_ATTRS, ...over });
  return { response, requestId };
}

/** The settled outcome of a validation, which must never take long. */
async function outcome(p: Promise<SamlIdentity>): Promise<{ ok: SamlIdentity } | { err: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("validation hung for 20 s")), 20_000);
  });
  try {
    return { ok: await Promise.race([p, timeout]) };
  } catch (err) {
    if (err instanceof Error && err.message === "validation hung for 5 s") throw err;
    return { err };
  } finally {
    clearTimeout(timer);
  }
}

async function expectRefused(p: Promise<SamlIdentity>, message: RegExp): Promise<AirlockError> {
  const r = await outcome(p);
  if ("ok" in r) throw new Error(`expected a refusal matching ${message}, but the response was accepted for ${r.ok.subject}`);
  expect(r.err).toBeInstanceOf(AirlockError);
  const e = r.err as AirlockError;
  expect(e.code).toBe("LOGIN_FAILED");
  expect(e.message).toMatch(message);
  return e;
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
const xmlOf = (response: string) => Buffer.from(response, "base64").toString("utf8");
const ASSERTION_RE = /<saml:Assertion[\s\S]*<\/saml:Assertion>/;
/** The signed assertion of a response, as sent. */
const assertionOf = (xml: string) => ASSERTION_RE.exec(xml)?.[0] ?? null;

describe("SamlProvider: SP-initiated round trip", () => {
  it("builds an AuthnRequest the IdP can read, and turns the signed answer into an identity", async () => {
    const sp = makeSp();
    const { url, requestId } = await sp.loginRequest("relay-123");
    expect(url.startsWith(`${idp.ssoUrl}?`)).toBe(true);
    const req = idp.parseRequest(url);
    expect(req).toEqual({ id: requestId, acsUrl: ACS, issuer: SP_ENTITY, relayState: "relay-123" });
    expect(requestId).toMatch(/^_[0-9a-f]{40}$/);

    const response = idp.respond({ inResponseTo: req.id, acsUrl: req.acsUrl, audience: req.issuer, nameId: "alice", attributes: ALICE_ATTRS });
    const id = await sp.validate(response, requestId);
    expect(id).toMatchObject({ provider: "corp-saml", subject: "alice", nameId: "alice", email: "alice@example.com", groups: ["dba", "ops"], inResponseTo: requestId });
    expect(id.sessionIndex).toMatch(/^_[0-9a-f]{32}$/);
    expect(id.sessionNotOnOrAfter).toBeInstanceOf(Date);
    expect(id.sessionNotOnOrAfter!.getTime()).toBeGreaterThan(Date.now() + 7 * 3_600_000);
  });

  it("every AuthnRequest has its own ID", async () => {
    const sp = makeSp();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await sp.loginRequest(`r${i}`)).requestId);
    expect(ids.size).toBe(5);
  });

  it("uses subjectAttribute / emailAttribute / groupsAttribute when configured (a single-valued groups attribute is one group)", async () => {
    const sp = makeSp({ subjectAttribute: "uid", emailAttribute: "mail", groupsAttribute: "memberOf" });
    const { response, requestId } = await signIn(sp, { attributes: { uid: "u-123", mail: "a.smith@example.com", memberOf: "solo-group", groups: "ignored" } });
    const id = await sp.validate(response, requestId);
    expect(id).toMatchObject({ subject: "u-123", nameId: "alice", email: "a.smith@example.com", groups: ["solo-group"] });
  });

  it("refuses a sign-in without the configured subject attribute", async () => {
    const sp = makeSp({ subjectAttribute: "uid" });
    const { response, requestId } = await signIn(sp);
    await expectRefused(sp.validate(response, requestId), /no "uid" attribute/);
  });

  it("takes the email from an emailAddress NameID when there is no email attribute; no groups → []", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { nameId: "bob@example.com", nameIdFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", attributes: {} });
    const id = await sp.validate(response, requestId);
    expect(id).toMatchObject({ subject: "bob@example.com", email: "bob@example.com", groups: [] });
  });

  it("accepts an IdP certificate given as bare base64, and a list of certificates (key rollover)", async () => {
    const bare = idp.certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
    for (const idpCert of [bare, [otherIdp.certPem, idp.certPem]]) {
      const sp = makeSp({ idpCert });
      const { response, requestId } = await signIn(sp);
      expect((await sp.validate(response, requestId)).subject).toBe("alice");
    }
  });

  it("accepts base64 wrapped over several lines, as some IdPs post it", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp);
    const wrapped = response.replace(/(.{76})/g, "$1\r\n");
    expect(wrapped).not.toBe(response);
    expect((await sp.validate(wrapped, requestId)).subject).toBe("alice");
  });

  it("tolerates the configured clock skew but no more", async () => {
    const sp = makeSp({ clockSkewMs: 30_000 });
    const recent = await signIn(sp, { notOnOrAfter: new Date(Date.now() - 10_000) });
    expect((await sp.validate(recent.response, recent.requestId)).subject).toBe("alice");
    const early = await signIn(sp, { notBefore: new Date(Date.now() + 10_000) });
    expect((await sp.validate(early.response, early.requestId)).subject).toBe("alice");
  });

  it("reads the NameID from the signed bytes: a comment inside it does not truncate it (CVE-2017-11428 class)", async () => {
    const sp = makeSp();
    const nameId = "alice@example.com.evil.com";
    const { response, requestId } = await signIn(sp, {
      nameId,
      // Comments are not covered by the signature; a naive reader would see only the first text node.
      tamper: (xml) => xml.replace(`>${nameId}<`, ">alice@example.com<!---->.evil.com<"),
    });
    expect(xmlOf(response)).toContain("<!---->");
    const id = await sp.validate(response, requestId);
    expect(id.nameId).toBe(nameId);
    expect(id.subject).toBe(nameId);
  });
});

describe("SamlProvider: refusals (LOGIN_FAILED, with the reason)", () => {
  it("an unsigned assertion", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { sign: false });
    expect(xmlOf(response)).not.toContain("Signature");
    await expectRefused(sp.validate(response, requestId), /SAML response is not signed/);
  });

  it("an assertion signed by another key", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { signWithOtherKey: true });
    await expectRefused(sp.validate(response, requestId), /SAML assertion signature is invalid/);
  });

  it("an assertion signed by an IdP that is not configured (its own valid certificate in KeyInfo does not help)", async () => {
    const sp = makeSp({ idpCert: otherIdp.certPem });
    const { response, requestId } = await signIn(sp);
    expect(xmlOf(response)).toContain("<ds:X509Certificate>");
    await expectRefused(sp.validate(response, requestId), /SAML assertion signature is invalid/);
  });

  it("an assertion changed after signing: NameID swapped", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { tamper: (xml) => xml.replace(">alice</saml:NameID>", ">admin</saml:NameID>") });
    expect(xmlOf(response)).toContain(">admin</saml:NameID>");
    await expectRefused(sp.validate(response, requestId), /SAML assertion signature is invalid/);
  });

  it("an assertion changed after signing: a group added", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, {
      tamper: (xml) => xml.replace('<saml:AttributeValue xsi:type="xs:string">ops</saml:AttributeValue>', '$&<saml:AttributeValue xsi:type="xs:string">admins</saml:AttributeValue>'),
    });
    expect(xmlOf(response)).toContain(">admins<");
    await expectRefused(sp.validate(response, requestId), /SAML assertion signature is invalid/);
  });

  it("an assertion for another audience", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { audience: "https://other-app.example/sp" });
    await expectRefused(sp.validate(response, requestId), /SAML response audience "https:\/\/other-app\.example\/sp" is not this gateway \("https:\/\/gw\.example/);
  });

  it("an expired assertion (NotOnOrAfter in the past)", async () => {
    const sp = makeSp();
    const past = new Date(Date.now() - 10 * 60_000);
    const { response, requestId } = await signIn(sp, { notOnOrAfter: past });
    const e = await expectRefused(sp.validate(response, requestId), /SAML assertion expired at/);
    expect(e.message).toContain(past.toISOString().slice(0, 19));
  });

  it("an assertion not valid yet (NotBefore in the future)", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { notBefore: new Date(Date.now() + 10 * 60_000) });
    await expectRefused(sp.validate(response, requestId), /SAML assertion is not valid before/);
  });

  it("an IdP session that has already ended", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { sessionNotOnOrAfter: new Date(Date.now() - 10 * 60_000) });
    await expectRefused(sp.validate(response, requestId), /identity provider's session ended at/);
  });

  it("an answer to a different request (InResponseTo), while the right pairing still works", async () => {
    const sp = makeSp();
    const a = await signIn(sp, {}, "relay-a");
    const b = await sp.loginRequest("relay-b");
    await expectRefused(sp.validate(a.response, b.requestId), /SAML response answers an unknown or already used request/);
    // The refusal did not spend request A: its own answer still signs in.
    expect((await sp.validate(a.response, a.requestId)).inResponseTo).toBe(a.requestId);
  });

  it("an unsolicited response (no InResponseTo on the Response)", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { tamper: (xml) => xml.replace(/(<samlp:Response[^>]*) InResponseTo="[^"]*"/, "$1") });
    await expectRefused(sp.validate(response, requestId), /no InResponseTo: unsolicited/);
  });

  it("a Response addressed to another service (Destination), or an assertion for another Recipient", async () => {
    const sp = makeSp();
    const dest = await signIn(sp, { tamper: (xml) => xml.replace(`Destination="${ACS}"`, 'Destination="https://evil.example/acs"') });
    await expectRefused(sp.validate(dest.response, dest.requestId), /SAML response Destination "https:\/\/evil\.example\/acs" is not this gateway's ACS URL/);
    const rcpt = await signIn(sp, { recipient: "https://evil.example/acs" });
    await expectRefused(sp.validate(rcpt.response, rcpt.requestId), /SAML assertion Recipient "https:\/\/evil\.example\/acs" is not this gateway's ACS URL/);
  });

  it("an assertion from another issuer when idpIssuer is configured", async () => {
    const sp = makeSp({ idpIssuer: idp.entityId });
    const ok = await signIn(sp);
    expect((await sp.validate(ok.response, ok.requestId)).subject).toBe("alice");
    const bad = await signIn(sp, { issuer: "http://evil.test/idp" });
    await expectRefused(sp.validate(bad.response, bad.requestId), /issuer "http:\/\/evil\.test\/idp" is not the configured IdP/);
  });

  it("a SHA-1 signature", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { algorithm: "sha1" });
    expect(xmlOf(response)).toContain("xmldsig#rsa-sha1");
    await expectRefused(sp.validate(response, requestId), /signed with SHA-1/);
  });

  it("an IdP error status, with its message", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, {
      tamper: (xml) =>
        xml.replace(
          '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>',
          '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode><samlp:StatusMessage>user is locked</samlp:StatusMessage>',
        ),
    });
    await expectRefused(sp.validate(response, requestId), /identity provider refused the sign-in \(status Responder\/AuthnFailed: "user is locked"\)/);
  });

  it("an encrypted assertion (not supported)", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { tamper: (xml) => xml.replace("</samlp:Status>", "</samlp:Status><saml:EncryptedAssertion/>") });
    await expectRefused(sp.validate(response, requestId), /encrypted assertion/);
  });
});

describe("SamlProvider: replay (the caller's one-time store, and the provider's backstop)", () => {
  /**
   * What the caller (identity/login-requests.ts) does: the request ID is kept
   * with the RelayState and can be taken exactly once; the ACS looks it up by
   * the RelayState the IdP posts back and passes it to validate().
   */
  class OneTimeLoginStore {
    private readonly pending = new Map<string, string>();
    put(relayState: string, requestId: string): void {
      this.pending.set(relayState, requestId);
    }
    take(relayState: string): string {
      const id = this.pending.get(relayState);
      this.pending.delete(relayState);
      if (id === undefined) throw new AirlockError("LOGIN_FAILED", "unknown or already used sign-in state");
      return id;
    }
  }

  it("the same response presented twice is refused", async () => {
    const sp = makeSp();
    const store = new OneTimeLoginStore();
    const { url, requestId } = await sp.loginRequest("relay-xyz");
    store.put("relay-xyz", requestId);
    const req = idp.parseRequest(url);
    const response = idp.respond({ inResponseTo: req.id, acsUrl: req.acsUrl, audience: req.issuer, nameId: "alice" });
    const acs = async (body: { SAMLResponse: string; RelayState: string }) => sp.validate(body.SAMLResponse, store.take(body.RelayState));

    expect((await acs({ SAMLResponse: response, RelayState: req.relayState! })).subject).toBe("alice");
    // Replayed: the caller's store has consumed the request ID, so validate() is never reached.
    await expectRefused(acs({ SAMLResponse: response, RelayState: req.relayState! }), /unknown or already used sign-in state/);
    // A caller that forgot to consume it still gets a refusal from this instance's memory of answered requests.
    await expectRefused(sp.validate(response, requestId), /SAML response answers an unknown or already used request: request "_[0-9a-f]+" was already answered/);
  });

  it("two concurrent validations of one answer: exactly one wins", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp);
    const results = await Promise.all([outcome(sp.validate(response, requestId)), outcome(sp.validate(response, requestId))]);
    expect(results.filter((r) => "ok" in r)).toHaveLength(1);
    const refused = results.find((r) => "err" in r) as { err: AirlockError };
    expect(refused.err.message).toMatch(/already answered/);
  });
});

describe("SamlProvider: XML signature wrapping", () => {
  /** An unsigned copy of the signed assertion, made out for admin. */
  function evilCopy(signedAssertion: string): string {
    return signedAssertion
      .replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, "")
      .replace(/ ID="[^"]+"/, ' ID="_evil"')
      .replace(">alice</saml:NameID>", ">admin</saml:NameID>");
  }

  it("a second, unsigned assertion injected before the signed one", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, { tamper: (xml) => xml.replace(ASSERTION_RE, (signed) => evilCopy(signed) + signed) });
    expect(xmlOf(response).match(/<saml:Assertion /g)).toHaveLength(2);
    await expectRefused(sp.validate(response, requestId), /carries 2 assertions where exactly one is accepted \(possible XML signature wrapping attack\)/);
  });

  it("the signed assertion hidden in Extensions, a forged one in its place", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, {
      tamper: (xml) => xml.replace(ASSERTION_RE, (signed) => evilCopy(signed)).replace("<samlp:Status>", `<samlp:Extensions>${assertionOf(xml)}</samlp:Extensions><samlp:Status>`),
    });
    await expectRefused(sp.validate(response, requestId), /possible XML signature wrapping attack/);
  });

  it("a forged assertion carrying the original's signature, the original tucked inside ds:Object", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, {
      tamper: (xml) => {
        const signed = assertionOf(xml)!;
        const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0];
        const forged = signed.replace(">alice</saml:NameID>", ">admin</saml:NameID>").replace(signature, signature.replace("</ds:Signature>", `<ds:Object>${signed}</ds:Object></ds:Signature>`));
        return xml.replace(signed, forged);
      },
    });
    await expectRefused(sp.validate(response, requestId), /SAML (response carries 2 assertions|assertion signature is invalid)/);
  });

  it("a forged assertion with the original's ID and signature (original removed)", async () => {
    const sp = makeSp();
    const { response, requestId } = await signIn(sp, {
      tamper: (xml) => xml.replace(">alice</saml:NameID>", ">admin</saml:NameID>").replace('<saml:AttributeValue xsi:type="xs:string">dba</saml:AttributeValue>', '<saml:AttributeValue xsi:type="xs:string">root</saml:AttributeValue>'),
    });
    await expectRefused(sp.validate(response, requestId), /SAML assertion signature is invalid/);
  });
});

describe("SamlProvider: junk input", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["empty", "", /SAML response is empty/],
    ["not base64", "%%% this is not base64 %%%", /SAML response is not base64/],
    ["base64 of plain text", b64("hello world"), /SAML response is not XML/],
    ["base64 of binary", b64(Buffer.from([0xff, 0xfe, 0x00, 0x3c, 0x80])), /SAML response is not UTF-8 text/],
    ["truncated XML", b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Issuer'), /not well-formed XML|is not a samlp:Response|no Status/],
    ["HTML", b64("<html><body>Login error</body></html>"), /SAML response is not a samlp:Response \(its root element is <html>\)/],
    ["an AuthnRequest", b64('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0"/>'), /not a samlp:Response/],
    ["billion laughs", b64('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>'), /DOCTYPE/],
    ["deep nesting", b64(`${"<a>".repeat(5000)}${"</a>".repeat(5000)}`), /nested deeper than/],
    ["oversized", "A".repeat(600_000), /SAML response is too large/],
    ["Response without assertion", b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>'), /carries no assertion/],
  ];
  it.each(cases)("%s", async (_label, input, message) => {
    const sp = makeSp();
    const { requestId } = await sp.loginRequest("r");
    await expectRefused(sp.validate(input, requestId), message);
  });

  it("a validate() without an expected request ID", async () => {
    const sp = makeSp();
    const { response } = await signIn(sp);
    await expectRefused(sp.validate(response, ""), /no SAML request is pending/);
  });
});

describe("SamlProvider: fuzzing", () => {
  const prng = mulberry32;

  it("300 mutated responses: each refused with an AirlockError, or accepted only when the signed assertion is untouched", async () => {
    const rand = prng(0x5a41);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const JUNK = ["<", ">", '"', "'", "&", "=", "/", " ", "\n", "a", "Z", "0", "_", ":", "-", "&amp;", "<!---->", "<x/>", "]]>", "<![CDATA[", "\u0000", "\uFFFF", "é"];

    // One baseline response, validated unmodified by a fresh provider.
    let sent = "";
    const base = await signIn(makeSp(), { tamper: (xml) => (sent = xml) });
    const baseline = await makeSp().validate(base.response, base.requestId);

    const mutations: Array<(x: string) => string> = [
      (x) => { const i = int(x.length); return x.slice(0, i) + pick(JUNK) + x.slice(i + 1); }, // replace a char
      (x) => { const i = int(x.length); return x.slice(0, i) + x.slice(i + 1 + int(20)); }, // delete a span
      (x) => { const i = int(x.length), n = 1 + int(200); const j = int(x.length); return x.slice(0, j) + x.slice(i, i + n) + x.slice(j); }, // duplicate a span
      (x) => { const i = int(x.length); return x.slice(0, i) + Array.from({ length: 1 + int(5) }, () => pick(JUNK)).join("") + x.slice(i); }, // insert junk
      (x) => x.slice(0, int(x.length)), // truncate
      (x) => { const ms = [...x.matchAll(/="[^"]*"/g)]; const m = ms.length ? pick(ms) : null; return m ? x.slice(0, m.index) + `="${pick(["", "x", "_evil", "2099-01-01T00:00:00Z", ACS, SP_ENTITY, "&lt;"])}"` + x.slice(m.index + m[0].length) : x; }, // change an attribute value
      (x) => { const ms = [...x.matchAll(/>[^<]+</g)]; const m = ms.length ? pick(ms) : null; return m ? x.slice(0, m.index) + `>${pick(["admin", "", " ", "alice ", "ops"])}<` + x.slice(m.index + m[0].length) : x; }, // change a text node
      (x) => { const tags = [...x.matchAll(/<[^>]+>/g)]; if (tags.length < 2) return x; const a = pick(tags), b = pick(tags); return x.replace(a[0], "\u0001").replace(b[0], a[0]).replace("\u0001", b[0]); }, // swap two tags
      (x) => { const a = assertionOf(x); return a ? x.replace(a, pick([a + a, a.replace(/ ID="/, ' ID="_x'), a.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, ""), ""])) : x; }, // assertion-level surgery
    ];

    /**
     * What the signature covers, as the parser sees it: the document's Assertion without its
     * enveloped ds:Signature, in exclusive canonical form. (So KeyInfo, whitespace inside tags,
     * and namespace declarations no element or attribute name uses — exc-c14n leaves those out —
     * are not significant.)
     */
    const significant = async (xml: string): Promise<string> => {
      try {
        const doc = await parseDomFromString(xml);
        const found = xpath.selectElements(doc, "//*[local-name()='Assertion']");
        if (found.length !== 1) return `(${found.length} assertions)`;
        const assertion = found[0]!;
        for (const sig of xpath.selectElements(assertion, "./*[local-name()='Signature']")) assertion.removeChild(sig);
        return new ExclusiveCanonicalization().process(assertion, {});
      } catch (err) {
        return `(unparseable: ${String(err)})`;
      }
    };
    const signedCanonical = await significant(sent);
    expect(signedCanonical).toContain(">alice</saml:NameID>");
    expect(signedCanonical).not.toContain("SignatureValue");

    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      let xml = sent;
      for (let k = 1 + int(3); k > 0; k--) xml = pick(mutations)(xml);
      let input = b64(xml);
      if (rand() < 0.1) { const j = int(input.length); input = input.slice(0, j) + pick(["A", "/", "+", "=", "*", " "]) + input.slice(j + 1); } // base64-level damage
      // A fresh provider each time, so an accepted mutant cannot mask the next one behind "already answered".
      const r = await outcome(makeSp().validate(input, base.requestId));
      if ("err" in r) {
        expect(r.err, `mutant ${i} threw a non-AirlockError: ${String(r.err)}`).toBeInstanceOf(AirlockError);
        expect((r.err as AirlockError).code).toBe("LOGIN_FAILED");
        refused++;
      } else {
        // Only what the signature does not cover may differ (the Response envelope, ds:KeyInfo — the
        // certificate comes from configuration, never from the message — ...). The identity must be
        // exactly the signed one.
        expect(await significant(Buffer.from(input, "base64").toString("utf8")), `mutant ${i} was accepted with a changed assertion`).toBe(signedCanonical);
        expect(r.ok).toEqual(baseline);
        accepted++;
      }
    }
    expect(refused + accepted).toBe(300);
    expect(refused).toBeGreaterThan(240);
  });
});

describe("SamlProvider: metadata and configuration", () => {
  it("metadata() names the entity id and the ACS (HTTP-POST), and asks for signed assertions", () => {
    const md = makeSp().metadata();
    expect(md).toContain(`entityID="${SP_ENTITY}"`);
    expect(md).toMatch(new RegExp(`<AssertionConsumerService[^>]*Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"[^>]*Location="${ACS.replace(/[.]/g, "\\.")}"`));
    expect(md).toContain('WantAssertionsSigned="true"');
  });

  it.each<[string, Partial<SamlProviderConfig>, RegExp]>([
    ["a certificate that is not one", { idpCert: "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----" }, /idpCert\[0\] is not an X\.509 certificate/],
    ["no certificate", { idpCert: [] }, /idpCert is empty/],
    ["an ACS URL that is not a URL", { acsUrl: "/acs" }, /acsUrl "\/acs" is not an absolute URL/],
    ["an entry point that is not http(s)", { entryPoint: "ftp://idp.test/sso" }, /entryPoint .* must be an http\(s\) URL/],
    ["a negative clock skew", { clockSkewMs: -1 }, /clockSkewMs must be between/],
    ["an empty groups attribute name", { groupsAttribute: "" }, /groupsAttribute must be a non-empty attribute name/],
  ])("refuses %s with CONFIG_INVALID", (_label, over, message) => {
    let caught: unknown;
    try {
      makeSp(over);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AirlockError);
    expect((caught as AirlockError).code).toBe("CONFIG_INVALID");
    expect((caught as AirlockError).message).toMatch(message);
  });

  it("refuses a RelayState longer than the 80 bytes SAML allows", async () => {
    const r = await makeSp().loginRequest("x".repeat(81)).catch((e: unknown) => e);
    expect(AirlockError.is(r, "INVALID_ARGUMENT")).toBe(true);
  });
});
