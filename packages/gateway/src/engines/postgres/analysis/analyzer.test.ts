// Real parser, no mocks: every expectation here is what Postgres 18's grammar produces.
import { beforeAll, describe, expect, it } from "vitest";
import { analyze, analyzeSync, initAnalyzer, SqlAnalysisError, type StatementFacts } from "./index.js";

beforeAll(() => initAnalyzer());

const one = (sql: string): StatementFacts => {
  const facts = analyzeSync(sql);
  expect(facts).toHaveLength(1);
  return facts[0]!;
};
const names = (q: readonly { schema?: string; name: string }[]) => q.map((x) => (x.schema ? `${x.schema}.${x.name}` : x.name)).sort();

describe("kinds and commands", () => {
  it.each([
    ["SELECT * FROM t", "select", "SELECT"],
    ["VALUES (1)", "select", "SELECT"],
    ["INSERT INTO t VALUES (1)", "insert", "INSERT"],
    ["UPDATE t SET a = 1 WHERE id = 2", "update", "UPDATE"],
    ["DELETE FROM t WHERE id = 1", "delete", "DELETE"],
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "merge", "MERGE"],
    ["TRUNCATE t", "truncate", "TRUNCATE"],
    ["COPY t TO STDOUT", "copy", "COPY"],
    ["CALL p(1)", "call", "CALL"],
    ["DO $$BEGIN END$$", "do", "DO"],
    ["EXPLAIN SELECT 1", "explain", "EXPLAIN"],
    ["EXPLAIN ANALYZE SELECT 1", "explain", "EXPLAIN ANALYZE"],
    ["PREPARE q AS SELECT 1", "prepare", "PREPARE"],
    ["EXECUTE q", "execute", "EXECUTE"],
    ["CREATE TABLE t (a int)", "ddl", "CREATE TABLE"],
    ["CREATE INDEX i ON t (a)", "ddl", "CREATE INDEX"],
    ["DROP TABLE t", "ddl", "DROP TABLE"],
    ["DROP MATERIALIZED VIEW m", "ddl", "DROP MATERIALIZED VIEW"],
    ["ALTER TABLE t ADD COLUMN b int", "ddl", "ALTER TABLE"],
    ["CREATE TABLE n AS SELECT * FROM t", "ddl", "CREATE TABLE AS"],
    ["SELECT * INTO n FROM t", "ddl", "SELECT INTO"],
    ["GRANT SELECT ON t TO u", "dcl", "GRANT"],
    ["REVOKE SELECT ON t FROM u", "dcl", "REVOKE"],
    ["CREATE ROLE r", "dcl", "CREATE ROLE"],
    ["BEGIN", "tcl", "BEGIN"],
    ["COMMIT", "tcl", "COMMIT"],
    ["ROLLBACK TO SAVEPOINT s", "tcl", "ROLLBACK TO SAVEPOINT"],
    ["SET search_path = x", "config", "SET"],
    ["RESET ALL", "config", "RESET"],
    ["SHOW work_mem", "config", "SHOW"],
    ["VACUUM t", "utility", "VACUUM"],
    ["LISTEN c", "utility", "LISTEN"],
  ])("%s -> %s / %s", (sql, kind, command) => {
    const f = one(sql);
    expect(f.kind).toBe(kind);
    expect(f.command).toBe(command);
  });
});

