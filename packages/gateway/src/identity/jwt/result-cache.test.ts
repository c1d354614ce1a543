import { describe, expect, it } from "vitest";
import { ResultCache } from "./result-cache.js";

describe("ResultCache", () => {
  it("serves an entry until its deadline and drops it afterwards", () => {
    const c = new ResultCache<string>(10);
    c.set("t", "v", 1_000, 0);
    expect(c.get("t", 999)).toBe("v");
    expect(c.get("t", 1_000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("evicts the oldest entry when full, and re-setting a key makes it newest", () => {
    const c = new ResultCache<number>(2);
    c.set("a", 1, 100, 0);
    c.set("b", 2, 100, 0);
    c.set("a", 1, 100, 0); // a is newest now
    c.set("c", 3, 100, 0); // evicts b
    expect(c.size).toBe(2);
    expect(c.get("b", 1)).toBeUndefined();
    expect(c.get("a", 1)).toBe(1);
    expect(c.get("c", 1)).toBe(3);
  });

  it("ignores already-expired entries, caches nothing with max 0, and clears", () => {
    const c = new ResultCache<number>(5);
    c.set("past", 1, 10, 10);
    expect(c.size).toBe(0);
    const off = new ResultCache<number>(0);
    off.set("x", 1, 100, 0);
    expect(off.get("x", 1)).toBeUndefined();
    c.set("y", 2, 100, 0);
    c.clear();
    expect(c.get("y", 1)).toBeUndefined();
  });

  it("never serves a result for a different token that shares the key tail", () => {
    const c = new ResultCache<string>(5);
    const tail = "S".repeat(40);
    c.set(`header.payload-A.${tail}`, "A", 100, 0);
    expect(c.get(`header.payload-A.${tail}`, 1)).toBe("A");
    expect(c.get(`header.payload-B.${tail}`, 1)).toBeUndefined();
    // The miss did not disturb the cached entry.
    expect(c.get(`header.payload-A.${tail}`, 1)).toBe("A");
    expect(c.get("short", 1)).toBeUndefined();
    c.set("short", "s", 100, 0);
    expect(c.get("short", 1)).toBe("s");
  });
});
