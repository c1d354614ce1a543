import os from "node:os";
import { AgentFrameSchema, create, TUNNEL_PROTOCOL_VERSION, type AgentFrame, type AgentTunnelClient, type GatewayFrame, type HelloAck, type LinkClientCall, type Open } from "@airlock/proto";
import { AirlockError, AIRLOCK_VERSION, DEFAULT_MUX_OPTIONS, isCommonCase, isErrorCode, Mux, relay, type CommonFrame, type Logger, type MuxOptions } from "@airlock/shared";
import { dialTarget } from "./dial.js";

export type Credential = { kind: "enrollment"; token: string } | { kind: "key"; key: string };

export interface LinkEnd {
  /** Whether the handshake completed (the backoff resets after a good link). */
  wasReady: boolean;
  error: AirlockError;
}

/** Codes after which retrying cannot help: the agent stops instead of hammering the gateway. */
export const FATAL_CODES = new Set<string>([
  "AGENT_REVOKED",
  "AGENT_KEY_INVALID",
  "ENROLLMENT_TOKEN_INVALID",
  "ENROLLMENT_TOKEN_USED",
  "AGENT_VERSION_UNSUPPORTED",
]);

type State = "connecting" | "ready" | "closed";

/**
 * One connection attempt of the agent to the gateway: Hello → HelloAck →
 * serve Open requests until the link ends. Reconnecting is the caller's job
 * (a fresh AgentLink each time).
 */
export class AgentLink {
  private state: State = "connecting";
  private call: LinkClientCall | null = null;
  private mux: Mux | null = null;
  private remoteError: AirlockError | null = null;
  private settle!: (end: LinkEnd) => void;
  readonly done: Promise<LinkEnd>;

  constructor(
    private readonly client: AgentTunnelClient,
    private readonly credential: Credential,
    private readonly log: Logger,
    private readonly muxOptions: Partial<MuxOptions> = {},
    private readonly onAck: (ack: HelloAck) => Promise<void> | void = () => {},
  ) {
    this.done = new Promise((r) => (this.settle = r));
  }

  start(): this {
    const call = this.client.link();
    this.call = call;
    call.on("data", (f: GatewayFrame) => this.onFrame(f));
    call.on("error", (err: Error & { details?: string }) =>
      this.end(this.remoteError ?? new AirlockError("LINK_LOST", `gateway link failed: ${err.details ?? err.message}`, { cause: err })),
    );
    call.on("end", () => this.end(this.remoteError ?? new AirlockError("LINK_LOST", "gateway closed the link")));
    call.on("drain", () => this.mux?.onTransportDrain());
    const window = this.muxOptions.initialWindow ?? DEFAULT_MUX_OPTIONS.initialWindow;
    this.write({
      case: "hello",
      value: {
        $typeName: "airlock.tunnel.v1.Hello",
        protocolVersion: TUNNEL_PROTOCOL_VERSION,
        agentVersion: AIRLOCK_VERSION,
        hostname: os.hostname(),
        initialWindow: window,
        credential:
          this.credential.kind === "enrollment"
            ? { case: "enrollmentToken", value: this.credential.token }
            : { case: "agentKey", value: this.credential.key },
      },
    });
    return this;
  }

  get activeStreams(): number {
    return this.mux?.size ?? 0;
  }

  private write(frame: AgentFrame["frame"]): boolean {
    if (!this.call || this.state === "closed") return true;
    // Data is the hot path: its serializer needs no defaults filled in by create().
    const msg = frame.case === "data" ? ({ $typeName: "airlock.tunnel.v1.AgentFrame", frame } as AgentFrame) : create(AgentFrameSchema, { frame });
    return this.call.write(msg);
  }

  private onFrame(f: GatewayFrame): void {
    const frame = f.frame;
    if (frame.case === "error") {
      const code = isErrorCode(frame.value.code) ? frame.value.code : "LINK_LOST";
      this.remoteError = new AirlockError(code, frame.value.message);
      return this.end(this.remoteError);
    }
    if (this.state === "connecting") {
      if (frame.case !== "helloAck") return this.end(new AirlockError("LINK_PROTOCOL_ERROR", `expected HelloAck, got ${frame.case}`));
      return void this.onHelloAck(frame.value);
    }
    if (this.state !== "ready" || !this.mux) return;
    if (frame.case === "open") {
      this.mux.touch();
      return void this.onOpen(frame.value);
    }
    if (isCommonCase(frame.case)) return this.mux.receive(frame as CommonFrame);
    this.end(new AirlockError("LINK_PROTOCOL_ERROR", `unexpected ${frame.case} on a ready link`));
  }

  private async onHelloAck(ack: HelloAck): Promise<void> {
    try {
      await this.onAck(ack); // persists an issued key before anything else happens
    } catch (err) {
      return this.end(AirlockError.from(err));
    }
    const opts: Partial<MuxOptions> = { ...this.muxOptions };
    if (ack.keepaliveIntervalMs) {
      opts.keepaliveIntervalMs = ack.keepaliveIntervalMs;
      opts.keepaliveTimeoutMs = Math.max(ack.keepaliveIntervalMs * 5, opts.keepaliveTimeoutMs ?? 0);
    }
    this.mux = new Mux((frame) => this.write(frame), opts, ack.initialWindow || DEFAULT_MUX_OPTIONS.initialWindow);
    this.mux.on("fatal", (err) => this.end(err));
    this.state = "ready";
    this.mux.startKeepalive();
    this.log.info({ agentId: ack.agentId, agent: ack.agentName, gatewayVersion: ack.gatewayVersion }, "connected to gateway");
  }

  private async onOpen(open: Open): Promise<void> {
    const mux = this.mux!;
    const stream = mux.acceptStream(open.streamId);
    if (!stream) return this.end(new AirlockError("LINK_PROTOCOL_ERROR", `Open for stream ${open.streamId}, which is not a new id`));
    const ctx = { stream: open.streamId, session: open.sessionId, connection: open.connectionName, target: `${open.host}:${open.port}` };
    try {
      const socket = await dialTarget(open);
      if (stream.destroyed) return void socket.destroy();
      this.write({ case: "openResult", value: { $typeName: "airlock.tunnel.v1.OpenResult", streamId: open.streamId, errorCode: "", errorMessage: "" } });
      this.log.debug(ctx, "stream opened");
      const r = await relay(stream, socket);
      this.log.debug({ ...ctx, toTarget: r.bytesUp, fromTarget: r.bytesDown, err: r.error?.message }, "stream closed");
    } catch (err) {
      const e = AirlockError.from(err, "STREAM_REFUSED");
      this.log.warn({ ...ctx, code: e.code, err: e.message }, "could not reach target");
      this.write({ case: "openResult", value: { $typeName: "airlock.tunnel.v1.OpenResult", streamId: open.streamId, errorCode: e.code, errorMessage: e.message } });
      stream.on("error", () => {});
      stream.destroy(e);
    }
  }

  /** Ends the link once; every stream fails with the reason. */
  end(err: AirlockError): void {
    if (this.state === "closed") return;
    const wasReady = this.state === "ready";
    this.state = "closed";
    this.mux?.shutdown(err);
    try {
      this.call?.cancel();
    } catch {
      // already gone
    }
    this.settle({ wasReady, error: err });
  }
}
