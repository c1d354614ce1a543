import type { Duplex } from "node:stream";
import { relay, type RelayResult } from "@airlock/shared";
import type { ClientConn, Engine, SessionContext } from "../engine.js";

/** Raw TCP: bytes both ways, nothing to parse. */
export class TcpEngine implements Engine {
  readonly protocol = "tcp";

  handle(client: ClientConn, upstream: Duplex, ctx: SessionContext): Promise<RelayResult> {
    client.sendReady?.(ctx.sessionId);
    return relay(client.stream, upstream);
  }
}
