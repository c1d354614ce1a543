// Statement guardrails through the front door, under a no-DDL +
// no-unfiltered-DELETE/UPDATE policy: evasion attempts are denied (42501,
// naming the rule), a denied statement behaves exactly like a statement that
// failed on the server at the same position (pipelines, implicit and explicit
// transactions), every denial is recorded, and connect-time refusals carry
// the right SQLSTATE.
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, GUARDRAILS_CEDAR, PG_PORT, startPgEnv, type PgEnv } from "./harness/pg.js";
import { fields, plainLogin, readyStatus, wire, wireLogin, type BackendMsg, type WireConn } from "./harness/pg-wire.js";
import { eventually, psql } from "./harness/processes.js";

const POLICY =
  GUARDRAILS_CEDAR +
  `
@id("no-do-blocks")
@reason("DO blocks are opaque to the guardrails")
forbid (principal, action, resource) when { context.statement.risky.contains("do_block") };

@id("locked-no-execute")
@reason("locked users may not run prepared statements by name")
forbid (principal in Airlock::Group::"locked", action, resource) when { context.statement.risky.contains("execute_prepared") };

@id("contractors-no-connect")
@reason("contractors may not connect")
forbid (principal in Airlock::Group::"contractors", action == Airlock::Action::"connect", resource);
`;
const SETUP = "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 10) g;";

let env: PgEnv;
let token = "";
let c: pg.Client;

const rowsOfT = async () => (await env.direct("SELECT count(*)::int AS n FROM t")).rows[0].n as number;
const tableExists = async () => (await env.direct("SELECT to_regclass('public.t') IS NOT NULL AS ok")).rows[0].ok as boolean;
const types = (msgs: BackendMsg[]) => msgs.map((m) => m.type).join("");

beforeAll(async () => {
  env = await startPgEnv({ name: "guardrails", policy: { "policy.cedar": POLICY }, setupSql: SETUP });
  token = await env.token("alice", ["developers"]);
  c = await env.connect(token);
});
afterAll(async () => {
  await c?.end().catch(() => {});
  await env?.close();
});

