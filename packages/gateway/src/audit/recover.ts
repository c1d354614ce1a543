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

/** Ends one orphaned session; returns false when it had no chain (closed without one). */
export async function recoverSession(store: Store, chains: AuditChains, sessionId: string): Promise<boolean> {
  const row = await store.prisma.session.findUnique({ where: { id: sessionId } });
  if (!row || row.endedAt) return true;
  const data = { endedAt: new Date(), outcome: "failed", errorCode: "LINK_LOST", error: "gateway stopped while the session was open" };
  if (!row.chainHash) {
    await store.prisma.session.update({ where: { id: sessionId }, data });
    return false;
  }
  const links = await store.prisma.$queryRawUnsafe<StoredLink[]>(LINKS_SQL, sessionId);
  const last = links[links.length - 1]!;
  const present = new Set(links.map((l) => l.link));
  const lost: Array<[number, string, string]> = [];
  for (let p = 1; p < last.link; p++) if (!present.has(p)) lost.push([p, "", ""]);
  if (lost.length) {
    const at = new Date();
    const keyId = (await chains.keys.current()).id;
    const { signature } = await chains.keys.sign(tombstonePayload({ sessionId, at, reason: LOST_IN_CRASH, links: lost, keyId }));
    await store.prisma.auditTombstone.create({ data: { id: randomUUID(), sessionId, at, reason: LOST_IN_CRASH, links: lost, keyId, signature: new Uint8Array(signature) } });
  }
  const end = { ...data, bytesUp: row.bytesUp, bytesDown: row.bytesDown, unrecorded: row.unrecorded, recordingChunks: row.recordingChunks, recordingBytes: row.recordingBytes };
  const ended = await chains.recover(sessionId, { links: last.link, hash: Buffer.from(last.hash) }, row.subject, sessionEndFields({ ...end, errorCode: data.errorCode, error: data.error }));
  await store.prisma.session.update({
    where: { id: sessionId },
    data: { ...data, endLink: ended.link.link, endPrevHash: new Uint8Array(ended.link.prev), endHash: new Uint8Array(ended.link.hash) },
  });
  await ended.seal();
  return true;
}
