// Seeded PRNG for the tests' fuzzers and generated fixtures, so a failure
// reproduces from its seed. Test-only (test-*.ts files are not built).

/** mulberry32: tiny, fast, good enough to drive mutations and fake data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
