// Masking through the front door, on realistic customer data: result rows
// (column rules and content detectors, text and binary formats), an exempt
// group, COPY TO STDOUT (text and CSV), and data echoed in errors, notices
// and notifications. Nothing sensitive may reach a non-exempt client.
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, startPgEnv, type PgEnv } from "./harness/pg.js";
import { dataRow, fields, wire, wireLogin, type BackendMsg } from "./harness/pg-wire.js";

const POLICY = `
@id("everyone")
@reason("e2e: masking is what is under test")
permit (principal, action, resource);
`;
const MASKING = JSON.stringify({
  strategies: { card: { type: "partial", keep: 4 } },
  columns: [
    { match: "*email*", strategy: { type: "partial" } },
    { match: "public.customers.full_name", strategy: { type: "redact" } },
    { match: "balance", strategy: { type: "redact" } },
  ],
  exemptGroups: ["dpo"],
});

const JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const AWS = "AKIAZ3XQ7PLM2K4RT6WB";
/** One row per customer: every value here is sensitive except id and city. */
const CUSTOMERS = [
  { id: 1, full_name: "Alice Smith", email: "alice.smith@example.com", phone: "+1 415-555-0100", card: "4111 1111 1111 1111", iban: "DE89 3704 0044 0532 0130 00", ssn: "536-22-1234", ip: "203.0.113.7", api_token: JWT, aws_key: AWS, city: "Berlin", balance: "1234.56", card_no: "4111111111111111" },
  { id: 2, full_name: "Bob Jones", email: "bob@corp.example.org", phone: "(415) 555-0199", card: "5555555555554444", iban: "GB82WEST12345698765432", ssn: "078-05-1121", ip: "2001:db8::1", api_token: JWT, aws_key: AWS, city: "Paris", balance: "99.00", card_no: "5555555555554444" },
];
const SECRETS = CUSTOMERS.flatMap((c) => [c.full_name, c.email, c.phone, c.card, c.iban, c.ssn, c.ip, c.api_token, c.aws_key, c.balance, c.card_no]);
const SETUP = `
CREATE TABLE customers (id int PRIMARY KEY, full_name text, email text UNIQUE, phone text, card text, iban text, ssn text,
  ip inet, api_token text, aws_key text, city text, balance numeric, card_no int8, notes text, tags text[], profile jsonb);
${CUSTOMERS.map(
  (c) =>
    `INSERT INTO customers VALUES (${c.id}, '${c.full_name}', '${c.email}', '${c.phone}', '${c.card}', '${c.iban}', '${c.ssn}', '${c.ip}', '${c.api_token}', '${c.aws_key}', '${c.city}', ${c.balance}, ${c.card_no},
      'call ${c.phone} or mail ${c.email}', ARRAY['${c.email}', 'vip'], '{"contact": "${c.email}", "tier": 1}');`,
).join("\n")}
`;

let env: PgEnv;
let token = "";
let c: pg.Client;

/** Fails the test if any sensitive value appears in `text`. */
function expectNoSecrets(text: string): void {
  for (const s of SECRETS) expect(text, `leaked ${s}`).not.toContain(s);
}

beforeAll(async () => {
  env = await startPgEnv({ name: "masking", policy: { "policy.cedar": POLICY, "masking.json": MASKING }, setupSql: SETUP });
  token = await env.token("alice", ["support"]);
  c = await env.connect(token);
});
afterAll(async () => {
  await c?.end().catch(() => {});
  await env?.close();
});

