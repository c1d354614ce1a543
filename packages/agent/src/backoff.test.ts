import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("doubles up to the cap, with jitter inside [ceiling/2, ceiling]", () => {
    const lo = new Backoff(100, 1_000, () => 0);
    const hi = new Backoff(100, 1_000, () => 1);
    expect(Array.from({ length: 6 }, () => lo.next())).toEqual([50, 100, 200, 400, 500, 500]);
    expect(Array.from({ length: 6 }, () => hi.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("starts over after reset", () => {
    const b = new Backoff(100, 1_000, () => 1);
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });

  it("spreads a fleet's retries", () => {
    const delays = new Set(Array.from({ length: 50 }, () => new Backoff(1_000, 30_000).next()));
    expect(delays.size).toBeGreaterThan(25);
  });
});
