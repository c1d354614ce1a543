/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so a fleet of agents that lost the gateway together does not
 * reconnect in lockstep, yet no agent retries immediately.
 */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly baseMs = 250,
    private readonly maxMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
