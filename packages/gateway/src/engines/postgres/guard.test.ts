// Guardrail decisions on real parses and real Cedar policies (the policy file is written by the test).
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PolicyEngine } from "../../policy/engine.js";
import { initAnalyzer } from "./analysis/analyzer.js";
import { actionFor, checkSql, denialMessage, type GuardScope } from "./guard.js";

const POLICY = `
@id("all")
permit (principal, action, resource);
@id("no-ddl")
@reason("no DDL")
forbid (principal, action == Airlock::Action::"ddl", resource);
@id("no-unbounded-write")
@reason("needs WHERE")
forbid (principal, action in [Airlock::Action::"delete", Airlock::Action::"update"], resource) unless { context.statement.hasWhere };
@id("no-secrets-table")
@reason("secrets table")
forbid (principal, action, resource is Airlock::Table) when { resource.name == "secrets" };
@id("risky")
@effect("review")
@reason("risky")
forbid (principal, action, resource) when { !context.statement.risky.isEmpty() };
`;

let engine: PolicyEngine;
const scope: GuardScope = {
  principal: { subject: "alice", kind: "user", roles: ["user"], groups: ["developers"], tokenId: "t", expiresAt: new Date(Date.now() + 60_000), method: "admin" },
  connection: { name: "pg", type: "postgres", labels: { env: "test" } },
  database: "app",
  clientAddr: "127.0.0.1",
};

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-guard-"));
  await writeFile(join(dir, "p.cedar"), POLICY);
  const r = await PolicyEngine.fromDir(dir);
  expect(r.errors).toEqual([]);
  engine = r.engine;
  await initAnalyzer();
});

const decide = (sql: string) => checkSql(engine, scope, sql).map((v) => [v.decision, v.policyIds.join(",")]);

describe("checkSql", () => {
  it("allows reads and filtered writes, one verdict per statement", () => {
    expect(decide("select * from orders; delete from orders where id = 1")).toEqual([["allow", "all"], ["allow", "all"]]);
  });

  it("denies DDL and unfiltered writes however they are spelled", () => {
    for (const sql of ["DrOp TaBlE orders", "/* x */ DROP/**/TABLE orders", "-- c\nDROP TABLE orders", "create table t(x int)"]) {
      expect(decide(sql), sql).toEqual([["deny", "no-ddl"]]);
    }
    for (const sql of ["DELETE FROM orders", "update orders set x = 1 where true", "TRUNCATE orders", "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "PREPARE p AS DELETE FROM orders", "EXPLAIN ANALYZE DELETE FROM orders"]) {
      expect(decide(sql)[0], sql).toEqual(["deny", "no-unbounded-write"]);
    }
  });

  it("finds the denied statement inside a multi-statement string and dollar quotes", () => {
    expect(decide("SELECT $$;DROP TABLE x;$$; DROP TABLE orders").map((d) => d[0])).toEqual(["allow", "deny"]);
  });

  it("checks every table touched as a Table resource", () => {
    expect(decide("select * from orders join secrets on true")[0]).toEqual(["deny", "no-secrets-table"]);
    expect(decide("select * from public.secrets")[0]).toEqual(["deny", "no-secrets-table"]);
  });

  it("risky statements get review, unparsable text is denied with 42601", () => {
    expect(decide("select pg_read_file('/etc/passwd')")[0]![0]).toBe("review");
    const [v] = checkSql(engine, scope, "selec 1");
    expect(v!.decision).toBe("deny");
    expect(denialMessage(v!).sqlstate).toBe("42601");
  });

  it("names the rule and reason in the client's error", () => {
    const [v] = checkSql(engine, scope, "drop table orders");
    expect(denialMessage(v!)).toMatchObject({ sqlstate: "42501", message: "airlock: statement denied by policy no-ddl: no DDL" });
  });
});

describe("actionFor", () => {
  it("maps wrappers to what they wrap", () => {
    expect(actionFor({ kind: "truncate" })).toBe("delete");
    expect(actionFor({ kind: "explain", innerKind: "select" })).toBe("explain");
    expect(actionFor({ kind: "explain", innerKind: "update" })).toBe("update");
    expect(actionFor({ kind: "prepare", innerKind: "ddl" })).toBe("ddl");
    expect(actionFor({ kind: "do" })).toBe("utility");
    expect(actionFor({ kind: "config" })).toBe("utility");
  });
});
