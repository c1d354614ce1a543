import type { Duplex } from "node:stream";
import { relay, type RelayResult } from "@airlock/shared";
import type { Recordings } from "../../recordings/service.js";
import type { ClientConn, Engine, SessionContext } from "../engine.js";

/** Raw TCP: bytes both ways, nothing to parse; recorded byte for byte when recordings are on. */
export class TcpEngine implements Engine {
  readonly protocol = "tcp";

  constructor(private readonly recordings: Recordings | null = null) {}

  handle(client: ClientConn, upstream: Duplex, ctx: SessionContext): Promise<RelayResult> {
    client.sendReady?.(ctx.sessionId);
    // The result also carries the recording's totals (`recording`), which runSession passes on to the session record.
    return this.recordings ? this.recordings.relay(client.stream, upstream, ctx) : relay(client.stream, upstream);
  }
}
