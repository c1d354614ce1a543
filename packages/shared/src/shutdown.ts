/**
 * Runs `stop` once on the first SIGINT or SIGTERM. Later signals are ignored
 * while it runs: supervisors and process-group kills often deliver the same
 * signal twice, and the default action would cut a graceful shutdown short.
 */
export function onShutdown(stop: (signal: NodeJS.Signals) => unknown): void {
  let started = false;
  const handler = (signal: NodeJS.Signals) => {
    if (started) return;
    started = true;
    void Promise.resolve(stop(signal));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
