// SIEM receivers for e2e/audit-siem.test.ts: a webhook endpoint that can be
// down (503) or up, checks every signature and can refuse bodies over a size
// limit (413), and a syslog-over-TLS
// collector parsing octet-counted frames. Both keep every event as received
// (duplicates included) so tests can check at-least-once and dedupe.
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import tls from "node:tls";
import { parseFrames } from "@airlock/gateway/audit/siem/syslog-format";
import { verifyWebhookSignature } from "@airlock/gateway/reviews/notify/signature";

export interface ReceivedEvent {
  id: string;
  type: string;
  time: string;
  data: Record<string, unknown>;
}

export interface WebhookReceiver {
  /** Events from accepted deliveries, in arrival order, duplicates kept. */
  events: ReceivedEvent[];
  /** Deliveries answered 503 while down. */
  refused: number;
  /** Signature or body problems (must stay empty). */
  problems: string[];
  deliveryIds: string[];
  /** Body size of each accepted delivery. */
  bodySizes: number[];
  up: boolean;
  /** While > 0, an accepted delivery is kept but answered 500 (the acknowledgement is lost): the gateway must send it again. */
  loseAcks: number;
  /** Larger bodies are refused with 413 (as real receivers do); Infinity by default. */
  maxBodyBytes: number;
  /** Deliveries refused for their size. */
  tooLarge: number;
  close(): Promise<void>;
}

/** Listens on `port` (the gateway was pointed at it while nothing listened), down at first. */
export async function startWebhookReceiver(port: number, secret: string): Promise<WebhookReceiver> {
  const r: WebhookReceiver = { events: [], refused: 0, problems: [], deliveryIds: [], bodySizes: [], up: false, loseAcks: 0, maxBodyBytes: Infinity, tooLarge: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (!r.up) {
        r.refused++;
        res.writeHead(503).end("maintenance");
        return;
      }
      const raw = Buffer.concat(chunks);
      if (raw.byteLength > r.maxBodyBytes) {
        r.tooLarge++;
        res.writeHead(413).end("request entity too large");
        return;
      }
      const body = raw.toString("utf8");
      try {
        verifyWebhookSignature(secret, req.headers["x-airlock-signature"] as string | undefined, body, Math.floor(Date.now() / 1000));
        const batch = JSON.parse(body) as ReceivedEvent[];
        if (!Array.isArray(batch) || !batch.length) throw new Error("body is not a non-empty array");
        if (req.headers["content-type"] !== "application/json") throw new Error(`content-type ${req.headers["content-type"]}`);
        r.deliveryIds.push(String(req.headers["x-airlock-delivery"]));
        r.bodySizes.push(raw.byteLength);
        r.events.push(...batch);
        if (r.loseAcks > 0) {
          r.loseAcks--;
          res.writeHead(500).end("stored, but the answer is lost");
        } else res.writeHead(200).end();
      } catch (err) {
        r.problems.push((err as Error).message);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  r.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

export interface SyslogMessage {
  pri: number;
  timestamp: string;
  hostname: string;
  app: string;
  msgid: string;
  sd: Record<string, string>;
  msg: Record<string, unknown>;
}

export interface SyslogCollector {
  messages: SyslogMessage[];
  problems: string[];
  close(): Promise<void>;
}

const HEADER = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[airlock@32473((?: [a-z_]+="(?:[^"\\\]]|\\["\\\]])*")*)\] (.*)$/s;

/** Reads one RFC 5424 message as the gateway writes it (one SD element, JSON MSG). */
export function parseSyslog(text: string): SyslogMessage {
  const m = HEADER.exec(text);
  if (!m) throw new Error(`not an airlock RFC 5424 message: ${text.slice(0, 120)}`);
  const sd: Record<string, string> = {};
  for (const p of m[7]!.matchAll(/ ([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"/g)) sd[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, "$1");
  return { pri: Number(m[1]), timestamp: m[2]!, hostname: m[3]!, app: m[4]!, msgid: m[6]!, sd, msg: JSON.parse(m[8]!) as Record<string, unknown> };
}

/** A TLS syslog collector (RFC 5425) on `port` with the given certificate. */
export async function startSyslogCollector(port: number, cert: { certPem: string; keyPem: string }): Promise<SyslogCollector> {
  const c: SyslogCollector = { messages: [], problems: [], close: async () => {} };
  const sockets = new Set<Socket>();
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      try {
        const r = parseFrames(Buffer.concat([buf, d]));
        buf = Buffer.from(r.rest);
        for (const text of r.messages) c.messages.push(parseSyslog(text));
      } catch (err) {
        c.problems.push((err as Error).message);
        s.destroy();
      }
    });
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  c.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return c;
}
