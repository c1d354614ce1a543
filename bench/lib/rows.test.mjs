// The 1M-row data set and its masking check, against real parts: the card
// numbers are validated by the gateway's own card detector, the table is made
// in a real PostgreSQL, and the bench's masking.json runs through the gateway's
// real masker (packages/gateway/dist: run `pnpm build` first).
import fs from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMasker } from "../../packages/gateway/dist/masking/masker.js";
import { isCardNumber } from "../../packages/gateway/dist/masking/detectors/luhn.js";
import { dropDb, psql } from "./pgbench.mjs";
import { cardNumbers, checkMasking, COLUMNS, customersSql, luhnCheckDigit, readAll, READ_SQL } from "./rows.mjs";

const DB = `airlock_bench_rows_test_${process.pid}`;
const conn = { host: "127.0.0.1", port: 5432, user: "postgres", database: DB };

describe("bench rows", () => {
  beforeAll(() => {
    psql("postgres", `CREATE DATABASE ${DB}`);
    psql(DB, null, { input: customersSql(5000, 64) });
  });
  afterAll(() => dropDb(DB));

  it("computes Luhn check digits (Wikipedia's example 7992739871 → 3)", () => {
    expect(luhnCheckDigit("7992739871")).toBe("3");
    expect(luhnCheckDigit("411111111111111")).toBe("1");
  });

  it("makes distinct card numbers the gateway's card detector accepts", () => {
    const cards = cardNumbers(4096);
    expect(new Set(cards).size).toBe(4096);
    for (const c of cards) {
      expect(c).toMatch(/^\d{4} \d{4} \d{4} \d{4}$/);
      expect(isCardNumber(c.replace(/ /g, ""))).toBe(true);
    }
  });

  it("creates the customers table and streams every row with a sample by id", async () => {
    const r = await readAll(conn, READ_SQL, { sampleEvery: 100 });
    expect(r.rows).toBe(5000);
    expect(r.sample.size).toBe(50);
    const row = r.sample.get(100);
    expect(row).toHaveLength(COLUMNS.length);
    expect(row[COLUMNS.indexOf("email")]).toMatch(/^[a-z.]+100@[a-z.]+$/);
    expect(row[COLUMNS.indexOf("phone")]).toMatch(/^\(\d{3}\) \d{3}-\d{4}$/);
    console.log("sample row", row);
  });

  it("the bench's masking.json masks every sensitive column and checkMasking sees it", async () => {
    const rules = JSON.parse(fs.readFileSync(join(import.meta.dirname, "..", "policies", "postgres", "masking.json"), "utf8"));
    const masker = createMasker(rules);
    const direct = (await readAll(conn, READ_SQL, { sampleEvery: 100 })).sample;
    const masked = new Map(
      [...direct].map(([id, row]) => [id, row.map((v, i) => (i === 0 || v instanceof Date ? v : masker.maskValue(`public.bench_customers.${COLUMNS[i]}`, String(v))))]),
    );
    const m = checkMasking(direct, masked);
    expect(m.compared).toBe(50);
    expect(m.emailsPartial).toBe(50);
    expect(m.cardsLeaked).toBe(0);
    expect(m.changed).toMatchObject({ id: 0, full_name: 50, email: 50, phone: 50, card_number: 50, city: 0, created_at: 0 });
    // And the check notices when nothing was masked.
    const none = checkMasking(direct, direct);
    expect(none.emailsPartial).toBe(0);
    expect(none.cardsLeaked).toBe(50);
    console.log("masked example", m.examples[0]);
  });
});
