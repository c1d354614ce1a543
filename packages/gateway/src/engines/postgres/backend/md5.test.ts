import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { md5Password } from "./md5.js";

const md5hex = (data: Buffer | string): string => createHash("md5").update(data).digest("hex");

describe("md5Password", () => {
  it("computes md5(md5(password + user) + salt), step by step", () => {
    const salt = Buffer.from([0x01, 0x02, 0xfe, 0xff]);
    const inner = md5hex("secretalice");
    const outer = md5hex(Buffer.concat([Buffer.from(inner, "ascii"), salt]));
    expect(md5Password("alice", "secret", salt)).toBe(`md5${outer}`);
  });

  it("matches a known value", () => {
    // pg_authid stores "md5" + md5("postgres" + "postgres") for user postgres/postgres:
    expect(md5hex("postgrespostgres")).toBe("3175bce1d3201d16594cebf9d7eb3f9d");
    expect(md5Password("postgres", "postgres", Buffer.from("abcd"))).toBe(`md5${md5hex("3175bce1d3201d16594cebf9d7eb3f9dabcd")}`);
  });

  it("hashes non-ASCII passwords as UTF-8", () => {
    const salt = Buffer.alloc(4);
    expect(md5Password("ü", "pä", salt)).toBe(`md5${md5hex(Buffer.concat([Buffer.from(md5hex(Buffer.from("päü", "utf8"))), salt]))}`);
  });
});
