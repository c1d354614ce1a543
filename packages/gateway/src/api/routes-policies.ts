import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { requireRole } from "../auth/principal.js";
import { compileBundle, MAX_BUNDLE_BYTES } from "../policy/bundle.js";
import type { PolicyService } from "../policy/service.js";
import { principalOf } from "./auth.js";

export interface PolicyRoutesOptions {
  policies: PolicyService;
}

/** Room for a full 4 MiB bundle once JSON-escaped (quotes, newlines as \n). */
const BODY_LIMIT = 2 * MAX_BUNDLE_BYTES + 64 * 1024;
const Time = Type.Unsafe<string | Date>({ type: "string", format: "date-time" });

const Bundle = Type.Object(
  {
    files: Type.Record(Type.String(), Type.String(), {
      description: "file name -> text: *.cedar, schema.cedarschema, *.tests.json, masking.json",
      maxProperties: 500,
    }),
  },
  { additionalProperties: false },
);
const PolicyErrorView = Type.Object({
  file: Type.String(),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
  policyId: Type.Optional(Type.String()),
  message: Type.String(),
});
const VersionInfo = {
  version: Type.Integer(),
  digest: Type.String({ description: "SHA-256 over the sorted files" }),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  createdAt: Time,
  active: Type.Boolean({ description: "this gateway process enforces this version" }),
};
const VersionParam = Type.Object({ version: Type.Integer({ minimum: 1 }) });

export const policyRoutes: FastifyPluginAsyncTypebox<PolicyRoutesOptions> = async (app, { policies }) => {
  app.post(
    "/policies",
    {
      bodyLimit: BODY_LIMIT,
      schema: {
        tags: ["policies"],
        summary: "Validate and store a policy bundle as the next version, and activate it (a bundle equal to the latest version is a no-op)",
        body: Bundle,
        response: {
          201: Type.Object(
            { version: Type.Integer(), digest: Type.String(), changed: Type.Boolean({ description: "false: identical to the latest version" }) },
            { description: "stored (or unchanged) and active; an invalid bundle is a 400 problem with code POLICY_INVALID and errors[]" },
          ),
        },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      requireRole(p, "admin");
      reply.status(201);
      return policies.apply(req.body.files, p.subject);
    },
  );

  app.post(
    "/policies/validate",
    {
      bodyLimit: BODY_LIMIT,
      schema: {
        tags: ["policies"],
        summary: "Validate a policy bundle without storing it",
        body: Bundle,
        response: { 200: Type.Object({ ok: Type.Boolean(), errors: Type.Array(PolicyErrorView), policyIds: Type.Array(Type.String()) }) },
      },
    },
    async (req) => {
      requireRole(principalOf(req), "admin");
      const c = await compileBundle(req.body.files);
      if (!c.ok) return { ok: false, errors: c.errors, policyIds: [] };
      c.engine.dispose(); // validation only: free its WASM slots for the next engine
      return { ok: true, errors: [], policyIds: c.policyIds };
    },
  );

  app.get(
    "/policies",
    {
      schema: {
        tags: ["policies"],
        summary: "Stored policy versions (newest first) and what this gateway process enforces",
        response: {
          200: Type.Object({
            active: Type.Object({
              source: Type.Union([Type.Literal("dir"), Type.Literal("store"), Type.Literal("none")]),
              version: Type.Union([Type.Integer(), Type.Null()]),
              digest: Type.String(),
              loadedAt: Time,
              policies: Type.Integer({ description: "number of Cedar policies" }),
            }),
            versions: Type.Array(Type.Object({ ...VersionInfo, files: Type.Array(Type.String()) })),
          }),
        },
      },
    },
    async (req) => {
      requireRole(principalOf(req), "auditor");
      const a = policies.current();
      const versions = await policies.list();
      return {
        active: { source: a.source, version: a.version, digest: a.digest, loadedAt: a.loadedAt, policies: a.policyIds.length },
        versions: versions.map((v) => ({ ...v, active: a.source === "store" && v.version === a.version })),
      };
    },
  );

  app.get(
    "/policies/:version",
    {
      schema: {
        tags: ["policies"],
        summary: "One stored policy version with its files",
        params: VersionParam,
        response: { 200: Type.Object({ ...VersionInfo, files: Type.Record(Type.String(), Type.String()) }) },
      },
    },
    async (req) => {
      requireRole(principalOf(req), "auditor");
      const v = await policies.get(req.params.version);
      const a = policies.current();
      return { ...v, active: a.source === "store" && v.version === a.version };
    },
  );
};
