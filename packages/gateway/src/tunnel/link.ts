import { EventEmitter } from "node:events";
import { create, GatewayFrameSchema, TUNNEL_PROTOCOL_VERSION, type AgentFrame, type GatewayFrame, type Hello, type LinkServerCall } from "@airlock/proto";
import { AirlockError, AIRLOCK_VERSION, isCommonCase, isErrorCode, Mux, type CommonFrame, type Logger, type MuxOptions, type MuxStream } from "@airlock/shared";

/** Who the agent turned out to be, as decided by the authenticator. */
export interface AgentIdentity {
  agentId: string;
  agentName: string;
  group: string | null;
  /** Only at enrollment: the long-lived key the agent must store. */
  issuedKey?: string;
}

export type Authenticate = (hello: Hello, peer: string) => Promise<AgentIdentity>;

export interface OpenTarget {
  host: string;
  port: number;
  tls?: { enabled: boolean; verify: boolean; serverName?: string; caPem?: string };
  sessionId: string;
  connectionName: string;
  connectTimeoutMs?: number;
}

type LinkState = "awaiting-hello" | "authenticating" | "ready" | "closed";

interface LinkEvents {
  ready: [];
  closed: [err: AirlockError];
}

/**
 * The gateway's end of one agent link. Phases: awaiting-hello → authenticating
 * → ready → closed; any failure moves it to closed for good (a closed link is
 * never reused: the agent dials a new one).
 */
export class GatewayLink extends EventEmitter<LinkEvents> {
  state: LinkState = "awaiting-hello";
  identity: AgentIdentity | null = null;
  hello: Hello | null = null;
  readonly connectedAt = new Date();
  private mux: Mux | null = null;
  private readonly pendingOpens = new Map<number, { resolve: () => void; reject: (e: AirlockError) => void; timer: NodeJS.Timeout }>();
  private helloTimer: NodeJS.Timeout;

  constructor(
    private readonly call: LinkServerCall,
    private readonly authenticate: Authenticate,
    private readonly muxOptions: MuxOptions,
    private readonly log: Logger,
    helloTimeoutMs = 10_000,
  ) {
    super();
    this.helloTimer = setTimeout(() => this.fail(new AirlockError("LINK_PROTOCOL_ERROR", "no Hello within the handshake timeout")), helloTimeoutMs);
    call.on("data", (f: AgentFrame) => this.onFrame(f));
    call.on("error", (err: Error & { code?: number; details?: string }) =>
      this.fail(new AirlockError("LINK_LOST", `agent link failed: ${err.details ?? err.message}`, { cause: err })),
    );
    call.on("end", () => this.fail(new AirlockError("LINK_LOST", "agent closed the link")));
    call.on("cancelled", () => this.fail(new AirlockError("LINK_LOST", "agent link was cancelled")));
    call.on("drain", () => this.mux?.onTransportDrain());
  }

  get peer(): string {
    return this.call.getPeer();
  }
  get activeStreams(): number {
    return this.mux?.size ?? 0;
  }

  private writeFrame(frame: CommonFrame | Extract<GatewayFrame["frame"], { case: "helloAck" | "open" }>): boolean {
    if (this.state === "closed") return true;
    // Data is the hot path: its serializer needs no defaults filled in by create().
    const msg = frame.case === "data" ? ({ $typeName: "airlock.tunnel.v1.GatewayFrame", frame } as GatewayFrame) : create(GatewayFrameSchema, { frame });
    return this.call.write(msg);
  }

  private onFrame(f: AgentFrame): void {
    const frame = f.frame;
    if (this.state === "awaiting-hello") {
      if (frame.case !== "hello") return this.fail(new AirlockError("LINK_PROTOCOL_ERROR", `expected Hello, got ${frame.case ?? "an empty frame"}`));
      void this.onHello(frame.value);
      return;
    }
    if (this.state === "authenticating") {
      return this.fail(new AirlockError("LINK_PROTOCOL_ERROR", `${frame.case ?? "empty frame"} sent before the handshake completed`));
    }
    if (this.state !== "ready" || !this.mux) return;
    if (frame.case === "openResult") {
      this.mux.touch();
      const p = this.pendingOpens.get(frame.value.streamId);
      if (!p) return this.fail(new AirlockError("LINK_PROTOCOL_ERROR", `OpenResult for stream ${frame.value.streamId}, which is not opening`));
      this.pendingOpens.delete(frame.value.streamId);
      clearTimeout(p.timer);
      if (frame.value.errorCode) {
        const code = isErrorCode(frame.value.errorCode) ? frame.value.errorCode : "STREAM_REFUSED";
        p.reject(new AirlockError(code, frame.value.errorMessage || undefined));
      } else p.resolve();
      return;
    }
    if (isCommonCase(frame.case)) return this.mux.receive(frame as CommonFrame);
    this.fail(new AirlockError("LINK_PROTOCOL_ERROR", `unexpected ${frame.case ?? "empty frame"} on a ready link`));
  }

