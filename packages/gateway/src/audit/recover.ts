// Closing sessions a crashed gateway left open (embedded store at start, or
// `airlock audit recover` for a gateway that will not come back). The chain
// is read back from the store: its newest stored link becomes the head, links
// that were numbered but never written (completions still queued at the
// crash) are listed in a signed tombstone as lost, and the session gets an
// end record and a "recovered" checkpoint.
import { randomUUID } from "node:crypto";
import { sessionEndFields, tombstonePayload } from "@airlock/shared/audit/index";
import type { Store } from "../store/index.js";
import type { AuditChains } from "./chains.js";

interface StoredLink {
  link: number;
  hash: Uint8Array;
}

const LINKS_SQL = `
  SELECT link, hash FROM (
    SELECT 1 AS link, chain_hash AS hash FROM sessions WHERE id = $1::uuid AND chain_hash IS NOT NULL
    UNION ALL SELECT link, hash FROM statements WHERE session_id = $1::uuid AND link IS NOT NULL
    UNION ALL SELECT end_link, end_hash FROM statements WHERE session_id = $1::uuid AND end_link IS NOT NULL
    UNION ALL SELECT link, hash FROM recording_chunks WHERE session_id = $1::uuid
  ) x ORDER BY link`;

export const LOST_IN_CRASH = "lost when the gateway stopped abruptly (numbered, never written)";

/**
 * Ends one orphaned session; returns false when it had no chain (closed without one). The session
 * is claimed first (ended_at set only if still unset), so two recoveries cannot both end it.
 */
export async function recoverSession(store: Store, chains: AuditChains, sessionId: string): Promise<boolean> {
  const endedAt = new Date();
  const data = { endedAt, outcome: "failed", errorCode: "LINK_LOST", error: "gateway stopped while the session was open" };
  const claimed = await store.prisma.session.updateMany({ where: { id: sessionId, endedAt: null }, data });
  if (claimed.count === 0) return true;
  const row = (await store.prisma.session.findUnique({ where: { id: sessionId } }))!;
  if (!row.chainHash) return false;
  const stored = await store.prisma.$queryRawUnsafe<StoredLink[]>(LINKS_SQL, sessionId);
  // The head is the newest link anyone vouched for: a stored record, or a checkpoint that signed
  // links (queued completions) whose rows never landed.
  let head = { links: stored[stored.length - 1]!.link, hash: Buffer.from(stored[stored.length - 1]!.hash) };
  const newest = await store.prisma.auditCheckpoint.findFirst({ where: { sessionId }, orderBy: { links: "desc" } });
  if (newest && newest.links > head.links) head = { links: newest.links, hash: Buffer.from(newest.head) };
  const present = new Set(stored.map((l) => l.link));
  for (const t of await store.prisma.auditTombstone.findMany({ where: { sessionId }, select: { links: true } })) {
    for (const [p] of t.links as Array<[number, string, string]>) present.add(p);
  }
  const lost: Array<[number, string, string]> = [];
  for (let p = 1; p <= head.links; p++) if (!present.has(p)) lost.push([p, "", ""]);
  // The last lost link's hash is known when a checkpoint signed it: the verifier needs it, as no later link names it.
  if (lost.length && lost[lost.length - 1]![0] === head.links) lost[lost.length - 1] = [head.links, "", head.hash.toString("hex")];
  if (lost.length) {
    const at = new Date();
    const { keyId, signature } = await chains.keys.sign((keyId) => tombstonePayload({ sessionId, at, reason: LOST_IN_CRASH, links: lost, keyId }));
    await store.prisma.auditTombstone.create({ data: { id: randomUUID(), sessionId, at, reason: LOST_IN_CRASH, links: lost, keyId, signature: new Uint8Array(signature) } });
  }
  const end = { ...data, bytesUp: row.bytesUp, bytesDown: row.bytesDown, unrecorded: row.unrecorded, recordingChunks: row.recordingChunks, recordingBytes: row.recordingBytes };
  const ended = await chains.recover(sessionId, head, row.subject, sessionEndFields(end));
  await store.prisma.session.update({
    where: { id: sessionId },
    data: { endLink: ended.link.link, endPrevHash: new Uint8Array(ended.link.prev), endHash: new Uint8Array(ended.link.hash) },
  });
  await ended.seal();
  return true;
}
