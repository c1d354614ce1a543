import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KEY, mulberry32, SAMPLE_RULES } from "./fixtures.js";
import { createMasker, resolveOverlaps } from "./masker.js";

const jwtHeader = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
const jwtBody = Buffer.from(JSON.stringify({ sub: "42", email: "jane@example.com" })).toString("base64url");
const JWT = `${jwtHeader}.${jwtBody}.${createHmac("sha256", "s").update(`${jwtHeader}.${jwtBody}`).digest("base64url")}`;

describe("maskText", () => {
  it("masks every detector kind with per-kind strategies and leaves the rest intact", () => {
    const m = createMasker({
      strategies: { card: { type: "partial" }, email: { type: "partial" }, ssn: { type: "redact", sameLength: true } },
    });
    const text = "Jane <jane.doe@example.com> paid with 4111 1111 1111 1111, SSN 078-05-1120, from 192.168.1.10, key AKIAIOSFODNN7EXAMPLE.";
    expect(m.maskText(text)).toBe("Jane <****@example.com> paid with ****1111, SSN ***********, from ****, key ****.");
  });
  it("returns the input unchanged when nothing is found", () => {
    const m = createMasker();
    expect(m.maskText("order 12345 shipped on 2024-01-15")).toBe("order 12345 shipped on 2024-01-15");
  });
  it("lets a JWT win over the email inside its decoded payload and the entropy detector on its segments", () => {
    const m = createMasker({ strategies: { jwt: { type: "redact" } } });
    expect(m.detect(`Bearer ${JWT}`).map((x) => x.kind)).toEqual(["jwt"]);
    expect(m.maskText(`Bearer ${JWT}`)).toBe("Bearer ****");
  });
  it("respects disabled detectors", () => {
    const m = createMasker({ detectors: { ip: false } });
    expect(m.maskText("from 10.0.0.1")).toBe("from 10.0.0.1");
  });
});

describe("resolveOverlaps", () => {
  it("keeps the longest match, then the earlier one, and returns them in order", () => {
    const r = resolveOverlaps([
      { start: 5, end: 9, kind: "short" },
      { start: 0, end: 20, kind: "long" },
      { start: 25, end: 30, kind: "a" },
      { start: 27, end: 32, kind: "b" },
      { start: 40, end: 41, kind: "alone" },
    ]);
    expect(r.map((x) => x.kind)).toEqual(["long", "a", "alone"]);
  });
});

describe("maskValue", () => {
  const m = createMasker(SAMPLE_RULES);
  it("applies exact column rules case-insensitively regardless of content", () => {
    expect(m.maskValue("BILLING.Cards.PAN", "not-a-card-123456789")).toBe("****6789");
  });
  it("applies glob column rules (hash is joinable across columns)", () => {
    const a = m.maskValue("public.users.Email_Address", "jane@example.com");
    const b = m.maskValue("crm.contacts.work_email", "jane@example.com");
    expect(a).toMatch(/^h:/);
    expect(a).toBe(b);
  });
  it("matches dotless patterns against the bare column name", () => {
    expect(m.maskValue("public.tickets.notes", "anything at all")).toBe("****");
    expect(m.maskValue("public.tickets.notes_old", "anything at all")).toBe("anything at all");
  });
  it("falls back to content detection for other columns", () => {
    expect(m.maskValue("public.users.bio", "mail me: jane@example.com")).toBe("mail me: ****@example.com");
  });
  it("exempts groups globally and per column rule", () => {
    expect(m.maskValue("public.users.email", "jane@example.com", ["dpo"])).toBe("jane@example.com");
    // Per-rule exemption skips the column rule but content detection still runs.
    expect(m.maskValue("public.tickets.notes", "call 415-555-2671", ["support"])).toBe("call ****");
    expect(m.maskValue("public.tickets.notes", "call 415-555-2671", ["eng"])).toBe("****");
  });
});

const SAMPLES = [
  "jane.doe@example.com", "4111 1111 1111 1111", "378282246310005", "GB82WEST12345698765432", "078-05-1120",
  "+44 20 7946 0958", "(415) 555-2671", "192.168.1.10", "2001:db8::1", JWT, "AKIAIOSFODNN7EXAMPLE",
  "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----",
];
const ALPHABET = "abcxyzABCXYZ0123456789 .-_@:+/=()\n\u00e9\u{1F600}";

describe("fuzz", () => {
  it("5k random strings: never throws, never leaks a detected value", () => {
    const rnd = mulberry32(1337);
    const m = createMasker();
    let detected = 0;
    for (let n = 0; n < 5000; n++) {
      let s = "";
      const parts = 1 + Math.floor(rnd() * 6);
      for (let p = 0; p < parts; p++) {
        if (rnd() < 0.4) s += SAMPLES[Math.floor(rnd() * SAMPLES.length)] ?? "";
        else for (let k = Math.floor(rnd() * 30); k > 0; k--) s += [...ALPHABET][Math.floor(rnd() * [...ALPHABET].length)] ?? "";
        s += rnd() < 0.5 ? " " : rnd() < 0.5 ? "\n" : ", ";
      }
      const out = m.maskText(s);
      for (const d of m.detect(s)) {
        const original = s.slice(d.start, d.end);
        detected++;
        // Very short matches can reappear by chance elsewhere in random text; 8+ chars cannot.
        if (original.length >= 8) expect(out, JSON.stringify({ s, original })).not.toContain(original);
      }
    }
    console.log(`fuzz: ${detected} detections across 5000 strings`);
    expect(detected).toBeGreaterThan(0);
  });
});

describe("throughput", () => {
  it("prints values/s for maskValue over realistic cells (informational, not asserted)", () => {
    const m = createMasker({ columns: [{ match: "*email*", strategy: { type: "hash", key: KEY } }] });
    const cells = [
      ["public.users.email", "jane.doe@example.com"],
      ["public.users.bio", "Loves hiking. Reach me at +1 415 555 2671 or jane@example.org"],
      ["public.orders.note", "Paid with 4111 1111 1111 1111 from 10.0.0.1"],
      ["public.orders.id", "ord_000123"],
      ["public.users.name", "Jane Doe"],
      ["public.audit.payload", `{"token":"${JWT}","ip":"2001:db8::1"}`],
    ] as const;
    const N = 30_000;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const [col, val] = cells[i % cells.length] ?? ["", ""];
      m.maskValue(col, val);
    }
    const secs = (performance.now() - t0) / 1000;
    console.log(`masking throughput: ${Math.round(N / secs)} values/s (${N} values in ${secs.toFixed(3)}s)`);
    expect(N).toBe(30_000);
  });
});
