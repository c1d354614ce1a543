import { createHmac, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import * as aws from "./aws.js";
import * as email from "./email.js";
import * as entropy from "./entropy.js";
import * as iban from "./iban.js";
import * as ip from "./ip.js";
import * as jwt from "./jwt.js";
import * as luhn from "./luhn.js";
import * as pem from "./pem.js";
import * as phone from "./phone.js";
import * as ssn from "./ssn.js";
import type { Detect } from "./types.js";
import { corpusValue, mulberry32 } from "../fixtures.js";

/** The substrings a detector reports, for readable assertions. */
const found = (detect: Detect, text: string): string[] => detect(text).map((m) => text.slice(m.start, m.end));

describe("email", () => {
  it("finds valid addresses in text", () => {
    expect(found(email.detect, "contact jane.doe+billing@example.co.uk or ops@mail.example.com.")).toEqual([
      "jane.doe+billing@example.co.uk",
      "ops@mail.example.com",
    ]);
  });
  it.each(["a..b@example.com", ".a@example.com", "a@-bad.com", "a@example", "user@", "@example.com", "a@b.c"])("rejects %s", (t) => {
    expect(found(email.detect, t)).toEqual([]);
  });
});

describe("card (luhn)", () => {
  it.each(["4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000", "2223003122003222"])(
    "detects %s",
    (t) => expect(found(luhn.detect, `card: ${t}, exp 12/27`)).toEqual([t]),
  );
  it.each([
    ["one digit off", "4111 1111 1111 1112"],
    ["luhn-valid but unknown IIN", "1234567812345670"],
    ["too short", "411111111111"],
    ["glued to letters", "INV4111111111111111"],
    ["wrong length for brand (amex 16)", "3782822463100058"],
  ])("rejects %s", (_why, t) => expect(found(luhn.detect, t)).toEqual([]));
  it("separates a card from a following number in the same digit run", () => {
    expect(found(luhn.detect, "4111111111111111 2027")).toEqual(["4111111111111111"]);
    expect(found(luhn.detect, "4111 1111 1111 1111 5A")).toEqual(["4111 1111 1111 1111"]);
  });
});

/** The regex formulation of the card detector, kept as the reference for the hand-written parser. */
function cardReference(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\d+(?:[ -]\d+)*/g)) {
    const gluedStart = /[A-Za-z0-9_]/.test(text.charAt(m.index - 1));
    const gluedEnd = /[A-Za-z0-9_]/.test(text.charAt(m.index + m[0].length));
    const groups = [...m[0].matchAll(/\d+/g)].map((g) => ({ s: m.index + g.index, e: m.index + g.index + g[0].length }));
    let i = 0;
    while (i < groups.length) {
      let found = -1;
      for (let j = groups.length - 1; j >= i && found < 0; j--) {
        if ((i === 0 && gluedStart) || (j === groups.length - 1 && gluedEnd)) continue;
        const first = groups[i]!;
        const last = groups[j]!;
        if (luhn.isCardNumber(text.slice(first.s, last.e).replace(/[ -]/g, ""))) {
          out.push(text.slice(first.s, last.e));
          found = j;
        }
      }
      i = found >= 0 ? found + 1 : i + 1;
    }
  }
  return out;
}

describe("card parser", () => {
  it("finds exactly what the regex formulation finds (30k generated values)", () => {
    const rnd = mulberry32(11);
    let cards = 0;
    for (let n = 0; n < 30_000; n++) {
      const text = corpusValue(rnd);
      const expected = cardReference(text);
      cards += expected.length;
      expect(found(luhn.detect, text), JSON.stringify(text)).toEqual(expected);
    }
    expect(cards).toBeGreaterThan(1000);
  });
});

describe("iban", () => {
  it.each(["GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"])(
    "detects %s",
    (t) => expect(found(iban.detect, `IBAN ${t} ok`)).toEqual([t]),
  );
  it.each([
    ["bad checksum", "GB82WEST12345698765431"],
    ["wrong length", "GB82WEST1234569876543"],
    ["unknown country", "XX82WEST12345698765432"],
    ["lower case", "gb82west12345698765432"],
  ])("rejects %s", (_why, t) => expect(found(iban.detect, t)).toEqual([]));
  it("stops at the country length even if more words follow", () => {
    expect(found(iban.detect, "GB82 WEST 1234 5698 7654 32 AND MORE")).toEqual(["GB82 WEST 1234 5698 7654 32"]);
  });
});

