import { createHmac } from "node:crypto";
import { AirlockError } from "@airlock/shared";
import { describe, expect, it } from "vitest";
import { signWebhook, verifySlackSignature, verifyWebhookSignature } from "./signature.js";

const SECRET = "whsec_test_0123456789";
const BODY = JSON.stringify({ type: "review.created", review: { id: "r1" } });
const T = 1_700_000_000;

/** Independent of signWebhook: the documented layout, computed by hand. */
function hmac(secret: string, data: string): string {
  return createHmac("sha256", secret).update(data).digest("hex");
}

function failure(fn: () => void): AirlockError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AirlockError) return err;
    throw err;
  }
  throw new Error("expected a failure");
}

function expectInvalid(fn: () => void, reason: string): AirlockError {
  const err = failure(fn);
  expect(err.code).toBe("WEBHOOK_SIGNATURE_INVALID");
  expect(err.status).toBe(401);
  expect(err.details).toEqual({ reason });
  return err;
}

describe("signWebhook", () => {
  it("produces t=<seconds>,v1=<hex HMAC of '<t>.<body>'>", () => {
    expect(signWebhook(SECRET, BODY, T)).toBe(`t=${T},v1=${hmac(SECRET, `${T}.${BODY}`)}`);
  });

  it("refuses an empty secret and a non-integer timestamp", () => {
    expect(failure(() => signWebhook("", BODY, T)).code).toBe("CONFIG_INVALID");
    expect(failure(() => signWebhook(SECRET, BODY, 1.5)).code).toBe("INVALID_ARGUMENT");
    expect(failure(() => signWebhook(SECRET, BODY, -1)).code).toBe("INVALID_ARGUMENT");
  });
});

describe("verifyWebhookSignature", () => {
  const header = `t=${T},v1=${hmac(SECRET, `${T}.${BODY}`)}`;

  it("accepts a valid signature, including at the edge of the tolerance", () => {
    expect(() => verifyWebhookSignature(SECRET, header, BODY, T)).not.toThrow();
    expect(() => verifyWebhookSignature(SECRET, header, BODY, T + 300)).not.toThrow();
    expect(() => verifyWebhookSignature(SECRET, header, BODY, T - 300)).not.toThrow();
    // Whitespace around parts and upper-case hex are tolerated.
    expect(() => verifyWebhookSignature(SECRET, ` t=${T} , v1=${hmac(SECRET, `${T}.${BODY}`).toUpperCase()} `, BODY, T)).not.toThrow();
  });

  it("rejects a tampered body", () => {
    expectInvalid(() => verifyWebhookSignature(SECRET, header, BODY.replace("r1", "r2"), T), "mismatch");
  });

  it("rejects a signature made with another secret, without quoting the secret", () => {
    const err = expectInvalid(() => verifyWebhookSignature("other-secret", header, BODY, T), "mismatch");
    expect(err.message).not.toContain("other-secret");
    expect(err.message).not.toContain(SECRET);
  });

  it("rejects a re-dated header (the timestamp is signed)", () => {
    const sig = hmac(SECRET, `${T}.${BODY}`);
    expectInvalid(() => verifyWebhookSignature(SECRET, `t=${T + 1000},v1=${sig}`, BODY, T + 1000), "mismatch");
  });

  it("rejects an old timestamp", () => {
    const err = expectInvalid(() => verifyWebhookSignature(SECRET, header, BODY, T + 301), "expired");
    expect(err.message).toMatch(/301 s old/);
  });

  it("rejects a timestamp too far in the future", () => {
    const err = expectInvalid(() => verifyWebhookSignature(SECRET, header, BODY, T - 301), "future");
    expect(err.message).toMatch(/in the future/);
  });

  it("honours a custom tolerance", () => {
    expectInvalid(() => verifyWebhookSignature(SECRET, header, BODY, T + 61, 60), "expired");
    expect(() => verifyWebhookSignature(SECRET, header, BODY, T + 3000, 3600)).not.toThrow();
  });

  it("rejects malformed headers", () => {
    const sig = hmac(SECRET, `${T}.${BODY}`);
    for (const bad of [
      "garbage",
      `t=${T}`,
      `v1=${sig}`,
      `t=abc,v1=${sig}`,
      `t=${T},v1=nothex`,
      `t=${T},v1=${sig.slice(0, 40)}`,
      `t=${T},t=${T},v1=${sig}`,
      `t=${T},v1=${sig},${"x".repeat(5000)}`,
    ]) {
      expectInvalid(() => verifyWebhookSignature(SECRET, bad, BODY, T), "malformed");
    }
  });

  it("rejects a missing header", () => {
    expect(expectInvalid(() => verifyWebhookSignature(SECRET, undefined, BODY, T), "missing").message).toMatch(/x-airlock-signature/);
    expectInvalid(() => verifyWebhookSignature(SECRET, "  ", BODY, T), "missing");
  });

  it("accepts any of several secrets and any of several v1 values (rotation)", () => {
    const oldSig = hmac("old-secret", `${T}.${BODY}`);
    const newSig = hmac("new-secret", `${T}.${BODY}`);
    // Receiver rotated first: still accepts the sender's old secret.
    expect(() => verifyWebhookSignature(["new-secret", "old-secret"], `t=${T},v1=${oldSig}`, BODY, T)).not.toThrow();
    // Sender rotated first and signs with both: a receiver on either secret accepts.
    const both = `t=${T},v1=${newSig},v1=${oldSig}`;
    expect(() => verifyWebhookSignature("old-secret", both, BODY, T)).not.toThrow();
    expect(() => verifyWebhookSignature("new-secret", both, BODY, T)).not.toThrow();
    expectInvalid(() => verifyWebhookSignature(["third-secret"], both, BODY, T), "mismatch");
  });

  it("ignores unknown schemes but still needs a matching v1", () => {
    const sig = hmac(SECRET, `${T}.${BODY}`);
    expect(() => verifyWebhookSignature(SECRET, `t=${T},v2=abc,v1=${sig}`, BODY, T)).not.toThrow();
    expectInvalid(() => verifyWebhookSignature(SECRET, `t=${T},v0=${sig}`, BODY, T), "malformed");
  });

  it("treats a missing or empty secret as a configuration error, not a bad request", () => {
    expect(failure(() => verifyWebhookSignature([], header, BODY, T)).code).toBe("CONFIG_INVALID");
    expect(failure(() => verifyWebhookSignature(["ok", ""], header, BODY, T)).code).toBe("CONFIG_INVALID");
  });
});

