import { describe, expect, it } from "vitest";
import { DETECTORS, DETECTOR_NAMES, candidateMask, type DetectorName } from "./detectors/index.js";
import { corpusValue, mulberry32, typical } from "./fixtures.js";
import { scanBytes, scanText } from "./prefilter.js";

const ALL = (1 << DETECTOR_NAMES.length) - 1;

describe("prefilter is conservative", () => {
  it("never rules out a detector that matches (100k generated values, string and byte scans)", () => {
    const rnd = mulberry32(20240611);
    const hits = Object.fromEntries(DETECTOR_NAMES.map((n) => [n, 0])) as Record<DetectorName, number>;
    let skippedAll = 0;
    const N = 100_000;
    for (let n = 0; n < N; n++) {
      const text = corpusValue(rnd);
      const bytes = Buffer.from(text, "utf8");
      const decoded = bytes.toString("utf8"); // differs from text only where it held lone surrogates
      const fromText = candidateMask(scanText(text), ALL);
      const fromBytes = candidateMask(scanBytes(bytes), ALL);
      if (fromBytes === 0) skippedAll++;
      DETECTOR_NAMES.forEach((name, i) => {
        const bit = 1 << i;
        if (DETECTORS[name].detect(text).length > 0) {
          hits[name]++;
          expect(fromText & bit, `${name} skipped (text scan) for ${JSON.stringify(text)}`).toBe(bit);
        }
        if (DETECTORS[name].detect(decoded).length > 0) {
          expect(fromBytes & bit, `${name} skipped (byte scan) for ${JSON.stringify(text)}`).toBe(bit);
        }
      });
    }
    console.log(`prefilter property: ${N} values, all detectors skipped for ${skippedAll}; matches per detector ${JSON.stringify(hits)}`);
    // The corpus must exercise every detector, or the property above proves nothing about it.
    for (const name of DETECTOR_NAMES) expect(hits[name], name).toBeGreaterThan(200);
  });

  it("candidateMask agrees with each detector's own mayMatch, bit for bit in DETECTORS order", () => {
    const rnd = mulberry32(7);
    for (let n = 0; n < 5000; n++) {
      const f = scanText(corpusValue(rnd));
      const expected = DETECTOR_NAMES.reduce((m, name, i) => (DETECTORS[name].mayMatch(f) ? m | (1 << i) : m), 0);
      expect(candidateMask(f, ALL)).toBe(expected);
      expect(candidateMask(f, 0b1010101010)).toBe(expected & 0b1010101010);
    }
  });
});

describe("prefilter fast path", () => {
  it.each([
    "Jane Doe", "t", "false", "42", "-17", "12345.67", "1234567", "2024-01-15", "2024-01-15 10:23:45.123456+00",
    "2024-01-15T10:23:45Z", "12:30:45", "1.2.3", "550e8400-e29b-41d4-a716-446655440000", "The quick brown fox jumps over the lazy dog",
    "Müller", "{\"id\":42,\"ok\":true}", "N/A", "",
  ])("rules out every detector for %j", (value) => {
    expect(candidateMask(scanBytes(Buffer.from(value)), ALL)).toBe(0);
  });

  it("keeps the detectors a value needs", () => {
    const names = (v: string): DetectorName[] => DETECTOR_NAMES.filter((_, i) => candidateMask(scanBytes(Buffer.from(v)), ALL) & (1 << i));
    expect(names("jane@example.com")).toEqual(["email"]);
    expect(names("078-05-1120")).toEqual(["ssn", "phone"]);
    expect(names("4111 1111 1111 1111")).toContain("card");
    expect(names("fe80::1")).toEqual(["ip"]);
    expect(names("a716-446655440000")).not.toContain("card"); // the glued first group cannot start a card
  });

  it("settles most typical cells without the shape pass (ratio printed)", () => {
    const rnd = mulberry32(3);
    let fast = 0;
    const N = 10_000;
    for (let n = 0; n < N; n++) if (candidateMask(scanBytes(Buffer.from(typical(rnd))), ALL) === 0) fast++;
    console.log(`typical cells ruled out by the prefilter: ${fast}/${N}`);
    expect(fast).toBeGreaterThan(N * 0.9);
  });
});
