// /api/v1/audit/sinks in a real fastify app with the real auth plugin, on an
// embedded PGlite store with SiemForwarding running against a webhook that is
// not there: admins and auditors see the queue, why it is stuck and what was
// dead-lettered, others are refused, and the sink's URL path and secret never
// show. Admins (only) make dead letters due again and disable/enable a sink.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessTokenService } from "../auth/access-tokens.js";
import type { Role } from "../auth/principal.js";
import { SiemForwarding, type SinkStatusView } from "../audit/siem/index.js";
import { tokenOnlyIdentity } from "../identity/verify.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { openStore, type Store } from "../store/index.js";
import { authPlugin } from "./auth.js";
import { installProblemHandler } from "./problem.js";
import { auditSinkRoutes } from "./routes-audit-sinks.js";

const logger = pino({ level: "silent" });
const SECRET = "whsec_route_test_secret_0123";
let dir: string;
let store: Store;
let siem: SiemForwarding;
let rec: SessionRecorder;
let app: ReturnType<typeof Fastify>;
let port = 0;
const tokens: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-sinks-api-"));
  store = await openStore({ dataDir: dir, logger });
  // A port nothing listens on: every delivery fails.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  siem = await SiemForwarding.start({
    sinks: [{ type: "webhook", name: "hook", url: `http://127.0.0.1:${port}/in/TOKENPATH`, secret: SECRET }],
    delivery: { pollMs: 20, retryMaxSeconds: 0.05 },
    retryBaseMs: 10,
    sql: (text, params) => store.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(text, ...params),
    log: logger,
  });
  rec = new SessionRecorder(store, logger);
  const id = await rec.start({ subject: "alice", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
  await rec.finish(id, { bytesUp: 0, bytesDown: 0, outcome: "ok" });
  const access = new AccessTokenService(store, { defaultTtlSeconds: 600, maxTtlSeconds: 3600 });
  for (const role of ["admin", "auditor", "user"] as const) tokens[role] = (await access.mint({ subject: `${role}-1`, roles: [role] })).token;
  const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandler(a);
  await a.register(authPlugin, { identity: await tokenOnlyIdentity(store, access, logger) });
  await a.register(async (v1) => v1.register(auditSinkRoutes, { siem }), { prefix: "/api/v1" });
  app = a as unknown as ReturnType<typeof Fastify>;
});

afterAll(async () => {
  await app?.close();
  await siem?.stop();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (role: Role) => app.inject({ method: "GET", url: "/api/v1/audit/sinks", headers: { authorization: `Bearer ${tokens[role]}` } });

describe("GET /api/v1/audit/sinks", () => {
  it("shows auditors and admins what waits and why, without the URL path or secret", async () => {
    let sinks: SinkStatusView[] = [];
    for (let i = 0; i < 200; i++) {
      sinks = ((await get("auditor")).json() as { sinks: SinkStatusView[] }).sinks;
      if (sinks[0]?.lastError) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(sinks).toHaveLength(1);
    expect(sinks[0]).toMatchObject({ name: "hook", type: "webhook", target: `http://127.0.0.1:${port}`, configured: true, enabled: true, pending: 2, delivered: 0, deadLettered: 0, deadLetterError: null });
    expect(sinks[0]!.lastError).toMatch(/ECONNREFUSED/);
    expect(sinks[0]!.oldestPendingSeconds).toBeGreaterThanOrEqual(0);
    const admin = await get("admin");
    expect(admin.statusCode).toBe(200);
    expect(admin.body).not.toContain("TOKENPATH");
    expect(admin.body).not.toContain(SECRET);
  });

  it("refuses everyone else", async () => {
    const r = await get("user");
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ code: "PERMISSION_DENIED" });
  });
});

const post = (role: Role, path: string) => app.inject({ method: "POST", url: `/api/v1/audit/sinks/${path}`, headers: { authorization: `Bearer ${tokens[role]}` } });
const hookStatus = async () => ((await get("admin")).json() as { sinks: SinkStatusView[] }).sinks.find((s) => s.name === "hook")!;

describe("POST /api/v1/audit/sinks/:name/{retry,disable,enable}", () => {
  it("shows dead letters apart from pending events, and retry makes them due again (admins)", async () => {
    // What the forwarder leaves behind after the receiver refused an event deadLetterAfter times.
    await store.prisma.$executeRawUnsafe(
      `INSERT INTO audit_outbox (sink, event_id, type, payload, next_attempt_at, last_error)
       VALUES ('hook', 'statement:x', 'statement', '{}'::jsonb, 'infinity', 'dead-letter: refused 20 times: HTTP 413: too large')`,
    );
    const before = await hookStatus();
    expect(before).toMatchObject({ deadLettered: 1, deadLetterError: "dead-letter: refused 20 times: HTTP 413: too large" });
    expect((await post("auditor", "hook/retry")).statusCode).toBe(403);
    const r = await post("admin", "hook/retry");
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ name: "hook", requeued: 1 });
    const after = await hookStatus();
    expect(after).toMatchObject({ deadLettered: 0, deadLetterError: null, pending: before.pending + 1 });
    expect((await post("admin", "hook/retry")).json()).toEqual({ name: "hook", requeued: 0 });
  });

  it("disable stops the queueing for a sink and enable starts it again (admins); unknown sinks are 404", async () => {
    expect((await post("auditor", "hook/disable")).statusCode).toBe(403);
    expect((await post("user", "hook/disable")).statusCode).toBe(403);
    const off = await post("admin", "hook/disable");
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ name: "hook", enabled: false, configured: true });
    const pending = (await hookStatus()).pending;
    const id = await rec.start({ subject: "bob", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
    await rec.finish(id, { bytesUp: 0, bytesDown: 0, outcome: "ok" });
    // Nothing queued for bob's session.
    expect(await hookStatus()).toMatchObject({ enabled: false, pending });
    const on = await post("admin", "hook/enable");
    expect(on.statusCode).toBe(200);
    expect(on.json()).toMatchObject({ name: "hook", enabled: true });
    const id2 = await rec.start({ subject: "carol", tokenId: null, connectionId: null, agentId: null, connectionName: "db", protocol: "postgres", clientAddr: null });
    await rec.finish(id2, { bytesUp: 0, bytesDown: 0, outcome: "ok" });
    expect(await hookStatus()).toMatchObject({ enabled: true, pending: pending + 2 });
    for (const path of ["nope/disable", "nope/enable", "nope/retry"]) {
      const r = await post("admin", path);
      expect(r.statusCode).toBe(404);
      expect(r.json()).toMatchObject({ code: "NOT_FOUND" });
    }
  });
});
