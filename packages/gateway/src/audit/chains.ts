// The writer side of tamper evidence: one ChainHead per open session in this
// process (links are appended in the order the gateway produces records, see
// @airlock/shared audit/chain.ts), and signed checkpoints of those heads:
// periodic for open sessions, final when a session ends, "recovered" when a
// restarted gateway closes what a crash left open.
//
// Links that never reached the store (a record the store refused: the
// statement was not run; or a best-effort connection forwarding without a
// record) are kept here and written as a signed tombstone with the next
// checkpoint, so the chain stays verifiable and the gap is explained.
import { randomUUID } from "node:crypto";
import { ChainHead, checkpointHash, checkpointPayload, tombstonePayload, type CanonValue, type CheckpointKind, type LinkKind } from "@airlock/shared/audit/index";
import type { Logger } from "@airlock/shared";
import { sqlState } from "../sessions/statements-sql.js";
import type { Store } from "../store/index.js";
import type { AuditKeys } from "./keys.js";

interface OpenChain {
  head: ChainHead;
  subject: string;
  /** Links covered by the newest checkpoint written. */
  signed: number;
  /** Links that never reached the store, with why; written as a tombstone at the next checkpoint. */
  lost: Array<[number, string, string]>;
  lostReason: string;
  /** Statements forwarded without a record (best effort). */
  unrecorded: number;
  /** Set when a final/recovered checkpoint failed: the retry must be of that kind. */
  sealAs?: CheckpointKind;
}

export interface AuditChainsOptions {
  /** Open sessions with new links get a checkpoint this often. Default 30 s. */
  checkpointIntervalMs?: number;
}

/** Lost links kept per session before the session is considered unrecordable. */
const MAX_LOST = 10_000;

export class AuditChains {
  private readonly open = new Map<string, OpenChain>();
  /** This process's checkpoint stream: seq and the previous checkpoint's hash. */
  stream = randomUUID();
  private streamSeq = 0;
  private streamPrev: Buffer | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;

  constructor(
    private readonly store: Store,
    readonly keys: AuditKeys,
    private readonly log: Logger,
    opts: AuditChainsOptions = {},
  ) {
    const every = opts.checkpointIntervalMs ?? 30_000;
    if (every > 0) {
      this.timer = setInterval(() => void this.checkpointOpen(), every);
      this.timer.unref();
    }
  }

  /** Starts a session's chain; returns its first link (the session's start record). */
  begin(sessionId: string, subject: string, startFields: CanonValue[]) {
    const head = new ChainHead(sessionId);
    this.open.set(sessionId, { head, subject, signed: 0, lost: [], lostReason: "", unrecorded: 0 });
    return head.append("session.start", startFields);
  }

  /** Forgets a chain whose first record never reached the store. */
  drop(sessionId: string): void {
    this.open.delete(sessionId);
  }

  /** Statements of an open session that ran without a record. */
  unrecordedOf(sessionId: string): number {
    return this.open.get(sessionId)?.unrecorded ?? 0;
  }

  has(sessionId: string): boolean {
    return this.open.has(sessionId);
  }

  subjectOf(sessionId: string): string | undefined {
    return this.open.get(sessionId)?.subject;
  }

  /** Appends a link to an open session's chain; null when this process has no chain for it. */
  append(sessionId: string, kind: LinkKind, fields: CanonValue[]) {
    return this.open.get(sessionId)?.head.append(kind, fields) ?? null;
  }

  /** A link whose record never reached the store; false when too many are pending (end the session). */
  lost(sessionId: string, link: { link: number; prev: Buffer; hash: Buffer }, reason: string, forwarded = false): boolean {
    const c = this.open.get(sessionId);
    if (!c) return true;
    if (forwarded) c.unrecorded++;
    c.lost.push([link.link, link.prev.toString("hex"), link.hash.toString("hex")]);
    c.lostReason = reason;
    return c.lost.length < MAX_LOST;
  }

  /** Ends a session's chain with its end record and a final checkpoint. */
  async end(sessionId: string, endFields: CanonValue[]) {
    const c = this.open.get(sessionId);
    if (!c) return null;
    const link = c.head.append("session.end", endFields);
    return { link, seal: () => this.seal(sessionId, "final") };
  }

