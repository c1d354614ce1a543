// The statements table of `airlock sessions show`. The command itself runs
// against the real session routes in packages/gateway/src/api/routes-sessions.test.ts.
import { describe, expect, it } from "vitest";
import { statementsTable, type StatementView } from "./user.js";

const view = (seq: number, over: Partial<StatementView> = {}): StatementView => ({
  id: `id-${seq}`, seq, text: `SELECT ${seq}`, kind: "select", command: "SELECT", objects: [], decision: "allow", rule: null, reason: null,
  status: "ok", startedAt: "2025-06-01T09:08:07.065Z", durationMs: 1.234, rows: "3", commandTag: "SELECT 3", masked: 0, errorCode: null, error: null, ...over,
});

describe("statementsTable", () => {
  const long = `SELECT ${"col, ".repeat(80)}x\nFROM   t`;
  const rows = [view(1, { text: long }), view(2, { decision: "deny", rule: "no-ddl", status: "denied", kind: "ddl", text: "DROP TABLE t", rows: null, durationMs: null }), view(3, { decision: "review", durationMs: 15.6 })];

  it("prints one aligned line per statement: UTC time, DENY with its rule, rows, ms", () => {
    const lines = statementsTable(rows).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^SEQ\s+TIME\s+DECISION\s+STATUS\s+KIND\s+ROWS\s+MS\s+RULE\s+STATEMENT$/);
    expect(lines[1]).toMatch(/^1\s+09:08:07\.065\s+allow\s+ok\s+select\s+3\s+1\.23\s+SELECT col, /);
    expect(lines[2]).toMatch(/^2\s+09:08:07\.065\s+DENY\s+denied\s+ddl\s+-\s+-\s+no-ddl\s+DROP TABLE t$/);
    expect(lines[3]).toMatch(/^3\s+.*\breview\s+ok\s+select\s+3\s+16\s+SELECT 3$/);
    // Columns line up: every statement text starts where the header's STATEMENT does.
    const at = lines[0]!.indexOf("STATEMENT");
    expect(lines.slice(1).map((l) => l.slice(at, at + 4))).toEqual(["SELE", "DROP", "SELE"]);
    expect(lines).toHaveLength(4);
  });

  it("cuts texts to one line of 120 characters, or to the terminal width", () => {
    const text120 = (out: string) => out.split("\n")[1]!.slice(out.indexOf("STATEMENT"));
    const cut = text120(statementsTable(rows));
    expect(cut).toHaveLength(120);
    expect(cut.endsWith("…")).toBe(true);
    expect(cut).not.toMatch(/\n/);
    const narrow = statementsTable(rows, { width: 100 }).split("\n")[1]!;
    expect(narrow).toHaveLength(100);
  });

  it("--full prints each text whole and verbatim under its row", () => {
    const out = statementsTable(rows, { full: true });
    expect(out).toContain(`    SELECT ${"col, ".repeat(80)}x\n    FROM   t\n`);
    expect(out).toContain("\n    DROP TABLE t\n");
  });
});
