// The large-result measurement: a table of 1,000,000 realistic-looking
// customers (name, email, phone, card number with a valid Luhn check digit,
// city, created_at), read in full with node-postgres, directly and through
// Airlock's front door (where every value passes the masker), plus a check
// that what came through the front door is really masked.
//
// The table is made with generate_series in SQL, directly (it is DDL); card
// numbers come from a small table of pre-computed valid numbers (JS below)
// joined by id modulo its size, so every row carries a plausible card.
import { createRequire } from "node:module";
import { join } from "node:path";

// `pg` is the gateway's dependency; the bench borrows it rather than adding one.
const require = createRequire(join(import.meta.dirname, "..", "..", "packages", "gateway", "package.json"));
const pg = require("pg");

export const CUSTOMERS_TABLE = "bench_customers";
export const COLUMNS = ["id", "full_name", "email", "phone", "card_number", "city", "created_at"];
export const READ_SQL = `SELECT ${COLUMNS.join(", ")} FROM ${CUSTOMERS_TABLE}`;

/** Luhn (mod 10) check digit for a string of digits: https://en.wikipedia.org/wiki/Luhn_algorithm */
export function luhnCheckDigit(payload) {
  let sum = 0;
  // Doubling starts at the rightmost payload digit (the check digit goes after it).
  for (let i = payload.length - 1, dbl = true; i >= 0; i--, dbl = !dbl) {
    let d = payload.charCodeAt(i) - 48;
    if (dbl && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** `n` distinct 16-digit Visa/Mastercard-looking numbers, "4xxx xxxx xxxx xxxx", deterministic. */
export function cardNumbers(n) {
  const out = [];
  let x = 0x2545f491; // xorshift32: reproducible, no dependency
  for (let i = 0; i < n; i++) {
    const digits = [];
    while (digits.length < 14) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      digits.push(String((x >>> 0) % 10));
    }
    const payload = (i % 2 ? "5" + String(1 + (i % 5)) : "4" + digits.shift()) + digits.join("").slice(0, 13);
    const card = payload + luhnCheckDigit(payload);
    out.push(card.replace(/(\d{4})(?=\d)/g, "$1 "));
  }
  return out;
}

const FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Leo", "Evelyn", "Henry", "Aria", "Oliver", "Chloé", "Søren", "Zoë", "Jürgen", "Aoife", "Kenji", "Priya", "Tomás", "Fatima", "Mehmet"];
const LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sánchez", "Clark", "Ramirez", "Lewis", "Robinson", "O'Brien", "Müller", "Novak", "Kowalski", "Nakamura", "Okafor", "Dubois", "Rossi", "Jensen", "Silva"];
const CITIES = ["Springfield", "Rivertown", "Lakeside", "Oakland", "Portsmouth", "Fairview", "Greenville", "Madison", "Georgetown", "Salem", "Kingston", "Bristol", "Clinton", "Ashland", "Dover", "Hudson", "Milton", "Newport", "Riverside", "Auburn"];
const DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "inbox.test", "example.co.uk"];

const lit = (s) => `'${s.replace(/'/g, "''")}'`;
const arr = (xs) => `ARRAY[${xs.map(lit).join(",")}]`;

/** SQL that (re)creates the customers table with `rows` rows; run it directly, not through Airlock. */
export function customersSql(rows, cards = 4096) {
  const values = cardNumbers(cards).map((c, i) => `(${i},${lit(c)})`);
  return `
DROP TABLE IF EXISTS ${CUSTOMERS_TABLE}, bench_cards;
CREATE TABLE bench_cards (i int PRIMARY KEY, card text NOT NULL);
INSERT INTO bench_cards VALUES ${values.join(",")};
CREATE TABLE ${CUSTOMERS_TABLE} AS
SELECT g AS id,
       n.first || ' ' || n.last AS full_name,
       -- ASCII-only local part: accented names are folded away, as sign-up forms often do
       lower(regexp_replace(n.first || '.' || n.last, '[^A-Za-z.]', '', 'g')) || g || '@' || (${arr(DOMAINS)})[1 + g % ${DOMAINS.length}] AS email,
       format('(%s) %s-%s', 200 + g % 700, 200 + (g / 7) % 700, lpad((g % 10000)::text, 4, '0')) AS phone,
       c.card AS card_number,
       (${arr(CITIES)})[1 + (g / 3) % ${CITIES.length}] AS city,
       timestamptz '2019-01-01 00:00:00+00' + g * interval '97 seconds' AS created_at
FROM generate_series(1, ${rows}) AS g
CROSS JOIN LATERAL (SELECT (${arr(FIRST)})[1 + g % ${FIRST.length}] AS first,
                           (${arr(LAST)})[1 + (g / ${FIRST.length}) % ${LAST.length}] AS last) AS n
JOIN bench_cards c ON c.i = g % ${cards};
ALTER TABLE ${CUSTOMERS_TABLE} ADD PRIMARY KEY (id);
ANALYZE ${CUSTOMERS_TABLE};
`;
}

/**
 * Reads every row of `sql` with node-postgres, rows handed over one by one
 * (the Query emits 'row' and keeps nothing, so the client holds no result
 * set). Returns { rows, ms, sample } where sample maps id → row for ids that
 * are multiples of `sampleEvery`.
 */
export async function readAll(config, sql, { sampleEvery = 1000 } = {}) {
  const client = new pg.Client({ ...config, statement_timeout: 0 });
  await client.connect();
  try {
    const sample = new Map();
    let rows = 0;
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const q = client.query(new pg.Query({ text: sql, rowMode: "array" }));
      q.on("row", (r) => {
        rows++;
        if (Number(r[0]) % sampleEvery === 0) sample.set(Number(r[0]), r);
      });
      q.on("end", resolve);
      q.on("error", reject);
    });
    return { rows, ms: performance.now() - t0, sample };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Compares sampled rows read through Airlock with the same ids read directly:
 * per column, how many values differ (= were masked), and whether emails kept
 * only their domain and no full card number survived.
 */
export function checkMasking(direct, masked) {
  const changed = Object.fromEntries(COLUMNS.map((c) => [c, 0]));
  let compared = 0;
  let emailsPartial = 0;
  let cardsLeaked = 0;
  const examples = [];
  for (const [id, m] of masked) {
    const d = direct.get(id);
    if (!d) continue;
    compared++;
    COLUMNS.forEach((c, i) => String(m[i]) !== String(d[i]) && changed[c]++);
    const email = String(m[COLUMNS.indexOf("email")]);
    if (/^\*+@/.test(email) && email.endsWith(String(d[COLUMNS.indexOf("email")]).split("@")[1])) emailsPartial++;
    if (String(m[COLUMNS.indexOf("card_number")]).replace(/\D/g, "") === String(d[COLUMNS.indexOf("card_number")]).replace(/\D/g, "")) cardsLeaked++;
    if (examples.length < 3) examples.push(Object.fromEntries(COLUMNS.map((c, i) => [c, String(m[i])])));
  }
  return { compared, changed, emailsPartial, cardsLeaked, examples };
}