  /** Signs the current head of an open session (and drops the chain for final/recovered). */
  seal(sessionId: string, kind: CheckpointKind): Promise<void> {
    const c = this.open.get(sessionId);
    if (!c) return Promise.resolve();
    if (kind !== "periodic") this.open.delete(sessionId);
    return this.enqueue(() => this.write(sessionId, c, kind));
  }

  /** Periodic checkpoints of open sessions with links nobody signed yet. */
  async checkpointOpen(): Promise<void> {
    // One pass at a time: with a slow store, ticks must not pile up duplicate checkpoints.
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const due = [...this.open.entries()].filter(([, c]) => c.head.links > c.signed || c.sealAs);
      for (const [id, c] of due) await this.seal(id, c.sealAs ?? "periodic").catch(() => undefined);
    } finally {
      this.sweeping = false;
    }
  }

  private newStream(): void {
    this.stream = randomUUID();
    this.streamSeq = 0;
    this.streamPrev = null;
  }

  /** Closes a session left open by a crash: its chain is read back from the store, ended and sealed. */
  async recover(sessionId: string, head: { links: number; hash: Buffer }, subject: string, endFields: CanonValue[]) {
    const h = new ChainHead(sessionId);
    h.links = head.links;
    h.head = head.hash;
    this.open.set(sessionId, { head: h, subject, signed: 0, lost: [], lostReason: "", unrecorded: 0 });
    const link = h.append("session.end", endFields);
    return { link, seal: () => this.seal(sessionId, "recovered") };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.sweeping) await new Promise((r) => setTimeout(r, 10));
    await this.checkpointOpen();
    await this.queue;
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** One checkpoint (and the tombstone of lost links first). Serialized: the stream chain needs order. */
  private async write(sessionId: string, c: OpenChain, kind: CheckpointKind): Promise<void> {
    const links = c.head.links;
    const head = c.head.head;
    try {
      if (c.lost.length) {
        const lost = c.lost.splice(0);
        const at = new Date();
        const { keyId, signature } = await this.keys.sign((keyId) => tombstonePayload({ sessionId, at, reason: c.lostReason, links: lost, keyId }));
        try {
          await this.store.prisma.auditTombstone.create({ data: { sessionId, at, reason: c.lostReason, links: lost, keyId, signature: new Uint8Array(signature) } });
        } catch (err) {
          c.lost.unshift(...lost);
          throw err;
        }
      }
      const base = { sessionId, links, head, kind, at: new Date(), stream: this.stream, streamSeq: this.streamSeq + 1, prevHash: this.streamPrev };
      let cp = { ...base, keyId: "" };
      const { signature } = await this.keys.sign((keyId) => checkpointPayload((cp = { ...base, keyId })));
      const hash = checkpointHash(cp);
      try {
        await this.store.prisma.auditCheckpoint.create({
          data: { sessionId, links, head: new Uint8Array(head), kind, at: cp.at, keyId: cp.keyId, stream: cp.stream, streamSeq: cp.streamSeq, prevHash: cp.prevHash && new Uint8Array(cp.prevHash), hash: new Uint8Array(hash), signature: new Uint8Array(signature) },
        });
      } catch (err) {
        // (stream, seq) taken: an earlier insert committed although we saw an error. This stream's
        // position is unknown now, so continue on a fresh stream rather than fail every later checkpoint.
        if (isUniqueViolation(err)) this.newStream();
        throw err;
      }
      this.streamSeq = cp.streamSeq;
      this.streamPrev = hash;
      c.signed = Math.max(c.signed, links);
    } catch (err) {
      // The chain itself is intact; the next checkpoint (periodic, or a retry at close) signs it.
      this.log.warn({ session: sessionId, kind, err: (err as Error).message }, "could not write an audit checkpoint");
      if (kind !== "periodic" && !this.open.has(sessionId)) this.open.set(sessionId, { ...c, sealAs: kind });
      throw err;
    }
  }
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "P2002" || sqlState(err) === "23505";
}
