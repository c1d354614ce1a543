// Real drivers through the Postgres front door (TLS, token as password):
// node-postgres, postgres.js and psql, on a real PostgreSQL behind an agent.
// What each driver sees must be what PostgreSQL itself would give it, except
// masked values (email column rule + content detectors).
import { once } from "node:events";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import Cursor from "pg-cursor";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, GUARDRAILS_CEDAR, startPgEnv, type PgEnv } from "./harness/pg.js";
import { eventually, psql } from "./harness/processes.js";

const MASKING = JSON.stringify({ columns: [{ match: "*email*", strategy: { type: "partial" } }] });
const SETUP = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
INSERT INTO customers SELECT g, 'Customer ' || g, 'user' || g || '@example.com' FROM generate_series(1, 100) g;
CREATE TABLE blobs (id serial PRIMARY KEY, b bytea NOT NULL);
CREATE TABLE items (id int PRIMARY KEY, note text);
`;

let env: PgEnv;
let token = "";

beforeAll(async () => {
  env = await startPgEnv({ name: "drivers", policy: { "policy.cedar": GUARDRAILS_CEDAR, "masking.json": MASKING }, setupSql: SETUP });
  token = await env.token("alice", ["developers"]);
});
afterAll(() => env?.close());

describe("node-postgres", () => {
  let c: pg.Client;
  beforeAll(async () => {
    c = await env.connect(token);
  });
  afterAll(() => c?.end());

  it("runs simple and parameterised queries, with masking", async () => {
    const simple = await c.query("SELECT id, email FROM customers WHERE id = 7");
    expect(simple.rows).toEqual([{ id: 7, email: "****@example.com" }]);
    const params = await c.query("SELECT $1::int + $2::int AS s, $3::text AS t", [40, 2, "plain text"]);
    expect(params.rows).toEqual([{ s: 42, t: "plain text" }]);
  });

  it("reuses a named prepared statement", async () => {
    for (const id of [3, 4, 5]) {
      const r = await c.query({ name: "by-id", text: "SELECT id, name, email FROM customers WHERE id = $1", values: [id] });
      expect(r.rows).toEqual([{ id, name: `Customer ${id}`, email: "****@example.com" }]);
    }
  });

  it("passes binary parameters (bytea Buffer, ints) intact", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const ins = await c.query("INSERT INTO blobs (b) VALUES ($1) RETURNING id, length(b) AS n", [bytes]);
    expect(ins.rows[0].n).toBe(256);
    const back = await c.query("SELECT b FROM blobs WHERE id = $1", [ins.rows[0].id]);
    expect(Buffer.compare(back.rows[0].b as Buffer, bytes)).toBe(0);
    const ints = await c.query("SELECT $1::int4 * $2::int8 AS p, $3::int2 AS small", [123456, 1000, -7]);
    expect(ints.rows).toEqual([{ p: "123456000", small: -7 }]);
  });

  it("rolls a transaction back", async () => {
    await c.query("BEGIN");
    await c.query("INSERT INTO items VALUES (1, 'gone')");
    expect((await c.query("SELECT count(*)::int AS n FROM items WHERE id = 1")).rows[0].n).toBe(1);
    await c.query("ROLLBACK");
    expect((await env.direct("SELECT count(*)::int AS n FROM items WHERE id = 1")).rows[0].n).toBe(0);
  });

  it("recovers from an error inside a transaction", async () => {
    await c.query("BEGIN");
    expect((await errorOf(c.query("SELECT 1 / 0"))).code).toBe("22012");
    expect((await errorOf(c.query("SELECT 1"))).code).toBe("25P02");
    expect((await errorOf(c.query("SELECT $1::int", [1]))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect((await c.query("SELECT 2 AS x")).rows).toEqual([{ x: 2 }]);
  });

  it("COPY FROM STDIN, then COPY TO STDOUT with masked emails", async () => {
    const rows = Array.from({ length: 500 }, (_, i) => `${1000 + i}\tname ${i}\tcopy${i}@example.org\n`).join("");
    await pipeline(Readable.from([rows]), c.query(copyFrom("COPY customers (id, name, email) FROM STDIN")));
    expect((await env.direct("SELECT count(*)::int AS n FROM customers WHERE id >= 1000")).rows[0].n).toBe(500);
    let out = "";
    await pipeline(
      c.query(copyTo("COPY (SELECT id, email FROM customers WHERE id >= 1000 ORDER BY id) TO STDOUT")),
      new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString()), cb()) }),
    );
    const lines = out.trimEnd().split("\n");
    expect(lines).toHaveLength(500);
    expect(lines[0]).toBe("1000\t****@example.org");
    expect(out).not.toMatch(/copy\d+@/);
  });

  it("delivers LISTEN/NOTIFY between two clients, payload masked", async () => {
    const listener = await env.connect(token);
    try {
      await listener.query("LISTEN airlock_e2e");
      const got = once(listener, "notification");
      await c.query("SELECT pg_notify('airlock_e2e', 'ping from bob@example.com')");
      const [n] = (await got) as [pg.Notification];
      expect(n.channel).toBe("airlock_e2e");
      expect(n.payload).toBe("ping from ****"); // content detection: the default strategy (redact)
    } finally {
      await listener.end();
    }
  });

  it("cancels a running query through the gateway's cancel routing (57014)", async () => {
    const t0 = performance.now();
    const q = c.query("SELECT pg_sleep(30) AS cancel_me");
    // Cancel only once the query runs: a cancel that arrives earlier is ignored, as in PostgreSQL.
    await eventually(async () => (await env.direct("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%AS cancel_me' AND state = 'active' AND pid <> pg_backend_pid()")).rows[0].n === 1);
    const canceller = new pg.Client(env.config(token));
    (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
    const err = await errorOf(q);
    const ms = performance.now() - t0;
    console.log(`cancel: pg_sleep(30) ended after ${ms.toFixed(0)} ms (${err.code} ${err.message})`);
    expect(err.code).toBe("57014");
    expect(ms).toBeLessThan(25_000); // the sleep did not run to its end
    expect((await c.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
  });

  it("streams a 1M-row result with a cursor, masked", async () => {
    const cur = c.query(new Cursor("SELECT g AS id, 'u' || g || '@example.net' AS email FROM generate_series(1, 1000000) g"));
    const t0 = performance.now();
    let n = 0;
    let unmasked = 0;
    for (;;) {
      const batch = (await cur.read(10_000)) as Array<{ id: number; email: string }>;
      if (batch.length === 0) break;
      for (const r of batch) if (r.email !== "****@example.net") unmasked++;
      n += batch.length;
    }
    const s = (performance.now() - t0) / 1000;
    await cur.close();
    console.log(`1M rows through the gateway (cursor, 10k per fetch, masked): ${s.toFixed(2)} s, ${Math.round(n / s)} rows/s`);
    expect(n).toBe(1_000_000);
    expect(unmasked).toBe(0);
  });

  it("answers a string of several statements with one result each", async () => {
    const r = (await c.query("SELECT 1 AS a; SELECT email FROM customers WHERE id = 1; SELECT 'x' AS b")) as unknown as pg.QueryResult[];
    expect(r.map((x) => x.rows)).toEqual([[{ a: 1 }], [{ email: "****@example.com" }], [{ b: "x" }]]);
  });
});

describe("postgres.js", () => {
  let sql: postgres.Sql;
  beforeAll(() => {
    sql = postgres(env.url(token), { ssl: { rejectUnauthorized: false }, max: 1, onnotice: () => {} });
  });
  afterAll(() => sql?.end({ timeout: 5 }));

  it("runs tagged queries (named statements, reused)", async () => {
    for (const id of [10, 11, 10]) {
      const rows = await sql`SELECT id, email, ${"p"}::text AS p FROM customers WHERE id = ${id}`;
      expect([...rows]).toEqual([{ id, email: "****@example.com", p: "p" }]);
    }
  });

  it("rolls back sql.begin when the callback throws", async () => {
    const err = await errorOf(
      sql.begin(async (tx) => {
        await tx`INSERT INTO items VALUES (2, 'rolled back')`;
        throw new Error("abort on purpose");
      }),
    );
    expect(err.message).toBe("abort on purpose");
    expect((await env.direct("SELECT count(*)::int AS n FROM items WHERE id = 2")).rows[0].n).toBe(0);
  });

  it("runs sql.unsafe with several statements", async () => {
    const r = (await sql.unsafe("SELECT 1 AS a; SELECT email FROM customers WHERE id = 2")) as unknown as Array<Array<Record<string, unknown>>>;
    expect(r.map((x) => [...x])).toEqual([[{ a: 1 }], [{ email: "****@example.com" }]]);
  });

  it("pipelines parallel queries on one connection", async () => {
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    const results = await Promise.all(ids.map((id) => sql`SELECT id, name, email FROM customers WHERE id = ${id}`));
    expect(results.map((r) => r[0])).toEqual(ids.map((id) => ({ id, name: `Customer ${id}`, email: "****@example.com" })));
  });
});

describe("psql", () => {
  it("runs -c queries", async () => {
    const r = await psql(env.url(token), ["-At", "-c", "SELECT id, email FROM customers WHERE id = 1", "-c", "SELECT count(*) FROM customers WHERE id <= 100"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("1|****@example.com\n100\n");
  });

  it("\\copy both ways", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-psql-"));
    const src = join(dir, "in.csv");
    const dst = join(dir, "out.csv");
    await writeFile(src, Array.from({ length: 50 }, (_, i) => `${2000 + i},psql ${i},p${i}@example.com`).join("\n") + "\n");
    const up = await psql(env.url(token), ["-c", `\\copy customers (id, name, email) from '${src}' csv`]);
    expect(up.stdout.trim()).toBe("COPY 50");
    const down = await psql(env.url(token), ["-c", `\\copy (SELECT id, email FROM customers WHERE id >= 2000 ORDER BY id) to '${dst}' csv`]);
    expect(down.code).toBe(0);
    const lines = (await readFile(dst, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(50);
    expect(lines[0]).toBe("2000,****@example.com");
  });

  it("stops a transaction script at the first error (ON_ERROR_STOP)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-psql-"));
    const file = join(dir, "script.sql");
    await writeFile(file, "BEGIN;\nINSERT INTO items VALUES (10, 'a');\nSELECT 1 / 0;\nINSERT INTO items VALUES (11, 'b');\nCOMMIT;\n");
    const r = await psql(env.url(token), ["-f", file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/division by zero/);
    expect((await env.direct("SELECT count(*)::int AS n FROM items WHERE id IN (10, 11)")).rows[0].n).toBe(0);
    // The same script without the error commits.
    await writeFile(file, "BEGIN;\nINSERT INTO items VALUES (10, 'a');\nINSERT INTO items VALUES (11, 'b');\nCOMMIT;\n");
    const ok = await psql(env.url(token), ["-q", "-f", file]);
    expect(ok.code).toBe(0);
    expect((await env.direct("SELECT count(*)::int AS n FROM items WHERE id IN (10, 11)")).rows[0].n).toBe(2);
  });
});
