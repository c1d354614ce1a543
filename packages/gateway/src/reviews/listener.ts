import pg from "pg";
import type { Logger } from "@airlock/shared";

const CHANNEL = "airlock_reviews";
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * A dedicated PostgreSQL connection that LISTENs for decided reviews (payload:
 * the review id). Reconnects with backoff when the connection drops; while it
 * is down the ReviewService's shared poll still finds decisions.
 */
export class ReviewListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly onDecided: (id: string) => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect().catch((err: Error) => {
      this.log.warn({ err: err.message }, "review listener could not connect; retrying (decisions are polled meanwhile)");
      this.retry();
    });
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, application_name: "airlock-review-listener" });
    c.on("notification", (n) => n.channel === CHANNEL && n.payload && this.onDecided(n.payload));
    c.on("error", (err) => {
      this.log.warn({ err: err.message }, "review listener connection failed; reconnecting");
      this.client = null;
      c.end().catch(() => {});
      this.retry();
    });
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    this.client = c;
    this.retryMs = RETRY_MIN_MS;
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch(() => this.retry());
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.client?.end().catch(() => {});
    this.client = null;
  }
}