  private async onHello(hello: Hello): Promise<void> {
    clearTimeout(this.helloTimer);
    this.state = "authenticating";
    this.hello = hello;
    if (hello.protocolVersion !== TUNNEL_PROTOCOL_VERSION) {
      return this.fail(
        new AirlockError(
          "AGENT_VERSION_UNSUPPORTED",
          `agent ${hello.agentVersion || "(unknown version)"} speaks tunnel protocol v${hello.protocolVersion}; this gateway (${AIRLOCK_VERSION}) speaks v${TUNNEL_PROTOCOL_VERSION}: install a matching agent`,
        ),
      );
    }
    let identity: AgentIdentity;
    try {
      identity = await this.authenticate(hello, this.peer);
    } catch (err) {
      return this.fail(AirlockError.from(err));
    }
    if (this.state !== "authenticating") return; // the link died meanwhile
    this.identity = identity;
    const peerWindow = Math.min(Math.max(hello.initialWindow || this.muxOptions.initialWindow, 1024), 64 * 1024 * 1024);
    this.mux = new Mux((frame) => this.writeFrame(frame), this.muxOptions, peerWindow);
    this.mux.on("fatal", (err) => this.fail(err));
    this.state = "ready";
    this.writeFrame({
      case: "helloAck",
      value: {
        $typeName: "airlock.tunnel.v1.HelloAck",
        protocolVersion: TUNNEL_PROTOCOL_VERSION,
        gatewayVersion: AIRLOCK_VERSION,
        agentId: identity.agentId,
        agentName: identity.agentName,
        agentKey: identity.issuedKey ?? "",
        initialWindow: this.muxOptions.initialWindow,
        keepaliveIntervalMs: this.muxOptions.keepaliveIntervalMs,
      },
    });
    this.mux.startKeepalive();
    this.emit("ready");
  }

  /** Opens a stream to a target through the agent; resolves once the agent has dialled it. */
  async open(target: OpenTarget): Promise<MuxStream> {
    if (this.state !== "ready" || !this.mux) throw new AirlockError("LINK_LOST", "agent link is not ready");
    const stream = this.mux.openStream();
    const timeoutMs = (target.connectTimeoutMs ?? 10_000) + 2_000;
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingOpens.delete(stream.id);
        reject(new AirlockError("STREAM_REFUSED", `agent did not answer the open request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingOpens.set(stream.id, { resolve, reject, timer });
    });
    const tls = target.tls;
    this.writeFrame({
      case: "open",
      value: {
        $typeName: "airlock.tunnel.v1.Open",
        streamId: stream.id,
        host: target.host,
        port: target.port,
        sessionId: target.sessionId,
        connectionName: target.connectionName,
        connectTimeoutMs: target.connectTimeoutMs ?? 10_000,
        tls: tls
          ? { $typeName: "airlock.tunnel.v1.TargetTls", enabled: tls.enabled, verify: tls.verify, serverName: tls.serverName ?? "", caPem: tls.caPem ?? "" }
          : undefined,
      },
    });
    try {
      await opened;
    } catch (err) {
      stream.on("error", () => {}); // the caller gets the rejection instead
      stream.destroy(err as AirlockError);
      throw err;
    }
    return stream;
  }

  /** Ends the link: sends the reason to the agent when possible, fails every stream. */
  fail(err: AirlockError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.helloTimer);
    const level = err.code === "LINK_LOST" ? "info" : "warn";
    this.log[level]({ agent: this.identity?.agentName, peer: this.peer, code: err.code, err: err.message }, "agent link closed");
    try {
      this.call.write(create(GatewayFrameSchema, { frame: { case: "error", value: { code: err.code, message: err.message } } }));
      this.call.end();
    } catch {
      // the call may already be gone
    }
    for (const [, p] of this.pendingOpens) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pendingOpens.clear();
    this.mux?.shutdown(err);
    this.emit("closed", err);
  }
}
