// The webhook sink against a real local HTTP server: signed JSON arrays, a
// delivery id that is stable for the same batch, and every non-2xx answer
// (redirects included) a failure that names the status but never the secret.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { verifyWebhookSignature } from "../../reviews/notify/signature.js";
import type { SiemEvent } from "./events.js";
import { deliveryId, WebhookSink } from "./webhook.js";

const SECRET = "whsec_siem_test_secret_0123";
const never = new AbortController().signal;

const servers: Array<() => void> = [];
afterEach(() => {
  for (const close of servers.splice(0)) close();
});

async function receiver(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const got: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      handler(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/airlock?token=abc`, got };
}

/** A port nothing listens on (fetch refuses well-known ports like 1 outright). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const events: SiemEvent[] = [
  { id: "session.start:1", type: "session.start", time: "2030-01-01T00:00:00.000Z", data: { id: "1", subject: "alice" } },
  { id: "statement:2", type: "statement", time: "2030-01-01T00:00:01.000Z", data: { id: "2", session_id: "1", text: "select 'é'" } },
];

describe("WebhookSink", () => {
  it("POSTs the events as a signed JSON array and counts a 2xx as delivered", async () => {
    const r = await receiver((_req, res) => res.writeHead(204).end());
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000 });
    expect(await sink.deliver(events, never)).toEqual({ delivered: 2 });
    const [req] = r.got;
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req!.body)).toEqual(events);
    expect(req!.headers["x-airlock-delivery"]).toBe(deliveryId(events));
    expect(() => verifyWebhookSignature(SECRET, req!.headers["x-airlock-signature"] as string, req!.body, Math.floor(Date.now() / 1000))).not.toThrow();
    // The origin is what status pages show: no path, no query token.
    expect(sink.target).toBe(new URL(r.url).origin);
  });

  it("the delivery id is the same for the same batch and differs for another", () => {
    expect(deliveryId(events)).toBe(deliveryId(events.map((e) => ({ ...e }))));
    expect(deliveryId(events)).not.toBe(deliveryId(events.slice(0, 1)));
  });

  it("fails on 5xx with the status and the start of the answer", async () => {
    const r = await receiver((_req, res) => res.writeHead(503).end("collector is down for maintenance"));
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000 });
    const res = await sink.deliver(events, never);
    expect(res).toEqual({ delivered: 0, error: "HTTP 503: collector is down for maintenance" });
  });

  it("does not follow redirects", async () => {
    let followed = 0;
    const target = await receiver((_req, res) => (followed++, res.end()));
    const r = await receiver((_req, res) => res.writeHead(307, { location: target.url }).end());
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000 });
    const res = await sink.deliver(events, never);
    expect(res.delivered).toBe(0);
    expect(res.error).toContain("redirects are not followed");
    expect(followed).toBe(0);
  });

  it("gives up on a receiver that does not answer, and on a closed port, without quoting the secret or URL", async () => {
    const r = await receiver(() => {});
    const slow = await new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 200 }).deliver(events, never);
    expect(slow).toEqual({ delivered: 0, error: "timed out" });
    const port = await closedPort();
    const closed = await new WebhookSink({ name: "w", url: `http://127.0.0.1:${port}/x?token=abc`, secret: SECRET, timeoutMs: 2_000 }).deliver(events, never);
    expect(closed.delivered).toBe(0);
    expect(closed.error).toMatch(/ECONNREFUSED/);
    for (const e of [slow.error, closed.error]) {
      expect(e).not.toContain(SECRET);
      expect(e).not.toContain("token=abc");
    }
  });

  it("rejects a configuration without a secret or with another scheme", () => {
    expect(() => new WebhookSink({ name: "w", url: "http://x", secret: "", timeoutMs: 1 })).toThrow(/secret/);
    expect(() => new WebhookSink({ name: "w", url: "ftp://x", secret: SECRET, timeoutMs: 1 })).toThrow(/http/);
  });
});
