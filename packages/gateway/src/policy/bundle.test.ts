// Bundles end to end on real Cedar WASM and the real masker: the examples and
// the CLI's demo bundle, reading directories, digests and every error path.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AirlockError } from "@airlock/shared";
import { initAnalyzer } from "../engines/postgres/analysis/analyzer.js";
import { checkSql } from "../engines/postgres/guard.js";
import { afterAll, describe, expect, it } from "vitest";
import { bundleDigest, compileBundle, MAX_FILE_BYTES, readBundle, readBundleDir, testBundle, type BundleFiles } from "./bundle.js";
import { PolicyEngine } from "./engine.js";
import { formatPolicyError, type PolicyRequest } from "./types.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const EXAMPLES = join(here, "../../../../policies/examples");
const DEMO = join(here, "../../../cli/policies/demo");
const tmpDirs: string[] = [];
afterAll(async () => { for (const d of tmpDirs) await rm(d, { recursive: true, force: true }); });

async function dirWith(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-bundle-"));
  tmpDirs.push(d);
  for (const [n, t] of Object.entries(files)) await writeFile(join(d, n), t);
  return d;
}

const permitAll = `@id("all") permit(principal, action, resource);\n`;
const req: PolicyRequest = {
  principal: { type: "User", id: "ann", groups: ["dev"] },
  action: "select",
  resource: { connection: "c1", database: "db" },
  context: { time: { hour: 9, weekday: 1 } },
};

async function errorsOf(files: BundleFiles) {
  const c = await compileBundle(files);
  expect(c.ok).toBe(false);
  return c.ok ? [] : c.errors;
}

describe("readBundle", () => {
  it("keeps bundle files, lists the rest as ignored, skips dot files", async () => {
    const d = await dirWith({ "a.cedar": permitAll, "masking.json": "{}", "x.tests.json": "[]", "README.md": "hi", ".hidden.cedar": "x", "notes.txt": "" });
    await mkdir(join(d, "sub"));
    const r = await readBundle(d);
    expect(Object.keys(r.files).sort()).toEqual(["a.cedar", "masking.json", "x.tests.json"]);
    expect(r.ignored).toEqual(["README.md", "notes.txt", "sub/"]);
    expect(await readBundleDir(d)).toEqual(r.files);
  });

  it("refuses oversized files and bundles with a clear error", async () => {
    const big = await dirWith({ "a.cedar": "/".repeat(MAX_FILE_BYTES + 1) });
    await expect(readBundle(big)).rejects.toThrow(/a\.cedar is 1048577 bytes; a bundle file may have at most 1048576/);
    const chunk = "/".repeat(MAX_FILE_BYTES - 10);
    const many = await dirWith({ "a.cedar": chunk, "b.cedar": chunk, "c.cedar": chunk, "d.cedar": chunk, "e.cedar": chunk });
    const err = await readBundle(many).catch((e: unknown) => e);
    expect(AirlockError.is(err, "INVALID_ARGUMENT")).toBe(true);
    expect((err as Error).message).toMatch(/holds more than 4194304 bytes of bundle files/);
    await expect(readBundle(join(big, "missing"))).rejects.toThrow(/cannot read policy bundle/);
  });
});

describe("bundleDigest", () => {
  it("ignores key order, sees every byte and the name/content boundary", () => {
    const d = bundleDigest({ "a.cedar": "x", "b.cedar": "y" });
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(bundleDigest({ "b.cedar": "y", "a.cedar": "x" })).toBe(d);
    expect(bundleDigest({ "a.cedar": "x", "b.cedar": "y " })).not.toBe(d);
    expect(bundleDigest({ ab: "c" })).not.toBe(bundleDigest({ a: "bc" }));
  });
});

