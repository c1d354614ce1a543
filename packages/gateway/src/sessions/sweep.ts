import { AirlockError, type Logger } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import type { SessionRecorder } from "./recorder.js";

/**
 * Revocation reaches live sessions on every gateway process: a revoke, logout
 * or user deletion through one process cuts its own sessions at once; this
 * sweep finds, every intervalMs, live sessions whose token another process
 * revoked (or whose user/service account/login ended) and cuts them.
 */
export function startRevocationSweep(o: { tokens: AccessTokenService; sessions: SessionRecorder; intervalMs: number; log: Logger }): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const ids = o.sessions.liveTokenIds();
    if (!ids.length) return;
    running = true;
    o.tokens
      .invalidAmong(ids)
      .then((bad) => {
        for (const id of bad) {
          const n = o.sessions.abortByToken(id, new AirlockError("TOKEN_REVOKED", "the access token of this session was revoked"));
          if (n) o.log.info({ tokenId: id, sessions: n }, "cut sessions of a revoked token");
        }
      })
      .catch((err: Error) => o.log.warn({ err: err.message }, "revocation sweep failed"))
      .finally(() => (running = false));
  }, o.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