describe("verifySlackSignature", () => {
  // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
  const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5";
  const ts = "1531420618";
  const body =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  const signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
  const now = Number(ts) + 10;

  it("accepts Slack's documented example", () => {
    expect(hmac(signingSecret, `v0:${ts}:${body}`)).toBe(signature.slice(3));
    expect(() => verifySlackSignature(signingSecret, signature, ts, body, now)).not.toThrow();
  });

  it("rejects a tampered body and a wrong secret", () => {
    expectInvalid(() => verifySlackSignature(signingSecret, signature, ts, body.replace("roadrunner", "coyote"), now), "mismatch");
    const err = expectInvalid(() => verifySlackSignature("0".repeat(32), signature, ts, body, now), "mismatch");
    expect(err.message).not.toContain(signingSecret);
  });

  it("rejects a changed timestamp header (it is signed)", () => {
    expectInvalid(() => verifySlackSignature(signingSecret, signature, String(Number(ts) + 1), body, now), "mismatch");
  });

  it("rejects old and future timestamps beyond the tolerance", () => {
    expectInvalid(() => verifySlackSignature(signingSecret, signature, ts, body, Number(ts) + 301), "expired");
    expectInvalid(() => verifySlackSignature(signingSecret, signature, ts, body, Number(ts) - 301), "future");
    expect(() => verifySlackSignature(signingSecret, signature, ts, body, Number(ts) + 3000, 3600)).not.toThrow();
  });

  it("rejects malformed headers", () => {
    expectInvalid(() => verifySlackSignature(signingSecret, signature.replace("v0=", "v1="), ts, body, now), "malformed");
    expectInvalid(() => verifySlackSignature(signingSecret, "v0=abc", ts, body, now), "malformed");
    expectInvalid(() => verifySlackSignature(signingSecret, signature, "yesterday", body, now), "malformed");
  });

  it("rejects missing headers, naming the missing one", () => {
    expect(expectInvalid(() => verifySlackSignature(signingSecret, undefined, ts, body, now), "missing").message).toMatch(/X-Slack-Signature/);
    expect(expectInvalid(() => verifySlackSignature(signingSecret, signature, undefined, body, now), "missing").message).toMatch(/X-Slack-Request-Timestamp/);
  });
});
