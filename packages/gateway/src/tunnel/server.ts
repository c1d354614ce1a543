import * as grpc from "@grpc/grpc-js";
import { agentTunnelDefinition, type LinkServerCall } from "@airlock/proto";
import { AirlockError, DEFAULT_MUX_OPTIONS, type Logger, type MuxOptions } from "@airlock/shared";
import { GatewayLink, type Authenticate } from "./link.js";
import type { AgentRegistry } from "./registry.js";

export interface TunnelServerOptions {
  /** host:port to listen on; port 0 picks a free port. */
  listen: string;
  /** PEM server certificate and key; null serves plaintext (tests only). */
  tls: { certPem: string; keyPem: string } | null;
  authenticate: Authenticate;
  registry: AgentRegistry;
  logger: Logger;
  mux?: Partial<MuxOptions>;
  helloTimeoutMs?: number;
}

/** Largest frame the gateway accepts from an agent; data frames carry at most 256 KiB. */
export const MAX_AGENT_FRAME_BYTES = 1024 * 1024;

/** HTTP/2 per-stream window we ask agents to use (see `widenWindows`). */
const HTTP2_WINDOW = 8 * 1024 * 1024;

/** The gRPC server agents dial out to. */
export class TunnelServer {
  private readonly server: grpc.Server;
  private readonly muxOptions: MuxOptions;
  port = 0;

  constructor(private readonly opts: TunnelServerOptions) {
    this.muxOptions = { ...DEFAULT_MUX_OPTIONS, ...opts.mux };
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": MAX_AGENT_FRAME_BYTES,
      "grpc.max_send_message_length": MAX_AGENT_FRAME_BYTES,
      // Our own Ping/Pong detects dead links; allow the agent's HTTP/2 pings too.
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 1_000,
    });
    this.server.addService(agentTunnelDefinition, { link: (call: LinkServerCall) => this.onLink(call) });
  }

  private onLink(call: LinkServerCall): void {
    const link = new GatewayLink(call, this.opts.authenticate, this.muxOptions, this.opts.logger, this.opts.helloTimeoutMs);
    link.once("ready", () => {
      this.opts.logger.info({ agent: link.identity?.agentName, peer: link.peer, version: link.hello?.agentVersion }, "agent link up");
      this.opts.registry.add(link);
    });
  }

  async start(): Promise<number> {
    const creds = this.opts.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(this.opts.tls.certPem), private_key: Buffer.from(this.opts.tls.keyPem) }], false)
      : grpc.ServerCredentials.createInsecure();
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(this.opts.listen, creds, (err, port) => (err ? reject(AirlockError.from(err, "CONFIG_INVALID")) : resolve(port))),
    );
    widenWindows(this.server);
    return this.port;
  }

  async stop(): Promise<void> {
    this.opts.registry.closeAll(new AirlockError("LINK_LOST", "gateway is shutting down"));
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/**
 * grpc-js exposes no server option for HTTP/2 flow-control windows, and Node's
 * default of 64 KiB per stream caps one link at roughly window/RTT. Every agent
 * link is a single long-lived HTTP/2 stream carrying all its byte streams (which
 * have their own credit-based flow control), so we raise the HTTP/2 windows on
 * each incoming session through grpc-js's http2 servers.
 */
function widenWindows(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<import("node:events").EventEmitter, unknown> }).http2Servers;
  if (!http2Servers) return;
  for (const s of http2Servers.keys()) {
    s.on("session", (session: import("node:http2").ServerHttp2Session) => {
      try {
        session.settings({ initialWindowSize: HTTP2_WINDOW });
        session.setLocalWindowSize(HTTP2_WINDOW * 4);
      } catch {
        // session may already be closing; it then carries nothing anyway
      }
    });
  }
}