describe("tables", () => {
  it("mixed case and comments", () => {
    const f = one("DrOp/* x */TABLE t");
    expect([f.kind, f.command]).toEqual(["ddl", "DROP TABLE"]);
    expect(f.writes).toEqual([{ name: "t" }]);
  });

  it("dollar-quoted text is data, not SQL", () => {
    const f = one("SELECT $$DROP TABLE x$$");
    expect(f.kind).toBe("select");
    expect(f.reads).toEqual([]);
    expect(f.writes).toEqual([]);
  });

  it("DELETE inside a CTE writes and has no WHERE; the CTE name is not a table", () => {
    const f = one("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d");
    expect(f.kind).toBe("select");
    expect(f.writes).toEqual([{ name: "t" }]);
    expect(f.reads).toEqual([]);
    expect(f.hasWhere).toBe(false);
  });

  it("a non-recursive CTE does not shadow a later-defined name in earlier CTEs", () => {
    const f = one("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b");
    expect(names(f.reads)).toEqual(["b"]); // the real table b, read by CTE a
  });

  it("a RECURSIVE CTE may reference itself without counting as a table", () => {
    const f = one("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r, base");
    expect(f.reads).toEqual([{ name: "base" }]);
  });

  it("GRANT targets and CREATE FOREIGN TABLE are writes", () => {
    expect(one("GRANT SELECT ON s.t TO u").writes).toEqual([{ schema: "s", name: "t" }]);
    expect(one("CREATE FOREIGN TABLE f (a int) SERVER srv").writes).toEqual([{ name: "f" }]);
  });

  it("joins, subqueries, schema-qualified and quoted names", () => {
    const f = one(`SELECT * FROM s1.a JOIN "Weird Name" w ON true WHERE x IN (SELECT y FROM "S"."T") AND EXISTS (SELECT 1 FROM c)`);
    expect(names(f.reads)).toEqual(["S.T", "Weird Name", "c", "s1.a"]);
    expect(f.reads).toContainEqual({ schema: "s1", name: "a" });
  });

  it("UPDATE ... FROM reads the FROM tables and writes the target", () => {
    const f = one("UPDATE app.t SET a = s.a FROM s JOIN u ON true WHERE t.id = s.id");
    expect(f.writes).toEqual([{ schema: "app", name: "t" }]);
    expect(names(f.reads)).toEqual(["s", "u"]);
    expect(f.hasWhere).toBe(true);
  });

  it("DELETE ... USING", () => {
    const f = one("DELETE FROM t USING u WHERE t.id = u.id");
    expect(f.writes).toEqual([{ name: "t" }]);
    expect(f.reads).toEqual([{ name: "u" }]);
  });

  it("MERGE writes the target and reads the source", () => {
    const f = one("MERGE INTO t USING (SELECT * FROM s) x ON t.id = x.id WHEN MATCHED THEN UPDATE SET a = x.a WHEN NOT MATCHED THEN INSERT VALUES (x.id)");
    expect(f.writes).toEqual([{ name: "t" }]);
    expect(f.reads).toEqual([{ name: "s" }]);
  });

  it("INSERT ... SELECT reads and writes", () => {
    const f = one("INSERT INTO a.t (x) SELECT x FROM b.u");
    expect(f.writes).toEqual([{ schema: "a", name: "t" }]);
    expect(f.reads).toEqual([{ schema: "b", name: "u" }]);
  });

  it("DDL targets are writes; view bodies and FK references are reads", () => {
    expect(names(one("DROP TABLE a.b, c").writes)).toEqual(["a.b", "c"]);
    const v = one("CREATE VIEW v AS SELECT * FROM t");
    expect([v.writes, v.reads]).toEqual([[{ name: "v" }], [{ name: "t" }]]);
    const c = one("CREATE TABLE c (id int REFERENCES p(id))");
    expect([c.writes, c.reads]).toEqual([[{ name: "c" }], [{ name: "p" }]]);
    expect(one("TRUNCATE a, b").writes).toHaveLength(2);
    expect(one("COPY t FROM STDIN").writes).toEqual([{ name: "t" }]);
    expect(one("COPY t TO STDOUT").reads).toEqual([{ name: "t" }]);
  });
});

