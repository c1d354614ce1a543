// Reads one session's audit material (every record with its chain links,
// checkpoints and tombstones) from the store, exactly as stored, for
// `airlock audit verify` (which recomputes every hash itself) and for the
// server-side check. Statements are read in keyset pages so a long session
// is streamed, never loaded at once by the gateway.
import type { CheckpointMaterial, ChunkMaterial, SessionMaterial, StatementMaterial, TombstoneMaterial } from "@airlock/shared/audit/index";
import type { Store } from "../store/index.js";

const hex = (b: Uint8Array | null | undefined): string | null => (b ? Buffer.from(b).toString("hex") : null);
const PAGE = 2_000;

export type MaterialLine =
  | { t: "session"; v: SessionMaterial["session"] }
  | { t: "statement"; v: StatementMaterial }
  | { t: "chunk"; v: ChunkMaterial }
  | { t: "checkpoint"; v: CheckpointMaterial }
  | { t: "tombstone"; v: TombstoneMaterial };

/** Yields the session first (null when there is no such session), then everything else. */
export async function* readMaterial(store: Store, sessionId: string): AsyncGenerator<MaterialLine> {
  // Checkpoints first: one written while the rows are read signs records that are then read too
  // (read after it), never records this read missed. Tombstones last: a record retention removes
  // meanwhile was either read as a row or is covered by a tombstone read after its deletion.
  let checkpoints = await store.prisma.auditCheckpoint.findMany({ where: { sessionId }, orderBy: { links: "asc" } });
  const s = await store.prisma.session.findUnique({ where: { id: sessionId } });
  if (!s) return;
  yield {
    t: "session",
    v: {
      id: s.id, subject: s.subject, subjectKind: s.subjectKind, authMethod: s.authMethod, tokenId: s.tokenId, connectionName: s.connectionName, protocol: s.protocol,
      clientAddr: s.clientAddr, startedAt: s.startedAt.toISOString(), groups: s.groups, recordMode: s.recordMode, endedAt: s.endedAt?.toISOString() ?? null,
      bytesUp: s.bytesUp.toString(), bytesDown: s.bytesDown.toString(), outcome: s.outcome, errorCode: s.errorCode, error: s.error, unrecorded: s.unrecorded,
      recordingChunks: s.recordingChunks, recordingBytes: s.recordingBytes.toString(), chainHash: hex(s.chainHash), endLink: s.endLink, endPrevHash: hex(s.endPrevHash), endHash: hex(s.endHash),
    },
  };
  for (let after = 0; ; ) {
    const rows = await store.prisma.statement.findMany({ where: { sessionId, seq: { gt: after } }, orderBy: { seq: "asc" }, take: PAGE });
    for (const r of rows) {
      yield {
        t: "statement",
        v: {
          id: r.id, seq: r.seq, subject: r.subject, text: r.text, kind: r.kind, command: r.command, objects: r.objects, decision: r.decision, rule: r.rule, reason: r.reason,
          status: r.status, startedAt: r.startedAt.toISOString(), errorCode: r.errorCode, error: r.error, durationMs: r.durationMs, rows: r.rows === null ? null : r.rows.toString(),
          commandTag: r.commandTag, masked: r.masked, link: r.link, prevHash: hex(r.prevHash), hash: hex(r.hash), endLink: r.endLink, endPrevHash: hex(r.endPrevHash), endHash: hex(r.endHash),
        },
      };
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.seq;
  }
  for (let after = -1; ; ) {
    const rows = await store.prisma.recordingChunk.findMany({ where: { sessionId, idx: { gt: after } }, orderBy: { idx: "asc" }, take: PAGE, omit: { data: true } });
    for (const c of rows) yield { t: "chunk", v: { idx: c.idx, at: c.at.toISOString(), frames: c.frames, rawBytes: c.rawBytes, digest: hex(c.digest)!, link: c.link, prevHash: hex(c.prevHash)!, hash: hex(c.hash)! } };
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.idx;
  }
  // The session was closed between the two reads: its final checkpoint came after the first one.
  if (s.endedAt && !checkpoints.some((c) => c.kind !== "periodic")) checkpoints = await store.prisma.auditCheckpoint.findMany({ where: { sessionId }, orderBy: { links: "asc" } });
  for (const c of checkpoints) yield { t: "checkpoint", v: checkpointView(c) };
  for (const t of await store.prisma.auditTombstone.findMany({ where: { sessionId }, orderBy: { at: "asc" } })) {
    yield { t: "tombstone", v: { id: t.id, sessionId: t.sessionId, at: t.at.toISOString(), reason: t.reason, links: t.links as Array<[number, string, string]>, keyId: t.keyId, signature: hex(t.signature)! } };
  }
}

type CheckpointRow = Awaited<ReturnType<Store["prisma"]["auditCheckpoint"]["findFirstOrThrow"]>>;

export function checkpointView(c: CheckpointRow): CheckpointMaterial {
  return {
    id: c.id, sessionId: c.sessionId, links: c.links, head: hex(c.head)!, kind: c.kind, at: c.at.toISOString(), keyId: c.keyId, stream: c.stream,
    streamSeq: c.streamSeq, prevHash: hex(c.prevHash), hash: hex(c.hash)!, signature: hex(c.signature)!,
  };
}

/** Collects a session's material (server-side verification, tests). */
export async function loadMaterial(store: Store, sessionId: string): Promise<SessionMaterial | null> {
  let m: SessionMaterial | null = null;
  for await (const line of readMaterial(store, sessionId)) {
    if (line.t === "session") m = { session: line.v, statements: [], chunks: [], checkpoints: [], tombstones: [] };
    else if (m) addLine(m, line);
  }
  return m;
}

export function addLine(m: SessionMaterial, line: MaterialLine): void {
  if (line.t === "statement") m.statements.push(line.v);
  else if (line.t === "chunk") m.chunks.push(line.v);
  else if (line.t === "checkpoint") m.checkpoints.push(line.v);
  else if (line.t === "tombstone") m.tombstones.push(line.v);
}