describe("compileBundle", () => {
  it("compiles the examples and the demo bundle", async () => {
    for (const dir of [EXAMPLES, DEMO]) {
      const c = await compileBundle(await readBundleDir(dir));
      expect(c.ok ? [] : c.errors.map(formatPolicyError)).toEqual([]);
      if (!c.ok) continue;
      expect(c.policyIds.length).toBeGreaterThan(3);
      c.engine.dispose();
    }
    const demo = await compileBundle(await readBundleDir(DEMO));
    if (!demo.ok) throw new Error("demo bundle must compile");
    expect(demo.policyIds).toEqual(expect.arrayContaining(["demo-no-ddl", "demo-agents-select-only"]));
    expect(demo.masker.maskValue("public.customers.email", "ann@example.com")).toBe("****@example.com");
    const ddl = demo.engine.decide({ ...req, principal: { type: "User", id: "dev", groups: ["developers"] }, action: "ddl", resource: { connection: "demo-pg", database: "postgres" } });
    expect(ddl).toMatchObject({ decision: "deny", reasons: ["demo-no-ddl: DDL is not allowed on demo-pg"] });
    demo.engine.dispose();
  });

  it("reports Cedar errors with file:line:column", async () => {
    const errors = await errorsOf({ "ok.cedar": permitAll, "bad.cedar": `// c\n\npermit(principal, action, resource)\nwhen { 1 + };` });
    expect(errors.map(formatPolicyError)).toEqual([expect.stringMatching(/^bad\.cedar:4:12: .*unexpected token/)]);
  });

  it("reports masking.json syntax errors with line and column", async () => {
    const errors = await errorsOf({ "p.cedar": permitAll, "masking.json": `{\n  "detectors": {"email": true,}\n}` });
    expect(errors).toEqual([{ file: "masking.json", line: 2, column: 31, message: expect.stringMatching(/property name/) }]);
    const eof = await errorsOf({ "p.cedar": permitAll, "masking.json": `{"columns": [` });
    expect(eof[0]).toMatchObject({ file: "masking.json", line: 1, message: "unexpected end of JSON" });
  });

  it("rejects unknown keys, detectors, kinds and invalid strategies, pointing at each", async () => {
    const masking = [
      "{",
      `  "detector": {},`,
      `  "detectors": {"emial": false, "card": "yes"},`,
      `  "strategies": {"creditcard": {"type": "redact"}, "email": {"type": "mask"}},`,
      `  "defaultStrategy": {"type": "partial", "keep": -1},`,
      `  "columns": [`,
      `    {"match": "*email*", "strategy": {"type": "hash"}},`,
      `    {"match": "", "stratgy": {"type": "redact"}},`,
      `    {"match": "ssn", "strategy": {"type": "redact", "sameLength": 1}, "exemptGroups": "dba"}`,
      `  ],`,
      `  "$comment": "ignored"`,
      "}",
    ].join("\n");
    const errors = await errorsOf({ "p.cedar": permitAll, "masking.json": masking });
    expect(errors.map(formatPolicyError)).toEqual([
      expect.stringMatching(/^masking\.json:2:3: detector: unknown key; expected one of detectors, strategies/),
      expect.stringMatching(/^masking\.json:3:17: detectors\.emial: unknown detector "emial"; known: pem, jwt/),
      "masking.json:3:33: detectors.card: expected true or false",
      expect.stringMatching(/^masking\.json:4:18: strategies\.creditcard: unknown match kind "creditcard"; known: .*card/),
      `masking.json:4:62: strategies.email.type: unknown strategy "mask"; expected redact, partial or hash`,
      "masking.json:5:42: defaultStrategy.keep: expected a non-negative integer",
      // A missing key points at its parent.
      "masking.json:7:26: columns[0].strategy.key: hash needs a non-empty key",
      expect.stringMatching(/^masking\.json:8:19: columns\[1\]\.stratgy: unknown key; expected one of match, strategy, exemptGroups/),
      expect.stringMatching(/^masking\.json:8:6: columns\[1\]\.match: needs a column pattern/),
      "masking.json:8:5: columns[1].strategy: missing strategy",
      "masking.json:9:53: columns[2].strategy.sameLength: expected true or false",
      "masking.json:9:71: columns[2].exemptGroups: expected an array of group names",
    ]);
  });

  it("reports every problem at once: names, tests syntax, masking and Cedar", async () => {
    const errors = await errorsOf({
      "p.cedar": "permit(principal, action",
      "README.md": "hello",
      "x.tests.json": `[{"name": "a"}`,
      "y.tests.json": `{"name": "a"}`,
      "masking.json": "[]",
    });
    const files = errors.map((e) => e.file).sort();
    expect(files).toEqual(["README.md", "masking.json", "p.cedar", "x.tests.json", "y.tests.json"]);
    expect(errors.find((e) => e.file === "y.tests.json")?.message).toBe("expected a JSON array of test cases");
    expect(errors.find((e) => e.file === "masking.json")?.message).toBe("expected a JSON object");
  });

  it("refuses a bundle without policies and oversized files", async () => {
    expect(await errorsOf({ "masking.json": "{}" })).toEqual([{ file: "(bundle)", message: "no *.cedar policy files: every statement would be denied" }]);
    const big = await errorsOf({ "a.cedar": "/".repeat(MAX_FILE_BYTES + 1) });
    expect(big[0]?.message).toMatch(/1048577 bytes/);
  });
});