describe("ssn", () => {
  it.each(["078-05-1120", "123-45-6789"])("detects %s", (t) => expect(found(ssn.detect, `ssn ${t}`)).toEqual([t]));
  it.each(["666-12-3456", "000-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "123456789", "1123-45-6789"])("rejects %s", (t) =>
    expect(found(ssn.detect, t)).toEqual([]),
  );
});

describe("phone", () => {
  it.each(["+1 415 555 2671", "+14155552671", "(415) 555-2671", "415-555-2671", "415.555.2671", "+44 20 7946 0958", "+44 (0)20 7946 0958", "020 7946 0958", "+49 30 901820"])(
    "detects %s",
    (t) => expect(found(phone.detect, `call ${t} now`)).toEqual([t]),
  );
  it.each([
    ["plain long number", "4155552671"],
    ["card number with spaces", "4111 1111 1111 1111"],
    ["NANP area starting with 1", "123-456-7890"],
    ["E.164 too long", "+1234567890123456"],
    ["digits continuing a digit group", "12 415-555-2671"],
    ["date", "2024-01-15"],
    ["UUID segments", "7c201c1d-0921-4950-bc78-fde6246049bb"],
  ])("rejects %s", (_why, t) => expect(found(phone.detect, t)).toEqual([]));
});

describe("ip", () => {
  it.each(["192.168.1.10", "10.0.0.1", "255.255.255.255", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.128", "::1"])("detects %s", (t) =>
    expect(found(ip.detect, `from ${t}.`)).toEqual([t]),
  );
  it.each(["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "12:30:45", "Foo::bar", "2001:db8:::1", "v1.2.3.4x"])("rejects %s", (t) =>
    expect(found(ip.detect, t)).toEqual([]),
  );
});

function makeJwt(header: object, payload: object): string {
  const h = Buffer.from(JSON.stringify(header)).toString("base64url");
  const p = Buffer.from(JSON.stringify(payload)).toString("base64url");
  const sig = createHmac("sha256", "test-secret").update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

describe("jwt", () => {
  const token = makeJwt({ alg: "HS256", typ: "JWT" }, { sub: "1234567890", name: "Jane Doe", iat: 1516239022 });
  it("detects a signed JWT and an unsigned one", () => {
    expect(found(jwt.detect, `Authorization: Bearer ${token}`)).toEqual([token]);
    const none = makeJwt({ alg: "none" }, { sub: "x" }).replace(/\.[^.]*$/, ".");
    expect(found(jwt.detect, none)).toEqual([none]);
  });
  it("rejects look-alikes whose header lacks alg or is not JSON", () => {
    const noAlg = makeJwt({ typ: "JWT" }, { sub: "1" });
    expect(found(jwt.detect, noAlg)).toEqual([]);
    expect(found(jwt.detect, "eyJhbGciOi.eyJzdWIi.abc")).toEqual([]);
    expect(found(jwt.detect, `x${token}`)).toEqual([]);
  });
});

describe("aws", () => {
  it("detects access key ids (AKIA and ASIA)", () => {
    expect(found(aws.detect, "key=AKIAIOSFODNN7EXAMPLE")).toEqual(["AKIAIOSFODNN7EXAMPLE"]);
    expect(found(aws.detect, "ASIAY34FZKBOKMUTVV7A")).toEqual(["ASIAY34FZKBOKMUTVV7A"]);
  });
  it("detects labelled secrets only, reporting the value span", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    expect(found(aws.detect, `aws_secret_access_key = ${secret}`)).toEqual([secret]);
    expect(found(aws.detect, `{"SecretAccessKey": "${secret}"}`)).toEqual([secret]);
    expect(found(aws.detect, `value ${secret}`)).toEqual([]);
  });
  it.each(["AKIAiosfodnn7example", "AKIAIOSFODNN7EXAMPL", "XAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLEX"])("rejects %s", (t) =>
    expect(found(aws.detect, t)).toEqual([]),
  );
});

describe("pem", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: "P-256",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  it("detects a generated PKCS#8 private key block exactly", () => {
    const block = privateKey.trim();
    expect(found(pem.detect, `config:\n${privateKey}\nend`)).toEqual([block]);
  });
  it("masks a truncated block through the end of the text and ignores public keys", () => {
    const cut = privateKey.slice(0, 80);
    expect(found(pem.detect, `x ${cut}`)).toEqual([cut]);
    expect(found(pem.detect, publicKey)).toEqual([]);
  });
  it("accepts labelled variants", () => {
    const t = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----";
    expect(found(pem.detect, t)).toEqual([t]);
  });
});

describe("entropy", () => {
  it.each(["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ghp_R7xK2mQ9vL4pW8nT3bY6cF1dH5jS0aZ2eU7g", "xoxb-2u9Fq7Lm3Ns8Kd1Vb4Pz6Rt0Wy"])("detects %s", (t) =>
    expect(found(entropy.detect, `token ${t} end`)).toEqual([t]),
  );
  it.each([
    ["long word", "internationalization_localization"],
    ["uuid", "550e8400-e29b-41d4-a716-446655440000"],
    ["sha1 hex", "da39a3ee5e6b4b0d3255bfef95601890afd80709"],
    ["camelCase identifier", "getUserAccountById2024Version"],
    ["short", "aB3dE5gH7j"],
  ])("rejects %s", (_why, t) => expect(found(entropy.detect, t)).toEqual([]));
  it("computes Shannon entropy in bits per char", () => {
    expect(entropy.shannonEntropy("aaaa")).toBe(0);
    expect(entropy.shannonEntropy("abcd")).toBeCloseTo(2);
  });
});
