import { describe, expect, it } from "vitest";
import { corpusValue, KEY, mulberry32, SAMPLE_RULES, sensitive, throughput, typical } from "./fixtures.js";
import { createMasker, type ColumnMasker } from "./masker.js";


describe("forColumn", () => {
  const m = createMasker(SAMPLE_RULES);
  const content = m.content();

  it("a column rule beats content detection and masks whatever the value holds", () => {
    const pan = m.forColumn("billing.cards.pan", ["eng"]);
    expect(pan).not.toBe(content);
    expect(pan?.maskText("not-a-card-123456789")).toBe("****6789");
    expect(pan?.maskBytes(Buffer.from("not-a-card-123456789"))?.toString()).toBe("****6789");
    expect(m.forColumn("public.users.work_email", [])?.maskText("jane@example.com")).toMatch(/^h:[A-Za-z0-9_-]{22}$/);
    expect(m.hasColumnRule("public.users.work_email", [])).toBe(true);
  });

  it("other columns get the shared content masker", () => {
    expect(content).not.toBeNull();
    expect(m.forColumn("public.users.bio", [])).toBe(content);
    expect(m.forColumn("bio", ["eng"])?.maskText("mail me: jane@example.com")).toBe("mail me: ****@example.com");
    expect(m.hasColumnRule("public.users.bio", [])).toBe(false);
  });

  it("a rule's exempt group skips the rule but not content detection", () => {
    expect(m.forColumn("public.tickets.notes", ["eng"])?.maskText("call 415-555-2671")).toBe("****");
    expect(m.forColumn("public.tickets.notes", ["support"])).toBe(content);
    expect(m.forColumn("public.tickets.notes", ["support"])?.maskText("call 415-555-2671")).toBe("call ****");
    expect(m.hasColumnRule("public.tickets.notes", ["support"])).toBe(false);
  });

  it("globally exempt principals get null everywhere, including content()", () => {
    expect(m.forColumn("billing.cards.pan", ["eng", "dpo"])).toBeNull();
    expect(m.forColumn("public.users.bio", ["dpo"])).toBeNull();
    expect(m.content(["dpo"])).toBeNull();
    expect(m.hasColumnRule("billing.cards.pan", ["dpo"])).toBe(false);
  });

  it("is null when nothing can change a column: every detector off and no rule matches", () => {
    const off = createMasker({
      detectors: { pem: false, jwt: false, aws: false, iban: false, card: false, ssn: false, email: false, ip: false, phone: false, entropy: false },
      columns: [{ match: "secret", strategy: { type: "redact", sameLength: true } }],
    });
    expect(off.content()).toBeNull();
    expect(off.forColumn("public.t.other", [])).toBeNull();
    expect(off.forColumn("public.t.secret", [])?.maskBytes(Buffer.from("abc"))?.toString()).toBe("***");
  });

  it("maskBytes returns null for unchanged values, including a value already equal to the redaction", () => {
    const notes = m.forColumn("notes", []) as ColumnMasker;
    expect(notes.maskBytes(Buffer.from("****"))).toBeNull();
    expect(notes.maskBytes(Buffer.from("x"))?.toString()).toBe("****");
    expect(content?.maskBytes(Buffer.from("nothing to see"))).toBeNull();
  });
});

describe("maskBytes = Buffer.from(maskText(text))", () => {
  it("holds on 20k values (random Unicode, realistic PII, near misses) and masked originals do not survive", () => {
    const rnd = mulberry32(424242);
    const masker = createMasker({ strategies: { card: { type: "partial" }, email: { type: "partial" }, ssn: { type: "hash", key: KEY } } });
    const content = masker.content() as ColumnMasker;
    let changed = 0;
    let leakChecks = 0;
    for (let n = 0; n < 20_000; n++) {
      const text = n % 4 === 0 ? sensitive(rnd) : corpusValue(rnd);
      const bytes = Buffer.from(text, "utf8");
      const expected = Buffer.from(masker.maskText(text), "utf8");
      const got = content.maskBytes(bytes);
      if (got === null) {
        expect(expected.equals(bytes), JSON.stringify(text)).toBe(true);
      } else {
        changed++;
        expect(got.equals(expected), JSON.stringify(text)).toBe(true);
        expect(got.equals(bytes)).toBe(false);
      }
      // Leak check: a detected value of 8+ characters (shorter ones can recur by chance) is gone.
      for (const d of masker.detect(text)) {
        const original = text.slice(d.start, d.end);
        if (original.length < 8) continue;
        leakChecks++;
        expect((got ?? bytes).includes(Buffer.from(original)), JSON.stringify({ text, original })).toBe(false);
      }
    }
    console.log(`maskBytes equivalence: 20000 values, ${changed} changed, ${leakChecks} leak checks`);
    expect(changed).toBeGreaterThan(5000);
  });
});

describe("throughput (printed, not asserted)", () => {
  it("maskBytes over typical and mixed values", () => {
    const content = createMasker().content() as ColumnMasker;
    const rnd = mulberry32(99);
    const typicalValues = Array.from({ length: 1000 }, () => Buffer.from(typical(rnd)));
    let changed = 0;
    const t = throughput(1_000_000, () => {
      for (let i = 0; i < 1_000_000; i++) if (content.maskBytes(typicalValues[i % 1000] as Buffer)) changed++;
    });
    // "Realistic mixed": one value in five sensitive, the rest typical.
    const mixed = Array.from({ length: 1000 }, (_, i) => Buffer.from(i % 5 === 0 ? sensitive(rnd) : typical(rnd)));
    const m = throughput(100_000, () => {
      for (let i = 0; i < 100_000; i++) if (content.maskBytes(mixed[i % 1000] as Buffer)) changed++;
    });
    console.log(
      `maskBytes, 1M typical values: ${t.wall} values/s wall, ${t.cpu} by CPU time (${(1e9 / t.cpu).toFixed(0)} ns each); ` +
        `100k mixed (20% sensitive): ${m.wall} values/s wall, ${m.cpu} by CPU time`,
    );
    expect(changed).toBeGreaterThan(0);
  });
});
