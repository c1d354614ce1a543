import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AirlockError, type Logger } from "@airlock/shared";
import { afterEach, describe, expect, it } from "vitest";
import { review } from "./fixtures.js";
import { ReviewNotifier } from "./notifier.js";
import type { ReviewSummary } from "./types.js";

const SECRET = "whsec_notify_test_secret";
// Slack incoming-webhook URLs carry their secret in the path.
const SLACK_PATH = "/services/T000/B000/SLACKPATHTOKEN";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const servers: Array<{ close: () => void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function receiver(handler: Handler = (_req, res) => res.end("ok")) {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      handler(req, res, requests.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  servers.push({ close });
  return { base, requests };
}

function recordingLog() {
  const calls: Array<{ level: string; obj: unknown; msg: string }> = [];
  const rec = (level: string) => (obj: unknown, msg: string) => void calls.push({ level, obj, msg });
  const log = { info: rec("info"), warn: rec("warn"), error: rec("error"), debug: rec("debug") } as unknown as Logger;
  return { log, calls, dump: () => JSON.stringify(calls) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("ReviewNotifier deliveries", () => {
  it("POSTs a generic body signed as documented (checked with an independent HMAC)", async () => {
    const srv = await receiver();
    const { log } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log });
    const before = Math.floor(Date.now() / 1000);
    n.notify("review.created", review);
    await n.flush();

    expect(srv.requests).toHaveLength(1);
    const { headers, body, path } = srv.requests[0]!;
    expect(path).toBe("/hook");
    expect(headers["content-type"]).toBe("application/json");
    expect(headers["x-airlock-event"]).toBe("review.created");
    expect(headers["x-airlock-delivery"]).toMatch(UUID);
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(headers["x-airlock-signature"]));
    expect(m).not.toBeNull();
    const t = Number(m![1]);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(before + 5);
    const expected = createHmac("sha256", SECRET).update(`${t}.${body}`).digest();
    expect(timingSafeEqual(expected, Buffer.from(m![2]!, "hex"))).toBe(true);
    const parsed = JSON.parse(body);
    expect(parsed.type).toBe("review.created");
    expect(parsed.review).toEqual(review);
    expect(Number.isNaN(Date.parse(parsed.at))).toBe(false);
    expect(n.stats).toEqual({ delivered: 1, failed: 0, dropped: 0 });
  });

  it("POSTs the Slack message to a slack target, unsigned and without the secret", async () => {
    const srv = await receiver();
    const { log, dump } = recordingLog();
    const n = new ReviewNotifier(
      [{ url: `${srv.base}${SLACK_PATH}`, format: "slack", secret: SECRET }, { url: `${srv.base}/generic`, format: "generic", secret: SECRET }],
      { log },
    );
    n.notify("review.approved", { ...review, status: "approved", decidedBy: ["bob"] });
    await n.flush();

    expect(srv.requests).toHaveLength(2);
    const slack = srv.requests.find((r) => r.path === SLACK_PATH)!;
    expect(slack.headers["content-type"]).toBe("application/json");
    expect(slack.headers["x-airlock-signature"]).toBeUndefined();
    const msg = JSON.parse(slack.body);
    expect(typeof msg.text).toBe("string");
    expect(msg.blocks[0].type).toBe("header");
    expect(slack.body).not.toContain(SECRET);
    expect(n.stats.delivered).toBe(2);
    // Logs name targets by origin only: neither the path token nor the secret.
    expect(dump()).toContain(srv.base);
    expect(dump()).not.toContain("SLACKPATHTOKEN");
    expect(dump()).not.toContain(SECRET);
  });

  it("retries 5xx and 429 with backoff, keeping the delivery id, then succeeds", async () => {
    const srv = await receiver((_req, res, i) => {
      res.statusCode = i === 1 ? 500 : i === 2 ? 429 : 200;
      res.end(i < 3 ? "busy" : "ok");
    });
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log });
    const started = Date.now();
    n.notify("review.created", review);
    await n.flush();

    expect(srv.requests).toHaveLength(3);
    // 500 ms after the first failure, 1 s after the second.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    const ids = new Set(srv.requests.map((r) => r.headers["x-airlock-delivery"]));
    expect(ids.size).toBe(1);
    // Each attempt is signed afresh and verifies on its own.
    for (const r of srv.requests) {
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers["x-airlock-signature"]))!;
      expect(createHmac("sha256", SECRET).update(`${t}.${r.body}`).digest("hex")).toBe(v1);
    }
    expect(n.stats).toEqual({ delivered: 1, failed: 0, dropped: 0 });
    const warns = calls.filter((c) => c.level === "warn");
    expect(warns).toHaveLength(2);
    expect(warns[0]!.obj).toMatchObject({ reason: "HTTP 500: busy", retryInMs: 500, attempt: 1 });
    expect(warns[1]!.obj).toMatchObject({ reason: "HTTP 429: busy", retryInMs: 1000, attempt: 2 });
  });

  it("does not retry a 4xx answer", async () => {
    const srv = await receiver((_req, res) => {
      res.statusCode = 400;
      res.end("invalid_payload");
    });
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}${SLACK_PATH}`, format: "slack" }], { log });
    n.notify("review.created", review);
    await n.flush();

    expect(srv.requests).toHaveLength(1);
    expect(n.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    const err = calls.find((c) => c.level === "error")!;
    expect(err.msg).toBe("review notification was refused");
    expect(err.obj).toMatchObject({ reason: "HTTP 400: invalid_payload" });
  });

  it("does not follow redirects", async () => {
    const srv = await receiver((_req, res) => {
      res.writeHead(307, { location: "/elsewhere" });
      res.end();
    });
    const { log } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log });
    n.notify("review.created", review);
    await n.flush();

    expect(srv.requests.map((r) => r.path)).toEqual(["/hook"]);
    expect(n.stats.failed).toBe(1);
  });

  it("times out a receiver that never answers", async () => {
    const srv = await receiver(() => {
      /* hangs */
    });
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log, timeoutMs: 200, retries: 0 });
    const started = Date.now();
    n.notify("review.created", review);
    await n.flush();

    expect(Date.now() - started).toBeLessThan(2000);
    expect(srv.requests).toHaveLength(1);
    expect(n.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(calls.find((c) => c.level === "error")).toMatchObject({ msg: "review notification failed; giving up", obj: { reason: "timed out" } });
  });

  it("retries network errors, then gives up", async () => {
    const srv = await receiver();
    const url = `${srv.base}/hook`;
    servers.pop()!.close(); // nothing listens there any more
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url, format: "generic", secret: SECRET }], { log, retries: 1 });
    n.notify("review.expired", review);
    await n.flush();

    expect(n.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(calls.filter((c) => c.level === "warn")).toHaveLength(1);
    expect(calls.find((c) => c.level === "error")!.obj).toMatchObject({ attempt: 2, reason: expect.stringContaining("ECONNREFUSED") });
  });
});

describe("ReviewNotifier queueing", () => {
  it("never blocks or throws in notify", async () => {
    const srv = await receiver();
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log });
    n.notify("review.created", review);
    // Returned before any request could reach the receiver.
    expect(srv.requests).toHaveLength(0);
    expect(() => n.notify("review.created", null as unknown as ReviewSummary)).not.toThrow();
    await n.flush();
    expect(srv.requests).toHaveLength(1);
    expect(n.stats).toEqual({ delivered: 1, failed: 1, dropped: 0 });
    expect(calls.some((c) => c.level === "error" && c.msg === "review notification could not be rendered")).toBe(true);
  });

  it("bounds the queue: overflow is dropped, counted and logged once", async () => {
    const held: ServerResponse[] = [];
    const srv = await receiver((_req, res) => void held.push(res));
    const { log, calls } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log, maxQueue: 3 });
    for (let i = 0; i < 5; i++) n.notify("review.created", { ...review, id: `r${i}` });

    expect(n.stats).toEqual({ delivered: 0, failed: 0, dropped: 2 });
    expect(calls.filter((c) => c.level === "warn" && c.msg.includes("queue is full"))).toHaveLength(1);
    await expect.poll(() => held.length).toBe(3);
    for (const res of held) res.end("ok");
    await n.flush();
    expect(n.stats).toEqual({ delivered: 3, failed: 0, dropped: 2 });
    expect(srv.requests.map((r) => JSON.parse(r.body).review.id).sort()).toEqual(["r0", "r1", "r2"]);
    // Room again once delivered.
    n.notify("review.created", review);
    await expect.poll(() => held.length).toBe(4);
    held[3]!.end("ok");
    await n.flush();
    expect(n.stats.delivered).toBe(4);
  });

  it("keeps at most 4 deliveries in flight", async () => {
    let open = 0;
    let peak = 0;
    const srv = await receiver((_req, res) => {
      open++;
      peak = Math.max(peak, open);
      setTimeout(() => {
        open--;
        res.end("ok");
      }, 60);
    });
    const { log } = recordingLog();
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log });
    for (let i = 0; i < 10; i++) n.notify("review.created", { ...review, id: `r${i}` });
    await n.flush();

    expect(srv.requests).toHaveLength(10);
    expect(peak).toBe(4);
    expect(n.stats.delivered).toBe(10);
  });

  it("flush waits for what was queued, and resolves at once when idle", async () => {
    const n0 = new ReviewNotifier([], { log: recordingLog().log });
    n0.notify("review.created", review);
    await n0.flush();
    expect(n0.stats).toEqual({ delivered: 0, failed: 0, dropped: 0 });

    const srv = await receiver((_req, res) => setTimeout(() => res.end("ok"), 150));
    const n = new ReviewNotifier([{ url: `${srv.base}/hook`, format: "generic", secret: SECRET }], { log: recordingLog().log });
    n.notify("review.created", review);
    n.notify("review.approved", review);
    let flushed = false;
    const f = n.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(flushed).toBe(false);
    await f;
    expect(n.stats.delivered).toBe(2);
  });
});

describe("ReviewNotifier configuration", () => {
  function configError(fn: () => unknown): AirlockError {
    try {
      fn();
    } catch (err) {
      if (AirlockError.is(err)) return err;
      throw err;
    }
    throw new Error("expected a configuration error");
  }
  const log = recordingLog().log;

  it("accepts only http(s) URLs and never quotes them back", () => {
    const err = configError(() => new ReviewNotifier([{ url: "ftp://files.example.com/SLACKPATHTOKEN", format: "slack" }], { log }));
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.message).toMatch(/http\(s\)/);
    expect(err.message).not.toContain("SLACKPATHTOKEN");
    expect(configError(() => new ReviewNotifier([{ url: "not a url SLACKPATHTOKEN", format: "slack" }], { log })).message).not.toContain("SLACKPATHTOKEN");
  });

  it("requires a secret for the generic format and a known format", () => {
    expect(configError(() => new ReviewNotifier([{ url: "https://h.example.com/", format: "generic" }], { log })).code).toBe("CONFIG_INVALID");
    expect(configError(() => new ReviewNotifier([{ url: "https://h.example.com/", format: "xml" as "slack" }], { log })).code).toBe("CONFIG_INVALID");
  });

  it("rejects nonsensical limits", () => {
    const t = [{ url: "https://h.example.com/", format: "slack" as const }];
    expect(configError(() => new ReviewNotifier(t, { log, retries: -1 })).code).toBe("CONFIG_INVALID");
    expect(configError(() => new ReviewNotifier(t, { log, maxQueue: 0 })).code).toBe("CONFIG_INVALID");
    expect(configError(() => new ReviewNotifier(t, { log, timeoutMs: 0 })).code).toBe("CONFIG_INVALID");
  });
});
