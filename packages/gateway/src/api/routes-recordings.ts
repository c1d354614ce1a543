import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AirlockError } from "@airlock/shared";
import { hasRole } from "../auth/principal.js";
import { readRecording } from "../recordings/reader.js";
import type { Recordings } from "../recordings/service.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import type { Store } from "../store/index.js";
import { principalOf } from "./auth.js";
import { IdParam } from "./schemas.js";

export interface RecordingRoutesOptions {
  store: Store;
  sessions: SessionRecorder;
  recordings: Recordings;
}

/**
 * Byte recordings of stream sessions (docs/recordings.md). Who may read one is
 * who may see the session: auditors and admins all, others their own.
 */
export const recordingRoutes: FastifyPluginAsyncTypebox<RecordingRoutesOptions> = async (app, { store, sessions, recordings }) => {
  app.get(
    "/sessions/:id/recording",
    {
      schema: {
        tags: ["sessions"],
        summary: "A stream session's recorded bytes as NDJSON lines: frames {t, dir, data (base64)}, then {end} (or {error}); see docs/recordings.md",
        params: IdParam,
        querystring: Type.Object({
          direction: Type.Optional(Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("both")], { default: "both", description: "up = client→target, down = target→client" })),
        }),
        produces: ["application/x-ndjson"],
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const id = req.params.id;
      const row = await sessions.get(id).catch(() => null);
      // Someone else's session looks the same as a missing one.
      if (!row || (!hasRole(p, "auditor") && row.subject !== p.subject)) throw new AirlockError("NOT_FOUND", `no session ${id}`);
      const first = await store.prisma.recordingChunk.findFirst({ where: { sessionId: id }, select: { idx: true } });
      if (!first) {
        if (row.recordingStorage === "deleted") throw new AirlockError("NOT_FOUND", `the recording of session ${id} was deleted by retention (its audit tombstone lists the removed chunks)`);
        throw new AirlockError("NOT_FOUND", `session ${id} has no byte recording (${row.protocol} session${row.endedAt ? "" : ", nothing stored yet"})`);
      }
      const lines = async function* () {
        for await (const line of readRecording(store, recordings, id, req.query.direction ?? "both")) yield `${JSON.stringify(line)}\n`;
      };
      // Pulled by the response as the client reads: one chunk in memory at a time.
      return reply.type("application/x-ndjson").header("cache-control", "no-store").send(Readable.from(lines()));
    },
  );
};