describe("result rows", () => {
  it("masks text results by column rule and by content", async () => {
    const r = await c.query("SELECT * FROM customers ORDER BY id");
    expect(r.rows[0]).toEqual({
      id: 1,
      full_name: "****", // dotted column rule (resolved through the catalog)
      email: "****@example.com", // *email* rule, partial
      phone: "****",
      card: "****1111", // content: card strategy keeps 4
      iban: "****",
      ssn: "****",
      ip: "****",
      api_token: "****",
      aws_key: "****",
      city: "Berlin",
      balance: "****", // column rule on a numeric column (text format)
      card_no: "****1111",
      notes: "call **** or mail ****",
      tags: ["****", "vip"],
      profile: { contact: "****", tier: 1 },
    });
    expectNoSecrets(JSON.stringify(r.rows));
  });

  it("applies column rules to aliased columns", async () => {
    const r = await c.query("SELECT full_name AS who, email AS contact FROM customers WHERE id = 2");
    expect(r.rows).toEqual([{ who: "****", contact: "****@corp.example.org" }]);
  });

  it("shows clear values to an exempt group", async () => {
    const dpo = await env.connect(await env.token("dora", ["dpo"]));
    try {
      const r = await dpo.query("SELECT full_name, email, card, notes FROM customers WHERE id = 1");
      expect(r.rows).toEqual([{ full_name: "Alice Smith", email: "alice.smith@example.com", card: "4111 1111 1111 1111", notes: "call +1 415-555-0100 or mail alice.smith@example.com" }]);
    } finally {
      await dpo.end();
    }
  });
});

describe("COPY TO STDOUT", () => {
  const copyOut = async (sql: string) => {
    let out = "";
    await pipeline(c.query(copyTo(sql)), new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString()), cb()) }));
    return out;
  };

  it("masks text format, column rules included", async () => {
    const out = await copyOut("COPY customers (id, full_name, email, card, city, notes) TO STDOUT");
    expect(out.split("\n")[0]).toBe("1\t****\t****@example.com\t****1111\tBerlin\tcall **** or mail ****");
    expectNoSecrets(out);
  });

  it("masks CSV with a header, and a COPY of a query", async () => {
    const out = await copyOut("COPY (SELECT id, full_name, email, balance, city FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)");
    expect(out.split("\n").slice(0, 3)).toEqual(["id,full_name,email,balance,city", "1,****,****@example.com,****,Berlin", "2,****,****@corp.example.org,****,Paris"]);
    expectNoSecrets(out);
  });

  it("masks a whole-table COPY", async () => {
    const out = await copyOut("COPY customers TO STDOUT (FORMAT csv)");
    expect(out.trimEnd().split("\n")).toHaveLength(2);
    expectNoSecrets(out);
  });

  it("refuses COPY through the extended protocol when column rules apply (its columns are not described)", async () => {
    const { conn } = await wireLogin(env.pgPort, token, env.connection);
    try {
      conn.send(Buffer.concat([wire.parse("COPY customers (id, full_name) TO STDOUT"), wire.bind(), wire.execute(), wire.sync()]));
      const msgs = await conn.untilReady();
      expect(msgs.map((m) => m.type).join("")).toBe("12HEZ");
      expect(fields(msgs.find((m) => m.type === "E")!).C).toBe("0A000");
      expectNoSecrets(Buffer.concat(msgs.map((m) => m.body)).toString("latin1"));
    } finally {
      conn.close();
    }
  });

  it("refuses binary COPY, leaking nothing", async () => {
    const err = await errorOf(copyOut("COPY customers TO STDOUT (FORMAT binary)"));
    expect((err as { code?: string }).code).toBe("0A000");
    expect((await c.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
  });
});

describe("data echoed outside result rows", () => {
  it("masks a unique violation's DETAIL", async () => {
    const err = await errorOf(c.query("INSERT INTO customers (id, email) VALUES (3, 'alice.smith@example.com')"));
    expect(err.code).toBe("23505");
    expect(err.detail).toBe("Key (email)=(****) already exists.");
    expectNoSecrets(JSON.stringify(err));
  });

  it("masks NOTICE texts", async () => {
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    await c.query("DO $$ BEGIN RAISE NOTICE 'card % of %', '4111111111111111', 'alice.smith@example.com'; END $$");
    c.removeAllListeners("notice");
    expect(notices).toEqual(["card ****1111 of ****"]);
  });
});

