// Tamper evidence over HTTP: the public keys that sign checkpoints (anyone
// may fetch them, like a JWKS), key rotation (admins), and each session's
// audit material for `airlock audit verify`, which recomputes every hash on
// the auditor's machine. A server-side check is offered too, for dashboards.
import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import { verifySession, verifyStreams } from "@airlock/shared/audit/index";
import { requireRole } from "../auth/principal.js";
import type { AuditKeys } from "../audit/keys.js";
import { checkpointView, loadMaterial, readMaterial } from "../audit/material.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import { isUuid } from "../sessions/statements-sql.js";
import type { Store } from "../store/index.js";
import { principalOf } from "./auth.js";

export interface AuditRoutesOptions {
  store: Store;
  keys: AuditKeys;
  sessions: SessionRecorder;
}

const SessionParam = Type.Object({ id: Type.String() });
const Range = Type.Object({ since: Type.String({ format: "date-time" }), until: Type.Optional(Type.String({ format: "date-time" })) });

function sessionId(id: string): string {
  if (!isUuid(id)) throw new AirlockError("NOT_FOUND", `no session ${id}`);
  return id;
}

async function publicKeys(keys: AuditKeys): Promise<Map<string, string>> {
  return new Map((await keys.list()).map((k) => [k.id, k.publicKey]));
}

export const auditRoutes: FastifyPluginAsyncTypebox<AuditRoutesOptions> = async (app, { store, keys, sessions }) => {
  app.get("/audit/keys", { config: { public: true }, schema: { tags: ["audit"], summary: "public keys that sign audit checkpoints (Ed25519, SPKI PEM)", security: [] } }, async () => ({
    keys: await keys.list(),
  }));

  app.post("/audit/keys/rotate", { schema: { tags: ["audit"], summary: "create a new signing key; the old one stays published" } }, async (req) => {
    requireRole(principalOf(req), "admin");
    return keys.rotate();
  });

  app.get("/audit/sessions/:id/material", { schema: { tags: ["audit"], params: SessionParam, summary: "a session's records, links, checkpoints and tombstones as NDJSON" } }, async (req, reply) => {
    requireRole(principalOf(req), "auditor", "admin");
    const id = sessionId(req.params.id);
    const lines = readMaterial(store, id);
    const first = await lines.next();
    if (first.done) throw new AirlockError("NOT_FOUND", `no session ${id}`);
    async function* ndjson() {
      yield `${JSON.stringify(first.value)}\n`;
      for await (const line of lines) yield `${JSON.stringify(line)}\n`;
    }
    return reply.type("application/x-ndjson").send(Readable.from(ndjson()));
  });

  app.get("/audit/sessions/:id/verify", { schema: { tags: ["audit"], params: SessionParam, summary: "check a session's chain and signatures on the gateway" } }, async (req) => {
    requireRole(principalOf(req), "auditor", "admin");
    const m = await loadMaterial(store, sessionId(req.params.id));
    if (!m) throw new AirlockError("NOT_FOUND", `no session ${req.params.id}`);
    return verifySession(m, await publicKeys(keys));
  });

  // A session a gateway process left open when it died (PostgreSQL store: other processes cannot tell a
  // dead owner from a live one, so an admin says so). It gets an end record and a "recovered" checkpoint.
  app.post("/audit/sessions/:id/recover", { schema: { tags: ["audit"], params: SessionParam, summary: "close a session whose gateway process died" } }, async (req) => {
    requireRole(principalOf(req), "admin");
    const id = sessionId(req.params.id);
    if (sessions.isLive(id)) throw new AirlockError("INVALID_ARGUMENT", `session ${id} is live on this gateway`);
    const row = await store.prisma.session.findUnique({ where: { id }, select: { outcome: true } });
    if (!row) throw new AirlockError("NOT_FOUND", `no session ${id}`);
    if (row.outcome !== "active") throw new AirlockError("INVALID_ARGUMENT", `session ${id} is already closed (${row.outcome})`);
    await sessions.closeOrphans([id]);
    return { id, recovered: true };
  });

  // Sessions started in a range (ids, to verify one by one) and the checkpoints written in it (stream continuity).
  app.get("/audit/range", { schema: { tags: ["audit"], querystring: Range, summary: "session ids and checkpoints of a time range, as NDJSON" } }, async (req, reply) => {
    requireRole(principalOf(req), "auditor", "admin");
    const since = new Date(req.query.since);
    const until = req.query.until ? new Date(req.query.until) : new Date("9999-12-31T00:00:00Z");
    async function* ndjson() {
      for (let after: { at: Date; id: string } | null = null; ; ) {
        const rows: Array<{ id: string; startedAt: Date }> = await store.prisma.session.findMany({
          where: { startedAt: { gte: since, lt: until }, ...(after ? { OR: [{ startedAt: { gt: after.at } }, { startedAt: after.at, id: { gt: after.id } }] } : {}) },
          orderBy: [{ startedAt: "asc" }, { id: "asc" }],
          select: { id: true, startedAt: true },
          take: 1000,
        });
        for (const r of rows) yield `${JSON.stringify({ t: "session", id: r.id })}\n`;
        if (rows.length < 1000) break;
        after = { at: rows[rows.length - 1]!.startedAt, id: rows[rows.length - 1]!.id };
      }
      let lastStream = "";
      for (let after = -1, stream = ""; ; ) {
        const rows = await store.prisma.auditCheckpoint.findMany({
          where: { at: { gte: since, lt: until }, OR: [{ stream: { gt: stream || "00000000-0000-0000-0000-000000000000" } }, { stream: stream || undefined, streamSeq: { gt: after } }] },
          orderBy: [{ stream: "asc" }, { streamSeq: "asc" }],
          take: 1000,
        });
        for (const c of rows) {
          // Each stream's first checkpoint in the range must follow one before it: fetch that one too,
          // so removing the oldest sessions of a range still shows as a gap.
          if (c.stream !== lastStream && c.streamSeq > 1) {
            const prev = await store.prisma.auditCheckpoint.findUnique({ where: { stream_streamSeq: { stream: c.stream, streamSeq: c.streamSeq - 1 } } });
            yield `${JSON.stringify(prev ? { t: "anchor", v: checkpointView(prev) } : { t: "gap", stream: c.stream, seq: c.streamSeq - 1, sessionId: c.sessionId })}\n`;
          }
          lastStream = c.stream;
          yield `${JSON.stringify({ t: "checkpoint", v: checkpointView(c) })}\n`;
        }
        if (rows.length < 1000) break;
        stream = rows[rows.length - 1]!.stream;
        after = rows[rows.length - 1]!.streamSeq;
      }
    }
    return reply.type("application/x-ndjson").send(Readable.from(ndjson()));
  });

  // Stream continuity for a range, checked on the gateway (the CLI does the same locally).
  app.get("/audit/streams/verify", { schema: { tags: ["audit"], querystring: Range } }, async (req) => {
    requireRole(principalOf(req), "auditor", "admin");
    const rows = await store.prisma.auditCheckpoint.findMany({
      where: { at: { gte: new Date(req.query.since), ...(req.query.until ? { lt: new Date(req.query.until) } : {}) } },
      orderBy: [{ stream: "asc" }, { streamSeq: "asc" }],
      take: 100_000,
    });
    return { checked: rows.length, truncated: rows.length === 100_000, findings: verifyStreams(rows.map(checkpointView), await publicKeys(keys)) };
  });
};