describe("testBundle", () => {
  it("runs every decision and mask case of the demo bundle", async () => {
    const files = await readBundleDir(DEMO);
    const n = 20;
    let t0 = 0;
    for (let i = -3; i < n; i++) {
      if (i === 0) t0 = performance.now(); // after 3 warm-up runs
      const c = await compileBundle(files);
      if (c.ok) c.engine.dispose();
    }
    console.log(`compileBundle(demo): ${((performance.now() - t0) / n).toFixed(1)} ms per compile (${n} runs, engines disposed)`);
    const r = await testBundle(files);
    expect(r.results.filter((x) => !x.pass).map((x) => `${x.name}: ${x.failure}`)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.results.filter((x) => x.result).length).toBeGreaterThanOrEqual(12);
    expect(r.results.filter((x) => x.masked !== undefined).length).toBeGreaterThanOrEqual(5);
  });

  it("passes the examples and reports failing cases with the reason", async () => {
    expect((await testBundle(await readBundleDir(EXAMPLES))).ok).toBe(true);
    const files = {
      "p.cedar": permitAll,
      "masking.json": `{"columns": [{"match": "email", "strategy": {"type": "redact"}}]}`,
      "t.tests.json": JSON.stringify([
        { name: "allowed", request: req, expect: "allow", policies: ["all"] },
        { name: "wrong", request: req, expect: "deny" },
        { name: "masked", mask: { column: "email", value: "a@b.io" }, expect: "****" },
        { name: "not masked", mask: { column: "email", value: "a@b.io" }, expect: "a@b.io" },
        { name: "broken" },
      ]),
    };
    const r = await testBundle(files);
    expect(r).toMatchObject({ ok: false, passed: 2, failed: 3 });
    expect(r.results.map((x) => [x.name, x.pass])).toEqual([["allowed", true], ["wrong", false], ["masked", true], ["not masked", false], ["broken", false]]);
    expect(r.results[1]?.failure).toMatch(/^expected deny, got allow/);
    expect(r.results[3]?.failure).toBe(`expected "a@b.io", got "****"`);
  });

  it("runs no case when the bundle does not compile", async () => {
    const r = await testBundle({ "p.cedar": "nope", "t.tests.json": "[]" });
    expect(r.ok).toBe(false);
    expect(r.results).toEqual([]);
    expect(r.loadErrors[0]?.file).toBe("p.cedar");
  });
});

