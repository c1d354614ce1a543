// Reads a policy directory, validates every policy against the schema and
// assigns stable ids. Validation runs per file so Cedar's source offsets are
// relative to that file and can be turned into file:line:column.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type { DetailedError } from "@cedar-policy/cedar-wasm/nodejs";
import { SCHEMA_TEXT } from "./schema.js";
import type { PolicyError, PolicyMeta } from "./types.js";
import { parseReviewAnnotations } from "../reviews/requirements.js";

export interface LoadedPolicies {
  schema: string;
  /** id -> policy text, the shape preparsePolicySet accepts. */
  policies: Record<string, string>;
  meta: Map<string, PolicyMeta>;
  errors: PolicyError[];
}

/** Cedar offsets are UTF-8 byte offsets; convert to 1-based line/column. */
export function position(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, "utf8").subarray(0, byteOffset).toString("utf8");
  const lines = before.split("\n");
  return { line: lines.length, column: (lines[lines.length - 1] ?? "").length + 1 };
}

function toErrors(file: string, text: string, errs: DetailedError[], policyId?: string): PolicyError[] {
  return errs.map((e) => {
    const loc = e.sourceLocations?.[0];
    const detail = [e.message, loc?.label, e.help].filter(Boolean).join("; ");
    const out: PolicyError = { file, message: detail };
    if (policyId) out.policyId = policyId;
    return loc ? { ...out, ...position(text, loc.start) } : out;
  });
}

/** Reads the policy files of `dir` (`*.cedar`, `schema.cedarschema`) and loads them. */
export async function loadPolicyDir(dir: string): Promise<LoadedPolicies> {
  const files: Record<string, string> = {};
  for (const name of await readdir(dir)) {
    if (name.endsWith(".cedar") || name === "schema.cedarschema") files[name] = await readFile(join(dir, name), "utf8");
  }
  return loadPolicyFiles(files);
}

/**
 * Loads in-memory policy files (file name -> text): `*.cedar` policies and an
 * optional `schema.cedarschema`; other names are ignored. Synchronous: every
 * Cedar call is.
 */
export function loadPolicyFiles(files: Record<string, string>): LoadedPolicies {
  const names = Object.keys(files).sort();
  const errors: PolicyError[] = [];
  // A directory may carry its own schema (e.g. tests); otherwise the built-in.
  const schema = files["schema.cedarschema"] ?? SCHEMA_TEXT;
  const schemaCheck = cedar.checkParseSchema(schema);
  if (schemaCheck.type === "failure") {
    errors.push(...toErrors("schema.cedarschema", schema, schemaCheck.errors));
    return { schema, policies: {}, meta: new Map(), errors };
  }

  const policies: Record<string, string> = {};
  const meta = new Map<string, PolicyMeta>();
  for (const file of names.filter((n) => n.endsWith(".cedar"))) {
    const text = files[file] ?? "";
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === "failure") { errors.push(...toErrors(file, text, parts.errors)); continue; }
    if (parts.policy_templates.length > 0) {
      errors.push({ file, message: "policy templates are not supported" });
      continue;
    }
    // Cedar names policies policy0..N in file order; remember our ids for them.
    const localIds: string[] = [];
    let cursor = 0;
    parts.policies.forEach((ptext, i) => {
      const at = text.indexOf(ptext, cursor);
      if (at >= 0) cursor = at + ptext.length;
      const line = at >= 0 ? position(text, Buffer.byteLength(text.slice(0, at))).line : 1;
      const json = cedar.policyToJson(ptext);
      const annotations = json.type === "success" ? { ...(json.json.annotations ?? {}) } : {};
      const id = annotations.id ?? `${file}#${i}`;
      localIds.push(id);
      if (meta.has(id)) {
        errors.push({ file, line, column: 1, policyId: id, message: `duplicate policy id (first in ${meta.get(id)?.file})` });
        return;
      }
      const eff = annotations.effect;
      if (eff !== undefined && eff !== "review") {
        errors.push({ file, line, column: 1, policyId: id, message: `unknown @effect("${eff}"), only "review" is supported` });
      }
      if (eff === "review") {
        const req = parseReviewAnnotations(annotations);
        if (typeof req === "string") errors.push({ file, line, column: 1, policyId: id, message: req });
      } else {
        for (const k of ["reviewers", "approvals", "timeout"]) {
          if (annotations[k] !== undefined) errors.push({ file, line, column: 1, policyId: id, message: `@${k} only applies to @effect("review") policies` });
        }
      }
      const m: PolicyMeta = {
        id, file, line, annotations, review: eff === "review",
        effect: json.type === "success" ? json.json.effect : "forbid",
      };
      if (annotations.reason !== undefined) m.reason = annotations.reason;
      meta.set(id, m);
      policies[id] = ptext;
    });

    const v = cedar.validate({ schema, policies: { staticPolicies: text } });
    if (v.type === "failure") { errors.push(...toErrors(file, text, v.errors)); continue; }
    for (const ve of v.validationErrors) {
      const idx = /^policy(\d+)$/.exec(ve.policyId);
      const id = idx ? localIds[Number(idx[1])] ?? ve.policyId : ve.policyId;
      errors.push(...toErrors(file, text, [ve.error], id));
    }
  }
  return { schema, policies, meta, errors };
}