describe("evasion attempts", () => {
  const cases: Array<[string, string, string]> = [
    ["mixed case", "DrOp TaBlE t", "no-ddl"],
    ["block comments", "/* x */ DROP/**/TABLE t", "no-ddl"],
    ["line comment first", "-- c\nDROP TABLE t", "no-ddl"],
    ["dollar quoting", "SELECT $$;$$; DROP TABLE t", "no-ddl"],
    ["quoted identifier", 'DROP TABLE "t"', "no-ddl"],
    ["CTE wrapping DELETE", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "no-unbounded-write"],
    ["constant-true WHERE", "DELETE FROM t WHERE true", "no-unbounded-write"],
    ["UPDATE without WHERE", "UPDATE t SET v = 'x'", "no-unbounded-write"],
    ["TRUNCATE", "TRUNCATE t", "no-unbounded-write"],
    ["PREPARE of a DELETE", "PREPARE p AS DELETE FROM t", "no-unbounded-write"],
    ["EXPLAIN ANALYZE of a DELETE", "EXPLAIN ANALYZE DELETE FROM t", "no-unbounded-write"],
    ["DO block", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", "no-do-blocks"],
    ["schema-qualified", "DROP TABLE public.t", "no-ddl"],
    ["ALTER", "ALTER TABLE t ADD COLUMN z int", "no-ddl"],
  ];
  it.each(cases)("%s is denied with 42501 naming the rule", async (_name, sql, rule) => {
    const err = await errorOf(c.query(sql));
    expect(err.code).toBe("42501");
    expect(err.message).toContain(rule);
    expect(await tableExists()).toBe(true);
    expect(await rowsOfT()).toBe(10);
  });

  it("EXECUTE of the denied PREPARE finds nothing prepared", async () => {
    await errorOf(c.query("PREPARE p2 AS DELETE FROM t"));
    expect((await errorOf(c.query("EXECUTE p2"))).code).toBe("26000");
    expect(await rowsOfT()).toBe(10);
  });

  it("extended protocol: Parse of a DROP (node-postgres named statement and postgres.js) is denied", async () => {
    const err = await errorOf(c.query({ name: "drop-it", text: "DROP TABLE t" }));
    expect(err.code).toBe("42501");
    expect(err.message).toContain("no-ddl");
    const sql = postgres(env.url(token), { ssl: { rejectUnauthorized: false }, max: 1 });
    try {
      const e2 = await errorOf(sql`DROP TABLE t`); // tagged queries always use Parse/Bind/Execute
      expect((e2 as { code?: string }).code).toBe("42501");
      expect([...(await sql`SELECT count(*)::int AS n FROM t`)]).toEqual([{ n: 10 }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    expect(await tableExists()).toBe(true);
  });

  it("protocol Bind of a SQL-PREPAREd statement is checked as an EXECUTE of it", async () => {
    const run = async (t: string) => {
      const { conn } = await wireLogin(env.pgPort, t, env.connection);
      try {
        conn.send(wire.query("PREPARE q AS SELECT count(*) FROM t"));
        expect(types(await conn.untilReady())).toBe("CZ");
        conn.send(Buffer.concat([wire.bind([], [], "q"), wire.execute(), wire.sync()]));
        return await conn.untilReady();
      } finally {
        conn.close();
      }
    };
    expect(types(await run(token))).toBe("2DCZ");
    const denied = await run(await env.token("lou", ["locked"]));
    expect(types(denied)).toBe("EZ");
    expect(fields(denied[0]!)).toMatchObject({ C: "42501" });
    expect(fields(denied[0]!).M).toContain("locked-no-execute");
  });

  it("unparsable SQL is denied with 42601, in both protocols", async () => {
    const a = await errorOf(c.query("SELEC 1"));
    expect(a.code).toBe("42601");
    expect(a.message).toMatch(/could not be parsed/);
    const b = await errorOf(c.query("SELECT FROM WHERE $1", [1]));
    expect(b.code).toBe("42601");
    expect((await c.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
  });
});

describe("a denied statement behaves like one that failed on the server", () => {
  it("multi-statement string: earlier results delivered, nothing after runs, implicit transaction rolled back", async () => {
    const r = await psql(env.url(token), ["-c", "SELECT 1 AS first; DROP TABLE t; SELECT 2 AS third"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/first\s*\n-+\n\s*1\n\(1 row\)/);
    expect(r.stdout).not.toMatch(/third/);
    expect(r.stderr).toMatch(/ERROR: {2}airlock: statement denied by policy no-ddl/);
    // The same string with a statement that fails on the server, for comparison.
    const ref = await psql(`postgresql://postgres@127.0.0.1:${PG_PORT}/${env.database}`, ["-c", "SELECT 1 AS first; SELECT 1/0; SELECT 2 AS third"]);
    expect(r.stdout).toBe(ref.stdout);
    expect(r.code).toBe(ref.code);

    const err = await errorOf(c.query("INSERT INTO t VALUES (100, 'x'); DROP TABLE t; INSERT INTO t VALUES (101, 'y')"));
    expect(err.code).toBe("42501");
    expect((await env.direct("SELECT count(*)::int AS n FROM t WHERE id >= 100")).rows[0].n).toBe(0);
    expect(await tableExists()).toBe(true);
  });

  it("a trailing line comment cannot swallow the statement separator", async () => {
    const err = await errorOf(c.query("SELECT 1 -- note\n; DROP TABLE t"));
    expect(err.code).toBe("42501");
  });

  it("pipeline with one Sync, statement 2 of 3 denied: same messages as a server-side failure, nothing committed", async () => {
    const pipelineOf = (second: string) =>
      Buffer.concat([
        ...["INSERT INTO t VALUES (200, 'p1')", second, "INSERT INTO t VALUES (201, 'p3')"].flatMap((q) => [wire.parse(q), wire.bind(), wire.execute()]),
        wire.sync(),
      ]);
    const { conn } = await wireLogin(env.pgPort, token, env.connection);
    let ref: WireConn | null = null;
    try {
      conn.send(pipelineOf("DROP TABLE t"));
      const got = await conn.untilReady();
      ref = await plainLogin(PG_PORT, "postgres", env.database);
      // The gateway denies at Parse, so compare with a statement that fails at Parse on the server.
      ref.send(pipelineOf("SELECT * FROM no_such_table"));
      const want = await ref.untilReady();
      expect(types(got)).toBe(types(want)); // 1 2 C (stmt 1), E (stmt 2), Z
      expect(types(got)).toBe("12CEZ");
      const e = fields(got.find((m) => m.type === "E")!);
      expect(e.C).toBe("42501");
      expect(e.M).toContain("no-ddl");
      expect(readyStatus(got)).toBe("I");
      expect((await env.direct("SELECT count(*)::int AS n FROM t WHERE id >= 200")).rows[0].n).toBe(0);
      // The session goes on.
      conn.send(wire.query("SELECT 7"));
      expect(types(await conn.untilReady())).toBe("TDCZ");
    } finally {
      conn.close();
      ref?.close();
    }
  });

  it("pipelined queries with their own Syncs (postgres.js): 1 and 3 run, 2 is denied", async () => {
    const sql = postgres(env.url(token), { ssl: { rejectUnauthorized: false }, max: 1 });
    try {
      const [a, b, d] = await Promise.allSettled([sql`INSERT INTO t VALUES (210, 'a')`, sql.unsafe("DROP TABLE t", [], { prepare: true }), sql`INSERT INTO t VALUES (211, 'c')`]);
      expect(a.status).toBe("fulfilled");
      expect(b.status === "rejected" && (b.reason as { code?: string }).code).toBe("42501");
      expect(d.status).toBe("fulfilled");
      expect((await env.direct("SELECT array_agg(id ORDER BY id) AS ids FROM t WHERE id >= 210")).rows[0].ids).toEqual([210, 211]);
    } finally {
      await sql.end({ timeout: 5 });
      await env.direct("DELETE FROM t WHERE id >= 210");
    }
  });

  it("inside BEGIN: the transaction fails (ReadyForQuery E), ROLLBACK works, the session stays usable", async () => {
    const { conn } = await wireLogin(env.pgPort, token, env.connection);
    const q = async (sql: string) => {
      conn.send(wire.query(sql));
      return conn.untilReady();
    };
    try {
      expect(readyStatus(await q("BEGIN"))).toBe("T");
      expect(readyStatus(await q("INSERT INTO t VALUES (300, 'in tx')"))).toBe("T");
      const denied = await q("DROP TABLE t");
      expect(types(denied)).toBe("EZ");
      expect(fields(denied[0]!).C).toBe("42501");
      expect(readyStatus(denied)).toBe("E");
      const next = await q("SELECT 1");
      expect(fields(next[0]!).C).toBe("25P02");
      expect(readyStatus(await q("ROLLBACK"))).toBe("I");
      expect((await env.direct("SELECT count(*)::int AS n FROM t WHERE id = 300")).rows[0].n).toBe(0);
      // The same through the extended protocol.
      await q("BEGIN");
      conn.send(Buffer.concat([wire.parse("DROP TABLE t"), wire.bind(), wire.execute(), wire.sync()]));
      const ext = await conn.untilReady();
      expect(types(ext)).toBe("EZ");
      expect(readyStatus(ext)).toBe("E");
      expect(readyStatus(await q("ROLLBACK"))).toBe("I");
      expect(types(await q("SELECT count(*) FROM t"))).toBe("TDCZ");
    } finally {
      conn.close();
    }
  });
});

describe("records and connect-time refusals", () => {
  it("records every denial with its rule (GET /sessions/:id)", async () => {
    const t = await env.token("auditee", ["developers"]);
    const a = await env.connect(t);
    await a.query("SELECT 1");
    await errorOf(a.query("DROP TABLE t"));
    await errorOf(a.query("SELECT 1; UPDATE t SET v = 'z'; SELECT 3"));
    await errorOf(a.query("SELEC 1"));
    await a.end();
    const [session] = await eventually(async () => {
      const s = await env.sessions("auditee");
      return s.length && s[0]!.endedAt ? s : null;
    });
    const st = await eventually(async () => {
      const list = await env.statements(session!.id);
      return list.length === 6 && list.every((x) => x.status !== "pending") ? list : null;
    });
    expect(st.map((x) => [x.decision, x.rule, x.status])).toEqual([
      ["allow", "everyone", "ok"],
      ["deny", "no-ddl", "denied"],
      ["allow", "everyone", "ok"],
      ["deny", "no-unbounded-write", "denied"],
      ["allow", "everyone", "skipped"],
      ["deny", null, "denied"],
    ]);
    expect(st[1]!.text).toBe("DROP TABLE t");
    expect(st[5]!.kind).toBe("unparsable");
  });

  it("refuses a principal the policy does not let connect: FATAL 42501", async () => {
    const t = await env.token("carol", ["contractors"]);
    const err = await errorOf(env.connect(t));
    expect(err.code).toBe("42501");
    expect(err.severity).toBe("FATAL");
    expect(err.message).toContain("contractors-no-connect");
  });

  it("requires TLS (28000), a valid token (28P01) and a known connection (3D000)", async () => {
    const plain = new pg.Client({ ...env.config(token), ssl: false });
    expect((await errorOf(plain.connect())).code).toBe("28000");
    expect((await errorOf(env.connect("alk_at_not-a-real-token"))).code).toBe("28P01");
    expect((await errorOf(env.connect(token, { connection: "no-such-connection" }))).code).toBe("3D000");
    const r = await psql(env.url(token, { sslmode: "disable" }), ["-c", "SELECT 1"]);
    expect(r.stderr).toMatch(/TLS is required/);
  });
});
