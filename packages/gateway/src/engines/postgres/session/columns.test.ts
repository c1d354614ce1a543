// Masking plans for result columns, and the binary numeric decoder checked against the real
// PostgreSQL's numeric_send (machine's server, 127.0.0.1:5432, trust auth).
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMasker } from "../../../masking/masker.js";
import type { FieldDescription } from "../protocol/index.js";
import { maskRow, numericText, planColumns } from "./columns.js";

let db: pg.Client;
beforeAll(async () => {
  db = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
});
afterAll(() => db?.end());

const field = (name: string, dataTypeOid: number, format: 0 | 1): FieldDescription =>
  ({ name, tableOid: 0, columnAttrNumber: 0, dataTypeOid, dataTypeSize: -1, typeModifier: -1, format }) as FieldDescription;

describe("numericText", () => {
  it("decodes numeric_send exactly as PostgreSQL prints the value", async () => {
    const values = ["0", "1", "-1", "12.5", "1234.5678", "0.0001", "0.00000001", "-0.5", "10000", "100000000", "4111111111111111", "3.14159265358979323846", "1e-20", "123456789012345678901234567890.000", "NaN", "Infinity", "-Infinity"];
    const r = await db.query<{ t: string; b: Buffer }>("SELECT v::numeric::text AS t, numeric_send(v::numeric) AS b FROM unnest($1::text[]) v", [values]);
    for (const { t, b } of r.rows) expect(numericText(b)).toBe(t);
  });

  it("rejects malformed input", () => {
    expect(numericText(Buffer.alloc(3))).toBeNull();
    expect(numericText(Buffer.from([0, 2, 0, 0, 0, 0, 0, 0, 0, 1]))).toBeNull(); // says 2 digits, has 1
  });
});

describe("planColumns and maskRow", () => {
  const masker = createMasker({ columns: [{ match: "balance", strategy: { type: "redact" } }], strategies: { card: { type: "partial", keep: 4 } } });
  const int8 = (n: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    return b;
  };

  it("masks text and binary-as-text columns, passes numbers that hold nothing sensitive", () => {
    const plan = planColumns([field("email", 25, 1), field("n", 20, 1), field("at", 1184, 1)], masker, []);
    expect(plan.refuse).toBeNull();
    const row = [Buffer.from("a@example.com"), int8(42n), Buffer.alloc(8)];
    expect(maskRow(row, plan)).toBe(1);
    expect(row[0]!.toString()).toBe("****");
  });

  it("refuses a binary integer whose text a detector would mask (a card number in an int8)", () => {
    const plan = planColumns([field("card_no", 20, 1)], masker, []);
    expect(maskRow([int8(4111111111111111n)], plan)).toEqual({ refuse: "card_no" });
  });

  it("refuses binary columns under a column rule, and opaque binary types under content detection", () => {
    expect(planColumns([field("balance", 1700, 1)], masker, []).refuse).toBe("balance");
    expect(planColumns([field("ip", 869, 1)], masker, []).refuse).toBe("ip"); // inet
    expect(planColumns([field("tags", 1009, 1)], masker, []).refuse).toBe("tags"); // text[]
    expect(planColumns([field("tags", 1009, 0)], masker, []).refuse).toBeNull(); // text format is masked
  });

  it("refuses a row whose width does not match its description", () => {
    const plan = planColumns([field("a", 25, 0)], masker, []);
    expect(maskRow([Buffer.from("x"), Buffer.from("y")], plan)).toHaveProperty("refuse");
  });
});
