import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { formatPolicyError, type PolicyError } from "@airlock/gateway/policy/types";
import { ApiError } from "../client.js";
import { apiFor, globals, print } from "../context.js";
import { ago, table } from "../output.js";

/**
 * The demo bundle shipped with the CLI (`airlock dev` loads it). Resolved from
 * this module: dist/commands/ and src/commands/ are both two levels below the
 * package root, where policies/demo/ lives.
 */
export const DEMO_POLICY_DIR = fileURLToPath(new URL("../../policies/demo/", import.meta.url));

type Version = { version: number; digest: string; createdBy: string | null; createdAt: string; active: boolean };
type Listing = { active: { source: string; version: number | null; digest: string; loadedAt: string; policies: number }; versions: Array<Version & { files: string[] }> };

// Loaded on demand: the bundle code pulls in the Cedar WASM module, which other commands must not pay for.
const bundles = () => import("@airlock/gateway/policy/bundle");

/** Reads and compiles DIR locally; the engine is only needed for `test`. */
async function validateDir(dir: string) {
  const { readBundle, compileBundle } = await bundles();
  const { files, ignored } = await readBundle(dir);
  const c = await compileBundle(files);
  if (c.ok) c.engine.dispose();
  return { files, ignored, ok: c.ok, errors: c.ok ? [] : c.errors, policyIds: c.ok ? c.policyIds : [] };
}

const errorLines = (errors: PolicyError[]) => errors.map((e) => `${formatPolicyError(e)}\n`).join("");
const ignoredLine = (ignored: string[]) => (ignored.length ? `ignored (not bundle files): ${ignored.join(", ")}\n` : "");
const short = (digest: string) => digest.slice(0, 12) || "-";

export function registerPolicy(program: Command): void {
  const policy = program.command("policy").description("policy bundles: Cedar policies, tests and masking rules");

  policy
    .command("validate <dir>")
    .description("check a bundle locally (no gateway needed): Cedar against the schema, masking.json, test files")
    .action(async (dir: string, _o, cmd: Command) => {
      const r = await validateDir(dir);
      const names = Object.keys(r.files).sort();
      print(cmd, { ok: r.ok, errors: r.errors, policyIds: r.policyIds, files: names, ignored: r.ignored }, () =>
        r.ok
          ? `OK: ${r.policyIds.length} policies in ${names.length} files (${names.join(", ")})\n${ignoredLine(r.ignored)}`
          : `${errorLines(r.errors)}${ignoredLine(r.ignored)}invalid: ${r.errors.length} error(s)\n`,
      );
      if (!r.ok) process.exitCode = 1;
    });

  policy
    .command("test <dir>")
    .description("run the bundle's *.tests.json cases locally: PASS/FAIL per case")
    .action(async (dir: string, _o, cmd: Command) => {
      const { readBundle, testBundle } = await bundles();
      const report = await testBundle((await readBundle(dir)).files);
      print(cmd, report, () => {
        if (report.loadErrors.length) return `${errorLines(report.loadErrors)}bundle does not compile: no test was run\n`;
        const lines = report.results.map((t) => {
          const got = t.result ? `${t.result.decision}${t.result.policyIds.length ? ` [${t.result.policyIds.join(", ")}]` : ""}` : JSON.stringify(t.masked ?? "");
          return `${t.pass ? "PASS" : "FAIL"}  ${t.file}  ${t.name}  -> ${got}${t.failure ? `\n      ${t.failure}` : ""}\n`;
        });
        const none = report.results.length === 0 ? "no test cases found (*.tests.json)\n" : "";
        return `${lines.join("")}${none}${report.passed} passed, ${report.failed} failed\n`;
      });
      if (!report.ok) process.exitCode = 1;
    });

  policy
    .command("apply <dir>")
    .description("validate the bundle locally, then store it on the gateway as the next version and activate it")
    .action(async (dir: string, _o, cmd: Command) => {
      const local = await validateDir(dir);
      if (!local.ok) {
        process.stdout.write(`${errorLines(local.errors)}invalid: ${local.errors.length} error(s); nothing applied\n`);
        process.exitCode = 1;
        return;
      }
      const api = await apiFor(cmd);
      let r: { version: number; digest: string; changed: boolean };
      try {
        r = await api.post("/api/v1/policies", { files: local.files });
      } catch (err) {
        if (!(err instanceof ApiError && err.code === "POLICY_INVALID")) throw err;
        // The gateway runs another version than this CLI; its validate endpoint lists the errors.
        const v = await api.post<{ errors: PolicyError[] }>("/api/v1/policies/validate", { files: local.files });
        process.stdout.write(`${errorLines(v.errors)}the gateway refused the bundle: ${v.errors.length} error(s)\n`);
        process.exitCode = 1;
        return;
      }
      if (!globals(cmd).json) process.stderr.write(ignoredLine(local.ignored));
      print(cmd, r, () => (r.changed ? `Applied policy version ${r.version} (${short(r.digest)}).\n` : `Unchanged: identical to version ${r.version} (${short(r.digest)}).\n`));
    });

  policy
    .command("list")
    .description("stored policy versions, newest first, and what the gateway enforces")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<Listing>("/api/v1/policies");
      const a = r.active;
      const active =
        a.source === "store" ? `version ${a.version} (${short(a.digest)})` : a.source === "dir" ? `policy directory (${short(a.digest)})` : "nothing: every statement is denied";
      print(cmd, r, () =>
        `Active: ${active}, ${a.policies} policies, loaded ${ago(a.loadedAt)}\n` +
        table(r.versions.map((v) => ({ ...v, active: v.active ? "*" : "", digest: short(v.digest), created: ago(v.createdAt), files: v.files.length })), ["version", "active", "digest", "createdBy", "created", "files"]),
      );
    });

  policy
    .command("show <version>")
    .description("a stored version's files (all, or one with --file)")
    .option("--file <name>", "print only this file, as is")
    .action(async (version: string, o: { file?: string }, cmd: Command) => {
      if (!/^[1-9]\d*$/.test(version)) throw new Error(`invalid version ${version}: expected a positive integer`);
      const v = await (await apiFor(cmd)).get<Version & { files: Record<string, string> }>(`/api/v1/policies/${version}`);
      if (o.file !== undefined) {
        const text = v.files[o.file];
        if (text === undefined) throw new Error(`version ${version} has no file ${o.file}; it has ${Object.keys(v.files).sort().join(", ")}`);
        return print(cmd, { name: o.file, text }, () => text);
      }
      print(cmd, v, () => {
        const head = `version ${v.version}${v.active ? " (active)" : ""}, digest ${v.digest}, by ${v.createdBy ?? "-"} at ${v.createdAt}\n`;
        const body = Object.keys(v.files).sort().map((n) => `\n==> ${n} <==\n${v.files[n]}${v.files[n]?.endsWith("\n") ? "" : "\n"}`);
        return head + body.join("");
      });
    });
}
