// Retention of byte recordings (config audit.retention): rules by connection
// label, the first rule whose labels all match the connection's labels
// applies, and a session's recording is deleted once the session ended more
// than that rule's recordingDays ago. Sessions are matched by connection name
// (the name stays on the session after the connection is gone); a session
// whose connection no longer exists has no labels, so only a catch-all rule
// (labels {}) applies to it. Without a matching rule a recording is kept.
//
// Deleting keeps the session verifiable: the removed chunks' links
// ([link, prev, hash]) are listed in one signed tombstone per session (per
// 10,000 chunks for longer recordings), which the verifier uses in their
// place. Order, so that a crash at any point is repaired by the next sweep:
// the bytes are deleted from their backend first (idempotent), then the
// tombstone is written and the rows deleted in one transaction, and the
// session's recording_storage becomes "deleted" with the last batch.
import { tombstonePayload } from "@airlock/shared/audit/index";
import type { Logger } from "@airlock/shared";
import type { AuditConfig } from "../audit/config.js";
import type { AuditKeys } from "../audit/keys.js";
import type { Store } from "../store/index.js";
import type { Recordings } from "./service.js";

type Rule = AuditConfig["retention"][number];

export interface RetentionOptions {
  store: Store;
  recordings: Pick<Recordings, "backend">;
  keys: Pick<AuditKeys, "current" | "sign">;
  rules: readonly Rule[];
  log: Logger;
  now?: () => Date;
  /** Chunks per tombstone and transaction. Default 10,000. */
  batch?: number;
}

const DAY_MS = 86_400_000;
/** Sessions looked at per query. */
const PAGE = 200;

export function ruleFor(rules: readonly Rule[], labels: Record<string, string>): Rule | null {
  return rules.find((r) => Object.entries(r.labels).every(([k, v]) => labels[k] === v)) ?? null;
}

export class RecordingRetention {
  private running: Promise<unknown> | null = null;

  constructor(private readonly o: RetentionOptions) {}

  /** One pass over ended sessions with recordings; resolves with what it removed. */
  sweep(): Promise<{ sessions: number; chunks: number }> {
    // Never two passes at once (the timer may fire while a long pass runs).
    if (this.running) return this.running.then(() => ({ sessions: 0, chunks: 0 }));
    const p = this.pass().finally(() => (this.running = null));
    this.running = p;
    return p;
  }

  /** Sweeps every intervalMs (first after a short delay); returns a stop function. */
  start(intervalMs: number): () => void {
    const run = () => void this.sweep().catch((err: Error) => this.o.log.warn({ err: err.message }, "recording retention sweep failed"));
    const first = setTimeout(run, Math.min(intervalMs, 10_000));
    const timer = setInterval(run, intervalMs);
    first.unref();
    timer.unref();
    return () => {
      clearTimeout(first);
      clearInterval(timer);
    };
  }

  private async pass(): Promise<{ sessions: number; chunks: number }> {
    const { store, rules } = this.o;
    const done = { sessions: 0, chunks: 0 };
    if (!rules.length) return done;
    const now = (this.o.now ?? (() => new Date()))();
    const conns = await store.prisma.connection.findMany({ select: { name: true, labels: true } });
    const labelsOf = new Map(conns.map((c) => [c.name, (c.labels ?? {}) as Record<string, string>]));
    const oldest = new Date(now.getTime() - Math.min(...rules.map((r) => r.recordingDays)) * DAY_MS);
    let last: { endedAt: Date; id: string } | null = null;
    for (;;) {
      const page: Array<{ id: string; connectionName: string; endedAt: Date | null }> = await store.prisma.session.findMany({
        where: {
          // A session ends after it starts: the startedAt bound lets the store use its index.
          startedAt: { lt: oldest },
          endedAt: { lt: oldest },
          chunks: { some: {} },
          ...(last ? { OR: [{ endedAt: { gt: last.endedAt } }, { endedAt: last.endedAt, id: { gt: last.id } }] } : {}),
        },
        orderBy: [{ endedAt: "asc" }, { id: "asc" }],
        take: PAGE,
        select: { id: true, connectionName: true, endedAt: true },
      });
      for (const s of page) {
        const rule = ruleFor(rules, labelsOf.get(s.connectionName) ?? {});
        if (!rule || s.endedAt!.getTime() >= now.getTime() - rule.recordingDays * DAY_MS) continue;
        try {
          done.chunks += await this.purge(s.id, rule, now);
          done.sessions++;
        } catch (err) {
          // Left as it is; the next pass tries again.
          this.o.log.warn({ session: s.id, err: (err as Error).message }, "could not delete a recording past retention");
        }
      }
      if (page.length < PAGE) break;
      const tail = page[page.length - 1]!;
      last = { endedAt: tail.endedAt!, id: tail.id };
    }
    if (done.sessions) this.o.log.info(done, "deleted recordings past retention");
    return done;
  }

  /** Deletes one session's chunks: bytes, then tombstone + rows per batch. Returns the chunks removed. */
  private async purge(sessionId: string, rule: Rule, now: Date): Promise<number> {
    const { store, keys } = this.o;
    const reason = `recording removed by retention: sessions on connections labelled ${JSON.stringify(rule.labels)} keep recordings ${rule.recordingDays} days`;
    let removed = 0;
    for (;;) {
      const chunks = await store.prisma.recordingChunk.findMany({
        where: { sessionId },
        orderBy: { idx: "asc" },
        take: this.o.batch ?? 10_000,
        select: { idx: true, link: true, prevHash: true, hash: true, storage: true, location: true },
      });
      if (!chunks.length) break;
      for (const kind of new Set(chunks.map((c) => c.storage))) {
        await this.o.recordings.backend(kind).delete(sessionId, chunks.filter((c) => c.storage === kind).map((c) => ({ sessionId, idx: c.idx, location: c.location })));
      }
      // Chunks of sessions without a chain (link 0) have nothing to tombstone.
      const links = chunks.filter((c) => c.link > 0).map((c) => [c.link, Buffer.from(c.prevHash).toString("hex"), Buffer.from(c.hash).toString("hex")] as [number, string, string]);
      const signed = links.length ? await this.sign(sessionId, now, reason, links) : null;
      await store.prisma.$transaction(async (tx) => {
        if (signed) await tx.auditTombstone.create({ data: signed });
        await tx.recordingChunk.deleteMany({ where: { sessionId, idx: { in: chunks.map((c) => c.idx) } } });
        const left = await tx.recordingChunk.count({ where: { sessionId } });
        if (!left) await tx.session.update({ where: { id: sessionId }, data: { recordingStorage: "deleted" } });
      });
      removed += chunks.length;
    }
    return removed;
  }

  private async sign(sessionId: string, at: Date, reason: string, links: Array<[number, string, string]>) {
    const { keyId, signature } = await this.o.keys.sign((keyId) => tombstonePayload({ sessionId, at, reason, links, keyId }));
    return { sessionId, at, reason, links, keyId, signature: new Uint8Array(signature) };
  }
}
