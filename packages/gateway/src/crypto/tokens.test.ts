import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  TOKEN_KINDS,
  constantTimeEqual,
  generateToken,
  hashToken,
  parseToken,
  tokenMatchesHash,
  type TokenKind,
} from "./tokens.js";

describe("generateToken", () => {
  it.each(TOKEN_KINDS)("makes alk_%s_ tokens with a 43-char base64url secret of 32 bytes", (kind) => {
    const t = generateToken(kind);
    expect(t).toMatch(new RegExp(`^alk_${kind}_[A-Za-z0-9_-]{43}$`));
    const secret = t.slice(`alk_${kind}_`.length);
    expect(Buffer.from(secret, "base64url")).toHaveLength(32);
    expect(parseToken(t)).toEqual({ kind, secret });
  });

  it("does not repeat", () => {
    const seen = new Set(Array.from({ length: 1000 }, () => generateToken("at")));
    expect(seen.size).toBe(1000);
  });

  it("refuses unknown kinds", () => {
    expect(() => generateToken("xx" as TokenKind)).toThrow(TypeError);
  });
});

describe("hashToken", () => {
  it("is lowercase hex SHA-256 of the whole token", () => {
    const t = generateToken("ak");
    const h = hashToken(t);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).toBe(createHash("sha256").update(t).digest("hex"));
    // Known vector, so the stored format can never drift silently.
    expect(hashToken("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("binds the kind: same secret, other kind, other hash", () => {
    const t = generateToken("at");
    expect(hashToken(t)).not.toBe(hashToken(t.replace("alk_at_", "alk_ak_")));
  });
});

describe("parseToken", () => {
  const good = generateToken("enr");
  const secret = good.slice("alk_enr_".length);

  it.each([
    ["empty", ""],
    ["no prefix", secret],
    ["wrong prefix", `alx_at_${secret}`],
    ["upper-case prefix", `ALK_at_${secret}`],
    ["unknown kind", `alk_xx_${secret}`],
    ["missing separator", `alk_at${secret}`],
    ["short secret", `alk_at_${secret.slice(1)}`],
    ["long secret", `alk_at_${secret}A`],
    ["padding", `alk_at_${secret}=`],
    ["standard base64 chars", `alk_at_+${secret.slice(1)}`],
    ["non-canonical last char", `alk_at_${secret.slice(0, 42)}B`],
    ["whitespace", ` alk_at_${secret}`],
    ["trailing newline", `alk_at_${secret}\n`],
    ["huge input", `alk_at_${"A".repeat(1_000_000)}`],
  ])("rejects %s", (_name, s) => {
    expect(parseToken(s)).toBeNull();
  });

  it("rejects non-strings", () => {
    for (const v of [undefined, null, 42, {}, ["alk_at_x"], Buffer.from(good)]) expect(parseToken(v)).toBeNull();
  });

  it("accepts every kind", () => {
    for (const kind of TOKEN_KINDS) expect(parseToken(`alk_${kind}_${secret}`)).toEqual({ kind, secret });
  });

  it("is cheap on hostile input", () => {
    const hostile = `alk_at_${"A".repeat(10_000_000)}`;
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) parseToken(hostile);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});

describe("constant-time compare", () => {
  it("compares strings of any length without throwing", () => {
    expect(constantTimeEqual("a", "a")).toBe(true);
    expect(constantTimeEqual("a", "b")).toBe(false);
    expect(constantTimeEqual("a", "aa")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });

  it("checks a token against its stored hash", () => {
    const t = generateToken("at");
    const h = hashToken(t);
    expect(tokenMatchesHash(t, h)).toBe(true);
    expect(tokenMatchesHash(t, h.toUpperCase())).toBe(true);
    expect(tokenMatchesHash(generateToken("at"), h)).toBe(false);
  });
});
