import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AirlockError } from "@airlock/shared/errors";
import { saslPrep } from "./saslprep.js";
import { ScramClient } from "./scram.js";

// RFC 7677 §3 test vector: user "user", password "pencil".
const NONCE = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

const b = (s: string): Buffer => Buffer.from(s, "utf8");

function afterFirst(password = "pencil"): ScramClient {
  const c = new ScramClient(password, NONCE, "user");
  c.clientFirstMessage();
  return c;
}

function expectAuthFailure(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(AirlockError.is(caught, "TARGET_AUTH_FAILED"), String(caught)).toBe(true);
  expect((caught as Error).message).toMatch(pattern);
  expect((caught as Error).message).not.toContain("pencil");
}

describe("ScramClient", () => {
  it("reproduces the RFC 7677 exchange and accepts the server signature", () => {
    const c = new ScramClient("pencil", NONCE, "user");
    expect(c.clientFirstMessage().toString()).toBe(`n,,n=user,r=${NONCE}`);
    expect(c.clientFinalMessage(b(SERVER_FIRST)).toString()).toBe(CLIENT_FINAL);
    expect(c.verified).toBe(false);
    c.verifyServerFinal(b(SERVER_FINAL));
    expect(c.verified).toBe(true);

    // Figure only: the pbkdf2 cost a login spends on the event loop at PostgreSQL's default 4096.
    const n = 50;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) afterFirst().clientFinalMessage(b(SERVER_FIRST));
    console.log(`SCRAM client proof at i=4096: ${((performance.now() - t0) / n).toFixed(2)} ms per login`);
  });

  it("sends n=* and a fresh 24-character nonce by default", () => {
    const first = new ScramClient("x").clientFirstMessage().toString();
    const second = new ScramClient("x").clientFirstMessage().toString();
    expect(first).toMatch(/^n,,n=\*,r=[A-Za-z0-9+/]{24}$/);
    expect(first).not.toBe(second);
  });

  it("matches a proof computed independently from the RFC 5802 formulas", () => {
    const c = new ScramClient("s3cret", "abc", "*");
    const serverFirst = "r=abcdef,s=c2FsdHNhbHQ=,i=4096";
    c.clientFirstMessage();
    const final = c.clientFinalMessage(b(serverFirst)).toString();
    const salted = pbkdf2Sync("s3cret", Buffer.from("saltsalt"), 4096, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const stored = createHash("sha256").update(clientKey).digest();
    const authMessage = `n=*,r=abc,${serverFirst},c=biws,r=abcdef`;
    const sig = createHmac("sha256", stored).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((x, i) => x ^ sig[i]!));
    expect(final).toBe(`c=biws,r=abcdef,p=${proof.toString("base64")}`);
  });

  it("rejects a wrong server signature (mutual authentication)", () => {
    const c = afterFirst();
    c.clientFinalMessage(b(SERVER_FIRST));
    expectAuthFailure(() => c.verifyServerFinal(b("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")), /signature is wrong/);
    expect(c.verified).toBe(false);
  });

  it("rejects a server signature computed with another password", () => {
    const c = afterFirst("not-pencil");
    c.clientFinalMessage(b(SERVER_FIRST));
    expectAuthFailure(() => c.verifyServerFinal(b(SERVER_FINAL)), /signature is wrong/);
  });

  it("reports a server error and malformed server-final messages", () => {
    const cases: Array<[string, RegExp]> = [
      ["e=invalid-proof", /rejected the exchange: invalid-proof/],
      ["x=abc", /malformed server-final/],
      ["v=not base64!", /invalid base64/],
      ["v=AAAA", /signature is wrong/],
    ];
    for (const [msg, pattern] of cases) {
      const c = afterFirst();
      c.clientFinalMessage(b(SERVER_FIRST));
      expectAuthFailure(() => c.verifyServerFinal(b(msg)), pattern);
    }
  });

  it("rejects bad server-first messages", () => {
    const cases: Array<[string, RegExp]> = [
      ["r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /nonce does not extend ours/],
      [`r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /nonce does not extend ours/],
      [`r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`, /iteration count 0 out of range/],
      [`r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1`, /invalid iteration count/],
      [`r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=abc`, /invalid iteration count/],
      [`r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999`, /out of range/],
      [`r=${NONCE}x,s=,i=4096`, /empty salt/],
      [`r=${NONCE}x,s=***,i=4096`, /invalid base64/],
      [`r=${NONCE}x,i=4096`, /malformed server-first/],
      [`m=ext,r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /unsupported SCRAM extension/],
      ["", /malformed server-first/],
    ];
    for (const [msg, pattern] of cases) expectAuthFailure(() => afterFirst().clientFinalMessage(b(msg)), pattern);
    expectAuthFailure(() => afterFirst().clientFinalMessage(Buffer.from([0xff, 0xfe])), /not valid UTF-8/);
  });

  it("accepts a small iteration count (the server chooses; PostgreSQL's default is 4096)", () => {
    const c = afterFirst();
    expect(c.clientFinalMessage(b(`r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1`)).toString()).toMatch(/^c=biws,r=.*,p=/);
  });

  it("refuses messages out of order", () => {
    const c = new ScramClient("pencil", NONCE, "user");
    expectAuthFailure(() => c.clientFinalMessage(b(SERVER_FIRST)), /unexpected SCRAM message/);
    expectAuthFailure(() => c.verifyServerFinal(b(SERVER_FINAL)), /unexpected SCRAM message/);
    c.clientFirstMessage();
    expectAuthFailure(() => c.clientFirstMessage(), /unexpected SCRAM message/);
  });

  it("refuses an invalid caller-supplied nonce", () => {
    expect(() => new ScramClient("x", "a,b")).toThrow(RangeError);
    expect(() => new ScramClient("x", "")).toThrow(RangeError);
  });
});

describe("saslPrep", () => {
  it("follows RFC 4013's examples and PostgreSQL's raw-password fallback", () => {
    expect(saslPrep("user")).toBe("user");
    expect(saslPrep("I\u00ADX")).toBe("IX"); // soft hyphen mapped to nothing
    expect(saslPrep("\u00AA")).toBe("a"); // NFKC
    expect(saslPrep("\u2168")).toBe("IX"); // NFKC
    expect(saslPrep("a\u00A0b")).toBe("a b"); // non-ASCII space
    expect(saslPrep("\u0007")).toBe("\u0007"); // prohibited: raw (pure ASCII is never changed)
    expect(saslPrep("é\u0007")).toBe("é\u0007"); // prohibited control: raw
    expect(saslPrep("a\uE000")).toBe("a\uE000"); // private use: raw
    expect(saslPrep("\u00AD")).toBe("\u00AD"); // empty after mapping: raw
    expect(saslPrep("e\u0301")).toBe("é"); // composed by NFKC
  });
});
