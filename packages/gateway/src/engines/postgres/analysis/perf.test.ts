// Cache behaviour, robustness against garbage input, and a throughput figure.
import { beforeAll, describe, expect, it } from "vitest";
import { analyzeSync, analyzerCacheSize, clearAnalyzerCache, initAnalyzer, SqlAnalysisError, CACHE_MAX_ENTRIES } from "./index.js";

beforeAll(() => initAnalyzer());

/** Small deterministic PRNG so a failing fuzz input is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const TOKENS = ["SELECT", "FROM", "WHERE", "DROP", "TABLE", "(", ")", ",", ";", "'", '"', "$$", "$1", "--", "/*", "*/", "t", "1", "=", "WITH", "AS", "DELETE", "é", "\\", "::", "E'", "\n"];

describe("cache", () => {
  it("a hit returns the identical frozen facts", () => {
    clearAnalyzerCache();
    const sql = "SELECT * FROM cache_probe WHERE a = $1";
    const first = analyzeSync(sql);
    const second = analyzeSync(sql);
    expect(second).toBe(first);
    expect(Object.isFrozen(first[0]!.reads)).toBe(true);
    expect(analyzerCacheSize()).toBe(1);
  });

  it("is bounded", () => {
    clearAnalyzerCache();
    for (let i = 0; i < CACHE_MAX_ENTRIES + 50; i++) analyzeSync(`SELECT ${i}`);
    expect(analyzerCacheSize()).toBe(CACHE_MAX_ENTRIES);
    clearAnalyzerCache();
  });
});

describe("fuzz-ish", () => {
  it("random garbage only ever throws SqlAnalysisError (2k inputs)", () => {
    const r = rng(42);
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      let s = "";
      const n = Math.floor(r() * 20);
      for (let j = 0; j < n; j++) {
        s += r() < 0.7 ? TOKENS[Math.floor(r() * TOKENS.length)]! + " " : String.fromCharCode(Math.floor(r() * 0x3000));
      }
      try {
        analyzeSync(s);
      } catch (e) {
        if (!(e instanceof SqlAnalysisError)) throw new Error(`non-SqlAnalysisError for ${JSON.stringify(s)}: ${String(e)}`);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });

  it("deep nesting fails closed", () => {
    expect(() => analyzeSync("SELECT " + "(".repeat(20000) + "1" + ")".repeat(20000))).toThrow(SqlAnalysisError);
  });
});

describe("throughput", () => {
  it("prints parses/s cold vs cached", () => {
    const N = 3000;
    const q = (i: number) => `WITH d AS (DELETE FROM s.t${i} WHERE id = $1 RETURNING *) SELECT a.x, count(*) FROM d JOIN u ON u.id = d.id WHERE u.k IN (SELECT k FROM v) GROUP BY 1`;
    clearAnalyzerCache();
    let t = performance.now();
    for (let i = 0; i < N; i++) analyzeSync(q(i));
    const cold = N / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let r = 0; r < 10; r++) for (let i = 0; i < N; i++) analyzeSync(q(i));
    const cached = (10 * N) / ((performance.now() - t) / 1000);
    console.log(`analyzer throughput: cold ${Math.round(cold)} stmts/s, cached ${Math.round(cached)} stmts/s`);
    // Figures only (no timing threshold); what must hold is that every statement was cached.
    expect(analyzerCacheSize()).toBe(N);
    clearAnalyzerCache();
  });
});