describe("where, functions, parameters", () => {
  it.each([
    ["DELETE FROM t", false],
    ["DELETE FROM t WHERE true", false],
    ["DELETE FROM t WHERE 1=1", false],
    ["UPDATE t SET a = 1 WHERE 'yes'::bool", false],
    ["DELETE FROM t WHERE 1 = 1 AND TRUE", false],
    ["DELETE FROM t WHERE id = 3 OR 1=1", false],
    ["DELETE FROM t WHERE NOT false", false],
    ["DELETE FROM t WHERE 1 <> 2", false],
    ["DELETE FROM t WHERE id = 3", true],
    ["DELETE FROM t WHERE false", true],
    ["DELETE FROM t WHERE id = 3 AND 1=1", true],
  ])("%s -> hasWhere %s", (sql, expected) => {
    expect(one(sql).hasWhere).toBe(expected);
  });

  it("hasWhere is undefined when there is no UPDATE/DELETE", () => {
    expect(one("SELECT 1").hasWhere).toBeUndefined();
    expect(one("EXPLAIN ANALYZE DELETE FROM t").hasWhere).toBe(false);
  });

  it("functions are lower-cased and qualified", () => {
    expect(one("SELECT Lower(x), PG_CATALOG.now(), \"MyFn\"() FROM t").functions).toEqual(["lower", "myfn", "pg_catalog.now"]);
  });

  it("parameters in extended-protocol SQL", () => {
    expect(one("SELECT * FROM t WHERE a = $1 AND b = $2").parameterCount).toBe(2);
    expect(one("SELECT $3").parameterCount).toBe(3);
    expect(one("SELECT 1").parameterCount).toBe(0);
  });
});

describe("risk flags", () => {
  it.each([
    ["COPY t FROM PROGRAM 'curl evil'", "copy_program"],
    ["COPY t TO '/tmp/out'", "copy_server_file"],
    ["SELECT * FROM t WHERE x = (SELECT pg_read_file('/etc/passwd'))", "server_file_function"],
    ["SELECT lo_import('/etc/passwd')", "server_file_function"],
    ["SELECT pg_catalog.pg_ls_dir('.')", "server_file_function"],
    ["ALTER SYSTEM SET work_mem = '1GB'", "alter_system"],
    ["SET ROLE postgres", "set_role"],
    ["SET LOCAL ROLE postgres", "set_role"],
    ["SET SESSION AUTHORIZATION postgres", "set_session_authorization"],
    ["SELECT * FROM dblink('host=x', 'select 1') AS r(a int)", "dblink"],
    ["EXECUTE q(1, 2)", "execute_prepared"],
    ["DO $$BEGIN PERFORM 1; END$$", "do_block"],
    ["SELECT set_config('role', 'postgres', false)", "set_config"],
    ["SELECT pg_terminate_backend(1)", "admin_function"],
    ["LOAD 'evil'", "load_library"],
  ])("%s -> %s", (sql, flag) => {
    expect(one(sql).risky).toContain(flag);
  });

  it("COPY to the client is not risky", () => {
    expect(one("COPY t TO STDOUT").risky).toEqual([]);
    expect(one("SELECT * FROM t").risky).toEqual([]);
  });
});

describe("multi-statement text and errors", () => {
  it("splits statements with their own text slices", () => {
    const f = analyzeSync("SELECT 1; DROP TABLE t");
    expect(f.map((x) => [x.kind, x.text])).toEqual([["select", "SELECT 1"], ["ddl", "DROP TABLE t"]]);
  });

  it("slices by UTF-8 byte offsets correctly with non-ASCII text", () => {
    const f = analyzeSync("SELECT 'é☃'; DELETE FROM \"tä\"");
    expect(f.map((x) => x.text)).toEqual(["SELECT 'é☃'", 'DELETE FROM "tä"']);
    expect(f[1]!.writes).toEqual([{ name: "tä" }]);
  });

  it("empty and comment-only input has no statements", () => {
    expect(analyzeSync("")).toEqual([]);
    expect(analyzeSync("  -- nothing\n")).toEqual([]);
  });

  it("syntax error -> SqlAnalysisError with message and cursor position", async () => {
    const err = await analyze("SELECT 1; SELEC 2").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SqlAnalysisError);
    expect((err as SqlAnalysisError).message).toMatch(/syntax error at or near "SELEC"/);
    expect((err as SqlAnalysisError).cursorPosition).toBe(10);
  });

  it("embedded NUL is rejected (the parser would only see a prefix)", () => {
    expect(() => analyzeSync("SELECT 1\0; DROP TABLE t")).toThrow(SqlAnalysisError);
  });
});