describe("the demo bundle on real SQL (analyser + guard)", () => {
  // [groups, sql, decision, deciding policy]: what `airlock dev` users will see.
  const cases: Array<[string, string, "allow" | "deny", string]> = [
    ["developers", "select * from customers", "allow", "demo-developers"],
    ["developers", "update customers set city = 'x' where id = 1", "allow", "demo-developers"],
    ["developers", "update customers set city = 'x'", "deny", "demo-no-unbounded-write"],
    ["developers", "delete from customers", "deny", "demo-no-unbounded-write"],
    ["developers", "truncate customers", "deny", "demo-no-unbounded-write"],
    ["developers", "create table t (a int)", "deny", "demo-no-ddl"],
    ["developers", "copy customers to program 'cat'", "deny", "demo-no-server-access"],
    ["developers", "select pg_read_file('/etc/passwd')", "deny", "demo-no-server-access"],
    ["developers", "select * from dblink('host=x', 'select 1') as t(a int)", "deny", "demo-no-server-access"],
    ["developers", "load 'plugin'", "deny", "demo-no-server-access"],
    ["developers", "alter system set work_mem = '1MB'", "deny", "demo-no-privilege-change"],
    ["developers", "set role postgres", "deny", "demo-no-privilege-change"],
    ["developers", "do $$ begin end $$", "deny", "demo-no-hidden-sql"],
    ["developers", "execute stmt1", "deny", "demo-no-hidden-sql"],
    ["developers", "select * from pg_catalog.pg_authid", "deny", "demo-no-password-hashes"],
    ["developers", "set search_path = public", "allow", "demo-developers"],
    ["ai-agents", "select * from customers", "allow", "demo-agents-read"],
    ["ai-agents", "begin", "allow", "demo-agents-read"],
    ["ai-agents", "insert into customers (id) values (1)", "deny", "demo-agents-select-only"],
    ["ai-agents", "explain analyze delete from customers where id = 1", "deny", "demo-agents-select-only"],
    ["dba", "create index on customers (city)", "deny", "demo-no-ddl"],
  ];

  it("allows and denies what the bundle says", async () => {
    await initAnalyzer();
    const c = await compileBundle(await readBundleDir(DEMO));
    if (!c.ok) throw new Error(c.errors.map(formatPolicyError).join("\n"));
    const scope = (groups: string[]) => ({
      principal: { subject: "dev", kind: "user" as const, roles: [], groups, tokenId: "t", expiresAt: new Date(), method: "admin" as const },
      connection: { name: "demo-pg", type: "postgres", labels: { env: "demo" } },
      database: "postgres",
      clientAddr: "127.0.0.1",
    });
    const got = cases.map(([group, sql, , policy]) => {
      const v = checkSql(c.engine, scope([group]), sql)[0]!;
      // Several forbids may fire together; the expected one must be among them.
      return [group, sql, v.decision, v.policyIds.includes(policy) ? policy : v.policyIds.join(",")];
    });
    expect(got).toEqual(cases);
    c.engine.dispose();
  });
});

describe("engine lifecycle", () => {
  it("a disposed engine denies and its WASM slots serve the next engine", async () => {
    const a = PolicyEngine.fromFiles({ "p.cedar": permitAll }).engine;
    expect(a.decide(req).decision).toBe("allow");
    a.dispose();
    expect(a.decide(req).decision).toBe("deny");
    expect(a.reloadFiles({ "p.cedar": permitAll }).ok).toBe(false);
    const b = PolicyEngine.fromFiles({ "p.cedar": `@id("f") forbid(principal, action, resource);\n${permitAll}` }).engine;
    expect(b.decide(req)).toMatchObject({ decision: "deny", policyIds: ["f"] });
    expect(a.decide(req).reasons).toEqual(["no policies loaded (fail closed)"]);
    b.dispose();
  });

  it("the examples still load from their directory", async () => {
    const files = await readBundleDir(EXAMPLES);
    expect(Object.keys(files)).toContain("examples.tests.json");
    expect(files["roles.cedar"]).toBe(await readFile(join(EXAMPLES, "roles.cedar"), "utf8"));
  });
});
