// A policy bundle: the directory users keep in git and push with
// `airlock policy apply`. Bundle files are `*.cedar` policies, an optional
// `schema.cedarschema`, `*.tests.json` policy tests and an optional
// `masking.json` (MaskingRules); anything else in the directory is ignored.
// Bundles travel and are stored as { file name: text }.
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { AirlockError } from "@airlock/shared";
import { createMasker, type Masker, type MaskingRules } from "../masking/masker.js";
import { PolicyEngine } from "./engine.js";
import { parseJsonSource } from "./json-source.js";
import { MASKING_FILE, parseMaskingJson } from "./masking-json.js";
import { isTestFile, runTestFiles, summarize, type PolicyTestReport } from "./testing.js";
import type { PolicyError } from "./types.js";

export type BundleFiles = Record<string, string>;

export const MAX_FILE_BYTES = 1024 * 1024;
export const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;
/** Plain names only: bundles are flat, and names end up in paths and terminals. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isBundleFile(name: string): boolean {
  if (!SAFE_NAME.test(name)) return false;
  return name.endsWith(".cedar") || name === "schema.cedarschema" || isTestFile(name) || name === MASKING_FILE;
}

/**
 * Reads the bundle files of `dir`, listing the other entries as `ignored`
 * (dot files such as .git are skipped silently). Throws AirlockError
 * INVALID_ARGUMENT when the directory is unreadable or a size limit is hit.
 */
export async function readBundle(dir: string): Promise<{ files: BundleFiles; ignored: string[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new AirlockError("INVALID_ARGUMENT", `cannot read policy bundle ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const files: BundleFiles = {};
  const ignored: string[] = [];
  let total = 0;
  for (const name of names) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile() || !isBundleFile(name)) {
      ignored.push(st?.isDirectory() ? `${name}/` : name);
      continue;
    }
    // Checked before reading so a stray multi-gigabyte file is refused, not loaded.
    if (st.size > MAX_FILE_BYTES) throw tooBig(`${name} is ${st.size} bytes; a bundle file may have at most ${MAX_FILE_BYTES}`);
    total += st.size;
    if (total > MAX_BUNDLE_BYTES) throw tooBig(`${dir} holds more than ${MAX_BUNDLE_BYTES} bytes of bundle files`);
    files[name] = await readFile(path, "utf8");
  }
  return { files, ignored };
}

/** The bundle files of `dir` (file name -> text); see readBundle. */
export async function readBundleDir(dir: string): Promise<BundleFiles> {
  return (await readBundle(dir)).files;
}

const tooBig = (message: string) => new AirlockError("INVALID_ARGUMENT", message);

/** SHA-256 (hex) over the files sorted by name; lengths are included so no two bundles encode alike. */
export function bundleDigest(files: BundleFiles): string {
  const h = createHash("sha256");
  for (const name of Object.keys(files).sort()) {
    const body = Buffer.from(files[name] ?? "", "utf8");
    h.update(`${Buffer.byteLength(name)}:${name}\n${body.length}:`).update(body).update("\n");
  }
  return h.digest("hex");
}

export type CompiledBundle =
  | { ok: true; engine: PolicyEngine; masking: MaskingRules; masker: Masker; policyIds: string[] }
  | { ok: false; errors: PolicyError[] };

/** Names, sizes and the shape of test files: what Cedar and the masker do not check. */
function checkFiles(files: BundleFiles): { errors: PolicyError[]; oversize: boolean } {
  const errors: PolicyError[] = [];
  let total = 0;
  let oversize = false;
  for (const [name, text] of Object.entries(files)) {
    if (!isBundleFile(name)) {
      errors.push({ file: name, message: "not a bundle file: expected *.cedar, schema.cedarschema, *.tests.json or masking.json" });
      continue;
    }
    const bytes = Buffer.byteLength(text);
    total += bytes;
    if (bytes > MAX_FILE_BYTES) {
      oversize = true;
      errors.push({ file: name, message: `${bytes} bytes; a bundle file may have at most ${MAX_FILE_BYTES}` });
    }
    if (isTestFile(name)) {
      const src = parseJsonSource(text);
      if (!src.ok) errors.push({ file: name, ...src.error });
      else if (!Array.isArray(src.value)) errors.push({ file: name, line: 1, column: 1, message: "expected a JSON array of test cases" });
    }
  }
  if (total > MAX_BUNDLE_BYTES) {
    oversize = true;
    errors.push({ file: "(bundle)", message: `${total} bytes; a bundle may have at most ${MAX_BUNDLE_BYTES}` });
  }
  if (!Object.keys(files).some((n) => n.endsWith(".cedar"))) {
    // Valid for Cedar, but it would deny every statement: almost surely the wrong directory.
    errors.push({ file: "(bundle)", message: "no *.cedar policy files: every statement would be denied" });
  }
  return { errors, oversize };
}

/**
 * Validates everything (names and sizes, Cedar against the schema, masking.json,
 * test file syntax) and builds a ready engine and masker. The caller owns the
 * engine: dispose() it when it is not going to be used.
 */
export async function compileBundle(files: BundleFiles): Promise<CompiledBundle> {
  const { errors, oversize } = checkFiles(files);
  // Parsing is CPU-bound and synchronous: do not spend it on input that is refused anyway.
  if (oversize) return { ok: false, errors };
  const maskingText = files[MASKING_FILE];
  const masking = maskingText === undefined ? { rules: {}, errors: [] } : parseMaskingJson(maskingText);
  errors.push(...masking.errors);
  // Cedar runs even when the rest failed, so one validate reports every error.
  const { engine, errors: cedarErrors } = PolicyEngine.fromFiles(files);
  errors.push(...cedarErrors);
  if (errors.length > 0 || !masking.rules) {
    engine.dispose();
    return { ok: false, errors };
  }
  return { ok: true, engine, masking: masking.rules, masker: createMasker(masking.rules), policyIds: engine.loaded?.policyIds ?? [] };
}

/** Compiles the bundle and runs its `*.tests.json` (decision and mask cases). */
export async function testBundle(files: BundleFiles): Promise<PolicyTestReport> {
  const c = await compileBundle(files);
  if (!c.ok) return summarize(c.errors, []);
  try {
    return summarize([], runTestFiles(c.engine, c.masker, files));
  } finally {
    c.engine.dispose();
  }
}
