import { AirlockError, type Logger } from "@airlock/shared";
import type { ReviewView } from "./view.js";

/**
 * The statements waiting for decisions in this process. A waiter costs a
 * closure in a map: no timer or store read of its own. Decisions made here
 * wake them at once (wake), decisions announced by another process through
 * LISTEN/NOTIFY too (wakeFromStore); one shared poll per interval, a single
 * query for every waited review, is the safety net for a lost announcement.
 */
export class ReviewWaiters {
  private readonly waiters = new Map<string, Set<(r: ReviewView) => void>>();
  private poller: NodeJS.Timeout | null = null;

  constructor(
    private readonly read: (id: string) => Promise<ReviewView>,
    private readonly decidedAmong: (ids: string[]) => Promise<string[]>,
    private readonly log: Logger,
    private readonly pollMs: number,
  ) {}

  /** Resolves with the decided review; the signal (client went away) rejects it. */
  wait(id: string, signal?: AbortSignal): Promise<ReviewView> {
    return new Promise<ReviewView>((resolve, reject) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const leave = () => {
        set.delete(done);
        if (!set.size) this.waiters.delete(id);
        signal?.removeEventListener("abort", aborted);
      };
      const done = (v: ReviewView) => {
        leave();
        resolve(v);
      };
      const aborted = () => {
        leave();
        reject(new AirlockError("REVIEW_CLOSED", `stopped waiting for review ${id}`));
      };
      set.add(done);
      if (signal?.aborted) return aborted();
      signal?.addEventListener("abort", aborted, { once: true });
      this.ensurePoller();
      // A decision may have landed between the caller's first read and registering: look once more.
      void this.wakeFromStore(id);
    });
  }

  /** Wakes the waiters of a review decided in this process. */
  wake(v: ReviewView): void {
    for (const w of [...(this.waiters.get(v.id) ?? [])]) w(v);
  }

  /** Re-reads a review and wakes its waiters if it was decided (no notifications: whoever decided sent them). */
  async wakeFromStore(id: string): Promise<void> {
    if (!this.waiters.has(id)) return;
    const v = await this.read(id).catch(() => null);
    if (v && v.status !== "pending") this.wake(v);
  }

  close(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  private ensurePoller(): void {
    if (this.poller) return;
    this.poller = setInterval(() => void this.poll(), this.pollMs);
    this.poller.unref();
  }

  private async poll(): Promise<void> {
    const ids = [...this.waiters.keys()];
    if (!ids.length) return this.close();
    try {
      for (const id of await this.decidedAmong(ids)) await this.wakeFromStore(id);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "could not poll reviews");
    }
  }
}
