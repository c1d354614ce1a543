import { createHash, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import net from "node:net";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { AgentTunnelClient } from "@airlock/proto";
import { AirlockError, type Logger, type MuxOptions } from "@airlock/shared";
import { Backoff } from "./backoff.js";
import { AgentLink, FATAL_CODES, type Credential } from "./link.js";
import { loadState, saveState, type AgentState } from "./state.js";

export interface AgentOptions {
  /** Gateway agent endpoint, host:port (a grpcs:// or https:// prefix is accepted). */
  gateway: string;
  /** One-time enrollment token; not needed once the agent has enrolled. */
  token?: string;
  dataDir: string;
  /** Trust: a CA file, a pin of the gateway CA, inline CA PEM, or plaintext for tests. */
  caFile?: string;
  caPin?: string;
  caPem?: string;
  insecure?: boolean;
  /** Name to check in the gateway certificate when dialling by another name or IP. */
  tlsServerName?: string;
  logger: Logger;
  mux?: Partial<MuxOptions>;
  backoff?: Backoff;
}

/** Runs the agent: keeps one link to the gateway up, reconnecting with backoff and jitter. */
export class Agent {
  private link: AgentLink | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private client: AgentTunnelClient | null = null;
  /** Resolves when the agent stops for good; rejects on a fatal refusal. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private rejectFinished!: (e: AirlockError) => void;
  state: AgentState | null = null;
  /** True while a link is up and the handshake completed. */
  connected = false;

  constructor(private readonly opts: AgentOptions) {
    this.finished = new Promise((res, rej) => {
      this.resolveFinished = res;
      this.rejectFinished = rej;
    });
    this.finished.catch(() => {}); // callers that care await it
  }

  get target(): string {
    return this.opts.gateway.replace(/^(grpcs?|https?):\/\//, "").replace(/\/$/, "");
  }

  async start(): Promise<void> {
    const creds = await this.credentials();
    const host = hostOf(this.target);
    // Node warns when SNI is an IP (RFC 6066 forbids it), so for IP targets we send
    // a placeholder SNI and verify the certificate against the IP ourselves.
    const nameOverride = this.opts.tlsServerName ?? (net.isIP(host) ? SNI_PLACEHOLDER : undefined);
    this.client = new AgentTunnelClient(this.target, creds, {
      "grpc.max_receive_message_length": 1024 * 1024,
      "grpc.max_send_message_length": 1024 * 1024,
      "grpc-node.flow_control_window": 8 * 1024 * 1024,
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 5_000,
      ...(nameOverride ? { "grpc.ssl_target_name_override": nameOverride } : {}),
    });
    this.state = await loadState(this.opts.dataDir);
    if (this.state && this.state.gateway !== this.target) this.state = null;
    if (!this.state && !this.opts.token) {
      throw new AirlockError("CONFIG_INVALID", `agent is not enrolled (no key in ${this.opts.dataDir}) and no --token was given`);
    }
    void this.loop();
  }

  /** Resolves when the current link is up (used by tests and `airlock dev`). */
  async waitReady(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.connected) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new AirlockError("LINK_TIMEOUT", "agent did not connect in time");
  }

  private async loop(): Promise<void> {
    const backoff = this.opts.backoff ?? new Backoff();
    const log = this.opts.logger;
    while (!this.stopped) {
      const credential: Credential = this.state ? { kind: "key", key: this.state.agentKey } : { kind: "enrollment", token: this.opts.token! };
      const link = new AgentLink(this.client!, credential, log, this.opts.mux, async (ack) => {
        if (ack.agentKey) {
          this.state = { gateway: this.target, agentId: ack.agentId, agentName: ack.agentName, agentKey: ack.agentKey };
          await saveState(this.opts.dataDir, this.state);
          log.info({ agent: ack.agentName, dataDir: this.opts.dataDir }, "enrolled; agent key saved");
        }
        this.connected = true;
      });
      this.link = link.start();
      const end = await link.done;
      this.connected = false;
      if (this.stopped) break;
      if (FATAL_CODES.has(end.error.code)) {
        log.error({ code: end.error.code, err: end.error.message }, "gateway refused this agent; not retrying");
        this.stopped = true;
        this.rejectFinished(end.error);
        return;
      }
      if (end.wasReady) backoff.reset();
      const delay = backoff.next();
      log.warn({ code: end.error.code, err: end.error.message, retryInMs: delay }, "gateway link down; reconnecting");
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    this.resolveFinished();
  }

  async stop(): Promise<void> {
    if (!this.client) this.resolveFinished(); // never started: nothing to wait for
    this.stopped = true;
    this.wake?.();
    this.link?.end(new AirlockError("LINK_LOST", "agent is shutting down"));
    this.client?.close();
    await this.finished.catch(() => {});
  }

  private async credentials(): Promise<grpc.ChannelCredentials> {
    const o = this.opts;
    if (o.insecure) return grpc.credentials.createInsecure();
    let ca: Buffer | null = null;
    if (o.caPem) ca = Buffer.from(o.caPem);
    else if (o.caFile) ca = await readFile(o.caFile);
    else if (o.caPin) ca = Buffer.from(await fetchPinnedCa(this.target, o.caPin, o.tlsServerName));
    const expected = o.tlsServerName ?? hostOf(this.target);
    return grpc.credentials.createSsl(ca, null, null, { checkServerIdentity: (_sni, cert) => tls.checkServerIdentity(expected, cert) });
  }
}

/**
 * Trust on first use, but checked: reads the chain the gateway presents, takes
 * the certificate whose SHA-256 matches the pin printed by `airlock agents
 * create`, and trusts only that CA from then on.
 */
const SNI_PLACEHOLDER = "airlock-gateway.invalid";

function hostOf(target: string): string {
  return target.slice(0, target.lastIndexOf(":")).replace(/^\[|\]$/g, "");
}

export async function fetchPinnedCa(target: string, pin: string, servername?: string): Promise<string> {
  const want = pin.replace(/^sha256:/i, "").toLowerCase().replace(/:/g, "");
  const idx = target.lastIndexOf(":");
  const host = target.slice(0, idx).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(idx + 1));
  const chain = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    const sni = servername ?? (net.isIP(host) ? undefined : host);
    const s = tls.connect({ host, port, ...(sni ? { servername: sni } : {}), rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      const c = s.getPeerCertificate(true);
      s.destroy();
      resolve(c);
    });
    s.once("error", reject);
  });
  const seen = new Set<string>();
  for (let c: tls.DetailedPeerCertificate | undefined = chain; c && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    const digest = createHash("sha256").update(c.raw).digest("hex");
    if (digest === want) return new X509Certificate(c.raw).toString();
  }
  throw new AirlockError("CONFIG_INVALID", `no certificate presented by ${target} matches --ca-pin ${pin}`);
}
