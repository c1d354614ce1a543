import { describe, expect, it } from "vitest";
import { MAX_REVIEW_PARAM_BYTES, reviewParams } from "./hold-extended.js";

const b = (s: string) => Buffer.from(s, "utf8");

describe("reviewParams", () => {
  it("keeps text values as strings and NULL as null (no format codes = all text)", () => {
    expect(reviewParams({ paramFormats: [], params: [b("7"), null, b("ünïcode")] })).toEqual(["7", null, "ünïcode"]);
  });

  it("marks binary values (one format code for all, or one each) as base64", () => {
    const int4 = Buffer.from([0, 0, 0, 7]);
    expect(reviewParams({ paramFormats: [1], params: [int4, int4] })).toEqual([{ format: "binary", base64: "AAAABw==" }, { format: "binary", base64: "AAAABw==" }]);
    expect(reviewParams({ paramFormats: [0, 1], params: [b("7"), int4] })).toEqual(["7", { format: "binary", base64: "AAAABw==" }]);
  });

  it("keeps text that a string would not reproduce byte for byte as base64, so two values never look alike", () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in LATIN1: not UTF-8
    const other = Buffer.from([0x63, 0x61, 0x66, 0xe8]);
    const [a] = reviewParams({ paramFormats: [], params: [latin1] }) as unknown[];
    const [c] = reviewParams({ paramFormats: [], params: [other] }) as unknown[];
    expect(a).toEqual({ format: "text", base64: latin1.toString("base64") });
    expect(a).not.toEqual(c);
    expect(reviewParams({ paramFormats: [], params: [b("a\u0000b")] })).toEqual([{ format: "text", base64: b("a\u0000b").toString("base64") }]);
  });

  it("refuses values larger than a review shows (counted as sent, with their length words)", () => {
    expect(reviewParams({ paramFormats: [], params: [Buffer.alloc(MAX_REVIEW_PARAM_BYTES - 4)] })).toHaveLength(1);
    expect(reviewParams({ paramFormats: [], params: [Buffer.alloc(MAX_REVIEW_PARAM_BYTES - 3)] })).toEqual({ refused: expect.stringMatching(/parameters take 65537 bytes/) });
    expect(reviewParams({ paramFormats: [], params: new Array(20_000).fill(null) })).toHaveProperty("refused");
  });
});
