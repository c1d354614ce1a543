// Step 4 of judging a SAMLResponse: what the identity rests on, read from the
// signed Assertion only (see signature.ts): issuer, audience, time window,
// bearer confirmation, AuthnStatement, NameID and attributes.
import { NS_ASSERTION, attr, child, children, text, type XElement } from "./dom.js";
import { fail, q } from "./errors.js";
import type { SamlIdentity } from "./provider.js";

const CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const XS_DATETIME = /^\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The provider settings the assertion is judged against (the provider's checked configuration). */
export interface AssertionPolicy {
  /** The provider's name, reported in the identity. */
  name: string;
  spEntityId: string;
  acsUrl: string;
  clockSkewMs: number;
  idpIssuer?: string | undefined;
  subjectAttribute?: string | undefined;
  emailAttribute: string;
  groupsAttribute: string;
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

/** The identity in a signed assertion, and until when the assertion could be presented. */
export function checkAssertion(a: XElement, expectedRequestId: string, policy: AssertionPolicy): { identity: SamlIdentity; usableUntil: number } {
  const now = Date.now();
  const skew = policy.clockSkewMs;
  const clock = `gateway time ${iso(now)}, allowed clock skew ${Math.round(skew / 1000)}s`;

  if (attr(a, "Version") !== "2.0") fail("SAML assertion is not SAML 2.0");
  const issuer = text(child(a, NS_ASSERTION, "Issuer"));
  if (policy.idpIssuer !== undefined && issuer !== policy.idpIssuer) {
    fail(`SAML assertion issuer ${q(issuer)} is not the configured IdP (${q(policy.idpIssuer)})`);
  }

  // Audience.
  const conditions = children(a, NS_ASSERTION, "Conditions");
  if (conditions.length !== 1) fail(conditions.length === 0 ? "SAML assertion has no Conditions (no audience, no validity window)" : "SAML assertion has more than one Conditions element");
  const cond = conditions[0]!;
  const restrictions = children(cond, NS_ASSERTION, "AudienceRestriction");
  if (restrictions.length === 0) fail("SAML assertion has no AudienceRestriction: it would be valid for any service, refusing it");
  for (const r of restrictions) {
    const audiences = children(r, NS_ASSERTION, "Audience").map((x) => text(x));
    if (!audiences.includes(policy.spEntityId)) {
      fail(`SAML response audience ${audiences.length ? audiences.map((x) => q(x)).join(", ") : "(none)"} is not this gateway (${q(policy.spEntityId)})`);
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
      if (recipient !== policy.acsUrl) {
        fail(recipient === null ? "SAML assertion's bearer confirmation has no Recipient" : `SAML assertion Recipient ${q(recipient)} is not this gateway's ACS URL (${q(policy.acsUrl)})`);
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
  if (policy.subjectAttribute !== undefined) {
    const vs = [...new Set(valuesOf(policy.subjectAttribute))];
    if (vs.length === 0) fail(`SAML assertion has no ${q(policy.subjectAttribute)} attribute, configured as the user's identity (subjectAttribute)`);
    if (vs.length > 1) fail(`SAML assertion's ${q(policy.subjectAttribute)} attribute (subjectAttribute) has ${vs.length} values where one is expected`);
    subjectValue = vs[0]!;
  }
  const email = valuesOf(policy.emailAttribute)[0] ?? (nameIdEl && attr(nameIdEl, "Format") === NAMEID_EMAIL ? nameId : undefined);
  const groups = [...new Set(valuesOf(policy.groupsAttribute))];

  const identity: SamlIdentity = { provider: policy.name, subject: subjectValue, groups, nameId, inResponseTo: expectedRequestId };
  if (email !== undefined) identity.email = email;
  if (sessionIndex !== undefined) identity.sessionIndex = sessionIndex;
  if (sessionEnd !== null) identity.sessionNotOnOrAfter = new Date(sessionEnd);
  return { identity, usableUntil: Math.min(confirmationEnd, conditionsEnd ?? Number.POSITIVE_INFINITY) + skew };
}