describe("binary result format", () => {
  /** Parse/Bind (binary results)/Execute/Sync on a raw connection; every message returned. */
  async function binaryQuery(sql: string): Promise<BackendMsg[]> {
    const { conn } = await wireLogin(env.pgPort, token, env.connection);
    try {
      conn.send(Buffer.concat([wire.parse(sql), wire.bind([], [1]), wire.describePortal(), wire.execute(), wire.sync()]));
      const msgs = await conn.untilReady();
      conn.send(wire.query("SELECT 1"));
      expect((await conn.untilReady()).map((m) => m.type).join("")).toBe("TDCZ"); // still usable
      return msgs;
    } finally {
      conn.close();
    }
  }
  const raw = (msgs: BackendMsg[]) => Buffer.concat(msgs.map((m) => m.body)).toString("latin1");

  it("refuses a binary column under a column rule with 0A000, sending no row", async () => {
    const msgs = await binaryQuery("SELECT id, balance FROM customers ORDER BY id");
    expect(msgs.filter((m) => m.type === "D")).toHaveLength(0);
    const e = msgs.find((m) => m.type === "E");
    expect(e && fields(e).C).toBe("0A000");
    expect(e && fields(e).M).toMatch(/balance/);
    expectNoSecrets(raw(msgs));
  });

  it("refuses it through node-postgres too", async () => {
    // `binary` is a real node-postgres query option (all results in binary) that its types omit.
    const binaryConfig = { text: "SELECT balance FROM customers WHERE id = $1", values: [1], binary: true } as pg.QueryConfig;
    const err = await errorOf(c.query(binaryConfig));
    expect(err.code).toBe("0A000");
    expect((await c.query("SELECT 2 AS ok")).rows).toEqual([{ ok: 2 }]);
  });

  it("masks binary text-like columns (text, jsonb)", async () => {
    const msgs = await binaryQuery("SELECT email, notes, profile, city FROM customers WHERE id = 1");
    const rows = msgs.filter((m) => m.type === "D").map(dataRow);
    expect(rows).toHaveLength(1);
    const [email, notes, profile, city] = rows[0]!;
    expect(email!.toString()).toBe("****@example.com");
    expect(notes!.toString()).toBe("call **** or mail ****");
    expect(profile![0]).toBe(1); // jsonb binary: version byte, then the JSON text
    expect(JSON.parse(profile!.subarray(1).toString())).toEqual({ contact: "****", tier: 1 });
    expect(city!.toString()).toBe("Berlin");
    expectNoSecrets(raw(msgs));
  });

  it("passes binary numbers, dates and booleans that hold nothing sensitive", async () => {
    const msgs = await binaryQuery("SELECT id, 1234.5678::numeric AS n, 42::int8 AS big, now()::date AS d, true AS b FROM customers WHERE id = 1");
    expect(msgs.map((m) => m.type).join("")).toBe("12TDCZ");
    const [id, n, big, , b] = dataRow(msgs.find((m) => m.type === "D")!);
    expect(id!.readInt32BE(0)).toBe(1);
    expect(n!.readInt16BE(0)).toBe(2); // numeric_send: two base-10000 digits, 1234 and 5678
    expect(big!.readBigInt64BE(0)).toBe(42n);
    expect(b![0]).toBe(1);
  });

  it("does not leak content-detected values through binary forms of other types", async () => {
    for (const sql of ["SELECT card_no FROM customers", "SELECT ip FROM customers", "SELECT tags FROM customers"]) {
      const msgs = await binaryQuery(sql);
      const text = raw(msgs);
      expectNoSecrets(text);
      expect(text).not.toContain("alice.smith@example.com");
      // Binary integers and addresses carry no text: check the numbers themselves did not pass.
      for (const row of msgs.filter((m) => m.type === "D").map(dataRow)) {
        for (const v of row) {
          if (!v) continue;
          if (v.length === 8) expect([4111111111111111n, 5555555555554444n]).not.toContain(v.readBigInt64BE(0));
          expect(v.includes(Buffer.from([203, 0, 113, 7]))).toBe(false);
        }
      }
    }
  });
});
