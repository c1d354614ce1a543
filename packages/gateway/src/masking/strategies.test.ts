import { describe, expect, it } from "vitest";
import { applyStrategy, hash, partial, redact, validateStrategy } from "./strategies.js";

describe("redact", () => {
  it("uses a fixed marker or one star per char", () => {
    expect(redact("078-05-1120")).toBe("****");
    expect(redact("078-05-1120", true)).toBe("***********");
  });
});

describe("partial", () => {
  it("keeps the last 4 alphanumerics", () => {
    expect(partial("4111 1111 1111 1234", "card")).toBe("****1234");
    expect(partial("078-05-1120", "ssn")).toBe("****1120");
  });
  it("keeps the domain of an email", () => {
    expect(partial("jane.doe@example.com", "email")).toBe("****@example.com");
    expect(partial("jane.doe@example.com", "column")).toBe("****@example.com");
  });
  it("fully redacts values too short to reveal a suffix safely", () => {
    expect(partial("1234567", "card")).toBe("****");
  });
});

describe("hash", () => {
  const key = "k".repeat(32);
  it("is deterministic and prefixed (joinable)", () => {
    const a = hash("4111111111111111", key);
    expect(a).toBe(hash("4111111111111111", key));
    expect(a).toMatch(/^h:[A-Za-z0-9_-]{22}$/);
    expect(a).not.toContain("4111");
  });
  it("depends on the key and the input", () => {
    expect(hash("4111111111111111", key)).not.toBe(hash("4111111111111111", "other-key-other-key"));
    expect(hash("4111111111111111", key)).not.toBe(hash("4111111111111112", key));
  });
  it("honours prefix and length, and refuses an empty key", () => {
    expect(applyStrategy({ type: "hash", key, prefix: "tok_", length: 10 }, "x", "email")).toMatch(/^tok_[A-Za-z0-9_-]{10}$/);
    expect(() => hash("x", "")).toThrow(/key/);
    expect(() => validateStrategy({ type: "hash", key: "" })).toThrow(/key/);
    expect(() => validateStrategy({ type: "partial", keep: -1 })).toThrow(/keep/);
  });
});
