import { AirlockError, type Logger } from "@airlock/shared";
import type { AccessTokenService } from "../auth/access-tokens.js";
import type { Store } from "../store/index.js";
import type { SessionRecorder } from "./recorder.js";

/**
 * Revocation reaches live sessions on every gateway process (access grants too): a revoke, logout
 * or user deletion through one process cuts its own sessions at once; this
 * sweep finds, every intervalMs, live sessions whose token another process
 * revoked (or whose user/service account/login ended) and cuts them.
 */
export function startRevocationSweep(o: { tokens: AccessTokenService; sessions: SessionRecorder; store: Store; intervalMs: number; log: Logger; endedGrants?: (ids: string[]) => Promise<string[]> }): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const ids = o.sessions.liveTokenIds();
    const tokenless = o.sessions.liveTokenlessSubjects();
    const grantIds = o.endedGrants ? o.sessions.liveGrantIds() : [];
    if (!ids.length && !tokenless.length && !grantIds.length) return;
    running = true;
    const byToken = o.tokens.invalidAmong(ids).then((bad) => {
      for (const id of bad) {
        const n = o.sessions.abortByToken(id, new AirlockError("TOKEN_REVOKED", "the access token of this session was revoked"));
        if (n) o.log.info({ tokenId: id, sessions: n }, "cut sessions of a revoked token");
      }
    });
    // Sessions on an IdP JWT bound to a service account end when the account is revoked anywhere.
    const bySubject = tokenless.length
      ? o.store.prisma.serviceAccount.findMany({ where: { name: { in: tokenless }, revokedAt: { not: null } }, select: { name: true } }).then((rows) => {
          for (const { name } of rows) {
            const n = o.sessions.abortBySubject(name, new AirlockError("IDENTITY_DISABLED", `service account ${name} was revoked`));
            if (n) o.log.info({ subject: name, sessions: n }, "cut sessions of a revoked service account");
          }
        })
      : Promise.resolve();
    // Sessions opened with an access grant end when the grant does (revoked, or its window passed).
    const byGrant = grantIds.length
      ? o.endedGrants!(grantIds).then((ended) => {
          for (const id of ended) {
            const n = o.sessions.abortByGrant(id, new AirlockError("PERMISSION_DENIED", `the access grant ${id} this session relied on has ended`));
            if (n) o.log.info({ grant: id, sessions: n }, "cut sessions of an ended access grant");
          }
        })
      : Promise.resolve();
    Promise.all([byToken, bySubject, byGrant])
      .catch((err: Error) => o.log.warn({ err: err.message }, "revocation sweep failed"))
      .finally(() => (running = false));
  }, o.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
