// Cancel keys. Clients get a key made by the gateway (never the target's), so
// a CancelRequest can only be routed by us: we look the key up, then send the
// target's real key to the target over a new tunnel stream through the agent
// that serves the session.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Duplex } from "node:stream";
import type { Logger } from "@airlock/shared";
import type { ConnectionView } from "../../connections/service.js";
import { cancelOnTarget, type TargetTlsOptions } from "./backend/index.js";
import type { CancelRequest } from "./protocol/index.js";

export interface CancelTarget {
  connection: ConnectionView;
  agentId: string | null;
  /** The target's own key; null if it sent none (then cancel is a no-op). */
  key: { processId: number; secretKey: Buffer } | null;
  tls: TargetTlsOptions;
}

interface Entry extends CancelTarget {
  sessionId: string;
  secret: Buffer;
}

export type CancelDialer = (t: CancelTarget, sessionId: string) => Promise<Duplex>;

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry>();

  constructor(
    private readonly dial: CancelDialer,
    private readonly log: Logger,
  ) {}

  /** Issues the key the client will see. Process ids are random, positive and unique among live sessions. */
  register(sessionId: string, target: CancelTarget): { processId: number; secretKey: Buffer } {
    let pid: number;
    do pid = randomBytes(4).readUInt32BE(0) & 0x7fffffff;
    while (pid === 0 || this.byPid.has(pid));
    const secret = randomBytes(4);
    this.byPid.set(pid, { ...target, sessionId, secret });
    return { processId: pid, secretKey: secret };
  }

  unregister(key: { processId: number }): void {
    this.byPid.delete(key.processId);
  }

  /** Unknown keys are ignored silently, as PostgreSQL does (no oracle for guessing). */
  async cancel(req: CancelRequest): Promise<boolean> {
    const e = this.byPid.get(req.processId);
    if (!e || e.secret.length !== req.secretKey.length || !timingSafeEqual(e.secret, req.secretKey)) {
      this.log.warn({ pid: req.processId }, "cancel request with an unknown key ignored");
      return false;
    }
    if (!e.key) return false;
    try {
      const stream = await this.dial(e, e.sessionId);
      await cancelOnTarget(stream, e.key, e.tls);
      this.log.info({ session: e.sessionId }, "cancel request forwarded to the target");
      return true;
    } catch (err) {
      this.log.warn({ session: e.sessionId, err: (err as Error).message }, "cancel request could not be delivered");
      return false;
    }
  }
}
