/**
 * Deterministic fake customers for the demo target: realistic enough that
 * masking has something to find (emails, phones, Luhn-valid card numbers),
 * generated without network or large fixtures.
 */
const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Linus", "Radia", "Ken", "Frances", "Tim", "Hedy", "John", "Katherine", "Dennis"];
const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Torvalds", "Perlman", "Thompson", "Allen", "Berners-Lee", "Lamarr", "McCarthy", "Johnson", "Ritchie"];
const CITIES = ["Lisbon", "Oslo", "Austin", "Nairobi", "Osaka", "Toronto", "Berlin", "Melbourne"];

/** Small seeded PRNG (mulberry32) so every run has the same people. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Appends the Luhn check digit to a digit string. */
export function withLuhn(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits + ((10 - (sum % 10)) % 10);
}

export interface FakePerson {
  id: number;
  fullName: string;
  email: string;
  phone: string;
  cardNumber: string;
  city: string;
  signupDate: string;
}

export function fakePeople(n: number, seed = 42): FakePerson[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const digits = (k: number) => Array.from({ length: k }, () => Math.floor(r() * 10)).join("");
  return Array.from({ length: n }, (_, i) => {
    const first = pick(FIRST);
    const last = pick(LAST);
    const day = new Date(Date.UTC(2020, 0, 1) + Math.floor(r() * 5 * 365) * 86400000);
    return {
      id: i + 1,
      fullName: `${first} ${last}`,
      email: `${first}.${last}${i + 1}@example.com`.toLowerCase().replace(/[^a-z0-9.@-]/g, ""),
      phone: `+1-555-${digits(3)}-${digits(4)}`,
      cardNumber: withLuhn(`4${digits(14)}`),
      city: pick(CITIES),
      signupDate: day.toISOString().slice(0, 10),
    };
  });
}
