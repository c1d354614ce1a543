// The webhook sink against a real local HTTP server: signed JSON arrays, a
// delivery id that is stable for the same batch, batches capped in bytes, and
// every non-2xx answer (redirects included) a failure that names the status
// but never the secret; 4xx other than 408/429 reported as refusals.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { verifyWebhookSignature } from "../../reviews/notify/signature.js";
import type { SiemEvent } from "./events.js";
import { chunkByBytes, deliveryId, isRefusal, WebhookSink } from "./webhook.js";

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

  it("caps each POST in bytes: a big batch goes out as several requests, an event larger than the cap alone", async () => {
    const r = await receiver((_req, res) => res.writeHead(200).end());
    const ev = (n: number, size: number): SiemEvent => ({ id: `statement:${n}`, type: "statement", time: "2030-01-01T00:00:00.000Z", data: { text: "x".repeat(size) } });
    const batch = [ev(1, 300), ev(2, 300), ev(3, 300), ev(4, 3000), ev(5, 300)];
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000, maxBatchBytes: 1024 });
    expect(await sink.deliver(batch, never)).toEqual({ delivered: 5 });
    const bodies = r.got.map((g) => JSON.parse(g.body) as SiemEvent[]);
    expect(bodies.map((b) => b.map((e) => e.id))).toEqual([["statement:1", "statement:2"], ["statement:3"], ["statement:4"], ["statement:5"]]);
    for (const g of r.got) {
      if (!g.body.includes("statement:4")) expect(Buffer.byteLength(g.body)).toBeLessThanOrEqual(1024);
      // Each request is signed and identified on its own.
      expect(() => verifyWebhookSignature(SECRET, g.headers["x-airlock-signature"] as string, g.body, Math.floor(Date.now() / 1000))).not.toThrow();
    }
    expect(r.got.map((g) => g.headers["x-airlock-delivery"])).toEqual(bodies.map((b) => deliveryId(b)));
    expect(bodies.flat()).toEqual(batch);
  });

  it("chunks exactly up to the cap, and each body is the JSON of its events", () => {
    const ev = (n: number): SiemEvent => ({ id: `e:${n}`, type: "statement", time: "t", data: { é: "ü" } });
    const one = Buffer.byteLength(JSON.stringify([ev(1)]));
    const two = Buffer.byteLength(JSON.stringify([ev(1), ev(2)]));
    expect(chunkByBytes([ev(1), ev(2), ev(3)], two).map((c) => c.events.length)).toEqual([2, 1]);
    expect(chunkByBytes([ev(1), ev(2), ev(3)], two - 1).map((c) => c.events.length)).toEqual([1, 1, 1]);
    expect(chunkByBytes([ev(1)], one - 1).map((c) => c.events.length)).toEqual([1]);
    for (const c of chunkByBytes([ev(1), ev(2), ev(3)], two)) expect(c.body).toBe(JSON.stringify(c.events));
    expect(chunkByBytes([], 10)).toEqual([]);
  });

  it("a refused request (413 for a body over the receiver's limit) is reported as rejected, after the requests that got through", async () => {
    const r = await receiver((req, res) => {
      const body = r.got[r.got.length - 1]!.body;
      if (Buffer.byteLength(body) > 2000) res.writeHead(413).end("request entity too large");
      else res.writeHead(200).end();
    });
    const big: SiemEvent = { id: "statement:big", type: "statement", time: "2030-01-01T00:00:00.000Z", data: { text: "x".repeat(5000) } };
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000, maxBatchBytes: 1500 });
    expect(await sink.deliver([...events, big, events[0]!], never)).toEqual({ delivered: 2, error: "HTTP 413: request entity too large", rejected: 1 });
    // Not tried after the refusal.
    expect(r.got).toHaveLength(2);
  });

  it("counts 4xx but 408 and 429 as refusals; 5xx, redirects and the rest are transport failures", async () => {
    expect([400, 401, 403, 404, 409, 413, 415, 422].every(isRefusal)).toBe(true);
    expect([200, 302, 307, 408, 429, 500, 502, 503, 504].some(isRefusal)).toBe(false);
    let status = 400;
    const r = await receiver((_req, res) => res.writeHead(status).end());
    const sink = new WebhookSink({ name: "w", url: r.url, secret: SECRET, timeoutMs: 5_000 });
    expect(await sink.deliver(events, never)).toEqual({ delivered: 0, error: "HTTP 400", rejected: 2 });
    status = 429;
    expect(await sink.deliver(events, never)).toEqual({ delivered: 0, error: "HTTP 429" });
    status = 503;
    expect(await sink.deliver(events, never)).toEqual({ delivered: 0, error: "HTTP 503" });
  });

  it("rejects a configuration without a secret or with another scheme", () => {
    expect(() => new WebhookSink({ name: "w", url: "http://x", secret: "", timeoutMs: 1 })).toThrow(/secret/);
    expect(() => new WebhookSink({ name: "w", url: "ftp://x", secret: SECRET, timeoutMs: 1 })).toThrow(/http/);
  });
});
