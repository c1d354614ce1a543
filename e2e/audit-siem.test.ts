// SIEM streaming end to end: a gateway with two sinks, a signed webhook and
// syslog over TLS (RFC 5425, the collector's CA configured), both down while
// clients run a burst of SQL through the Postgres front door. The events wait
// in the store's outbox (the status API and `airlock audit sinks` show them and
// why), a second gateway on the same store joins the delivery, the receivers
// come back (the webhook answering 503 for a while first, then losing one
// acknowledgement, so that batch is delivered twice), and then every
// event the store's sessions/statements tables imply arrives at both: at least
// once, exactly once after dedupe by event id, webhooks with valid signatures.
// Then the webhook receiver starts refusing large bodies (413): the one big
// statement's events are dead-lettered while everything else keeps flowing,
// `airlock audit sinks` shows them, and `airlock audit sinks retry` sends them
// once the receiver takes them. Last, an admin disables and re-enables a sink.
// Real gateway and agent processes, the machine's PostgreSQL.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desiredSanNames, generateCa, issueServerCert, type PemPair } from "@airlock/gateway/crypto/tls-gen";
import { runCli } from "./harness/cli-helpers.js";
import { errorOf, GUARDRAILS_CEDAR, startPgEnv, type PgEnv } from "./harness/pg.js";
import { cleanup, eventually, freePort, tempDir } from "./harness/processes.js";
import { startSyslogCollector, startWebhookReceiver, type SyslogCollector, type WebhookReceiver } from "./harness/siem-receivers.js";

const SECRET = `whsec_${randomBytes(16).toString("hex")}`;
const CLIENTS = 4;
const INSERTS = 12;

interface SinkStatus {
  name: string;
  type: string;
  target: string;
  enabled: boolean;
  pending: number;
  oldestPendingSeconds: number | null;
  lastError: string | null;
  deadLettered: number;
  deadLetterError: string | null;
  delivered: number;
}

let env: PgEnv;
let dir = "";
let store: pg.Pool;
let webhookPort = 0;
let syslogPort = 0;
let cert: PemPair;
let hook: WebhookReceiver | undefined;
let collector: SyslogCollector | undefined;

beforeAll(async () => {
  [webhookPort, syslogPort] = [await freePort(), await freePort()];
  const ca = await generateCa();
  cert = await issueServerCert(ca, desiredSanNames());
  dir = await tempDir("airlock-siem-");
  const auditFile = join(dir, "audit.json");
  await writeFile(
    auditFile,
    JSON.stringify({
      sinks: [
        // 8 KiB per POST: batches of 25 events go out as several requests.
        { type: "webhook", name: "siem-webhook", url: `http://127.0.0.1:${webhookPort}/ingest?tenant=t1`, secret: SECRET, batch: 25, batchBytes: 8192 },
        { type: "syslog", name: "siem-syslog", url: `tls://127.0.0.1:${syslogPort}`, caPem: ca.certPem, hostname: "gw-e2e" },
      ],
      // Short retry cap: the receivers come back within seconds, not minutes.
      delivery: { retryMaxSeconds: 0.5, pollMs: 100, deadLetterAfter: 3 },
    }),
  );
  env = await startPgEnv({ name: "siem", policy: { "policy.cedar": GUARDRAILS_CEDAR }, setupSql: "CREATE TABLE t (id int PRIMARY KEY, v text)", env: { AIRLOCK_AUDIT_FILE: auditFile } });
  store = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:5432/${env.database}_store`, max: 2 });
}, 120_000);

afterAll(async () => {
  await hook?.close();
  await collector?.close();
  await store?.end();
  await env?.close();
  if (dir) await cleanup(dir);
});

const sinks = async (token?: string) => (await env.gw.api<{ sinks: SinkStatus[] }>("GET", "/api/v1/audit/sinks", undefined, token)).body.sinks;

/** One client session: inserts, a read, a parameterised query, a denied DDL and a failing statement. */
async function burst(token: string, k: number): Promise<void> {
  const c = await env.connect(token);
  try {
    for (let i = 0; i < INSERTS; i++) await c.query(`INSERT INTO t VALUES (${k * 100 + i}, 'row "${i}" ] \\ é')`);
    await c.query("SELECT count(*) FROM t");
    await c.query("SELECT $1::int AS n", [k]);
    expect((await errorOf(c.query("DROP TABLE t"))).code).toBe("42501");
    expect((await errorOf(c.query("SELECT 1/0"))).code).toBe("22012");
  } finally {
    await c.end();
  }
}

/** The event ids the store's records imply: the triggers queue exactly these. */
async function expectedIds(): Promise<string[]> {
  const sessions = (await store.query<{ id: string }>("SELECT id FROM sessions")).rows;
  const statements = (await store.query<{ id: string; status: string }>("SELECT id, status FROM statements")).rows;
  // Denied statements are recorded as such (never pending), so they have no completion event.
  expect(statements.map((s) => s.status).filter((s) => !["ok", "error", "denied"].includes(s))).toEqual([]);
  return [
    ...sessions.flatMap((s) => [`session.start:${s.id}`, `session.end:${s.id}`]),
    ...statements.flatMap((s) => (s.status === "denied" ? [`statement:${s.id}`] : [`statement:${s.id}`, `statement.end:${s.id}`])),
  ].sort();
}

const unique = (ids: string[]) => [...new Set(ids)].sort();

/** The receivers as the first test leaves them (up), so that each later test also runs on its own. */
async function receiversUp(): Promise<{ hook: WebhookReceiver; collector: SyslogCollector }> {
  hook ??= await startWebhookReceiver(webhookPort, SECRET);
  hook.up = true;
  collector ??= await startSyslogCollector(syslogPort, cert);
  return { hook, collector };
}

describe("SIEM streaming with a durable outbox", () => {
  it("sinks down for a while, then back: every event arrives, exactly once after dedupe by event id; none lost", async () => {
    const token = await env.token("alice", ["developers"]);
    // 1. Both sinks unreachable (nothing listens on either port) during the burst.
    await Promise.all(Array.from({ length: CLIENTS }, (_, k) => burst(token, k + 1)));
    await eventually(async () => {
      const open = (await store.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL")).rows[0]!.n;
      const pending = (await store.query<{ n: number }>("SELECT count(*)::int AS n FROM statements WHERE status = 'pending'")).rows[0]!.n;
      return open === 0 && pending === 0;
    }, 20_000, "sessions ended and statements completed");
    const expected = await expectedIds();
    expect(expected.filter((id) => id.startsWith("session.start:"))).toHaveLength(CLIENTS);
    expect(expected.length).toBe(CLIENTS * (2 + 2 * (INSERTS + 4) - 1));

    // 2. Everything waits in the outbox, and the status says why.
    const down = await eventually(async () => {
      const s = await sinks();
      return s.every((x) => x.pending === expected.length && x.lastError) ? s : null;
    }, 20_000, "both sinks failing with every event pending");
    expect(down.map((s) => [s.name, s.type, s.target, s.delivered])).toEqual([
      ["siem-syslog", "syslog", `tls://127.0.0.1:${syslogPort}`, 0],
      // The query string (it may carry a token) is not shown.
      ["siem-webhook", "webhook", `http://127.0.0.1:${webhookPort}`, 0],
    ]);
    for (const s of down) expect(s.lastError).toMatch(/ECONNREFUSED/);
    const cli = await runCli(["audit", "sinks"], { AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: env.gw.adminToken });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`siem-webhook\\s+webhook\\s+http://127\\.0\\.0\\.1:${webhookPort}\\s+on\\s+${expected.length}\\s+0\\s`));
    expect(cli.stdout).toMatch(/ECONNREFUSED/);
    expect(cli.stdout).not.toContain(SECRET);
    // Sink status is for admins and auditors.
    expect((await env.gw.api("GET", "/api/v1/audit/sinks", undefined, token)).status).toBe(403);

    // 3. A second gateway on the same store joins; the webhook comes back answering 503 for a while.
    await env.startPeerGateway();
    hook = await startWebhookReceiver(webhookPort, SECRET);
    await eventually(async () => hook!.refused >= 3, 20_000, "the webhook receiver refusing deliveries");
    hook.loseAcks = 1;
    hook.up = true;
    collector = await startSyslogCollector(syslogPort, cert);

    // 4. Every event arrives at both.
    await eventually(async () => unique(hook!.events.map((e) => e.id)).length >= expected.length, 30_000, "every webhook event");
    await eventually(async () => unique(collector!.messages.map((m) => m.sd.event_id!)).length >= expected.length, 30_000, "every syslog event");
    await eventually(async () => (await sinks()).every((s) => s.pending === 0), 20_000, "empty outbox");

    expect(hook.problems).toEqual([]);
    expect(collector.problems).toEqual([]);
    // Exactly once after dedupe: the same set, nothing lost and nothing invented.
    expect(unique(hook.events.map((e) => e.id))).toEqual(expected);
    expect(unique(collector.messages.map((m) => m.sd.event_id!))).toEqual(expected);
    // At least once: the batch whose acknowledgement was lost came again.
    expect(hook.loseAcks).toBe(0);
    expect(hook.events.length).toBeGreaterThan(expected.length);
    // Every copy of an event is the same event.
    const first = new Map(hook.events.map((e) => [e.id, e]));
    for (const e of hook.events) expect(e).toEqual(first.get(e.id));
    // Capped at 8 KiB per POST (no single event is that large here).
    expect(Math.max(...hook.bodySizes)).toBeLessThanOrEqual(8192);
    for (const e of first.values()) {
      const [type, id] = [e.id.slice(0, e.id.indexOf(":")), e.id.slice(e.id.indexOf(":") + 1)];
      expect(e.type).toBe(type);
      expect(e.data.id).toBe(id);
      expect(e.data.subject).toBe("alice");
      expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    }
    const inserts = [...first.values()].filter((e) => e.type === "statement" && String(e.data.text).startsWith("INSERT"));
    expect(inserts).toHaveLength(CLIENTS * INSERTS);
    expect(inserts.map((e) => e.data.text)).toContain(`INSERT INTO t VALUES (100, 'row "0" ] \\ é')`);
    const denied = [...first.values()].filter((e) => e.type === "statement" && e.data.decision === "deny");
    expect(denied.map((e) => [e.data.status, e.data.rule])).toEqual(Array(CLIENTS).fill(["denied", "no-ddl"]));

    for (const m of collector.messages) {
      const e = first.get(m.sd.event_id!)!;
      expect(m).toMatchObject({ app: "airlock", hostname: "gw-e2e", msgid: e.type, sd: { subject: "alice" } });
      expect(m.sd.session).toBe(e.type.startsWith("session.") ? e.data.id : e.data.session_id);
      // MSG is the record itself; denials are notices (PRI 13*8+5), the rest informational.
      expect(m.msg).toEqual(e.data);
      expect(m.pri).toBe(e.data.decision === "deny" ? 109 : 110);
    }
  }, 180_000);

  it("an event the receiver keeps refusing is dead-lettered, the rest flows, and `audit sinks retry` sends it once it is taken", async () => {
    const admin = { AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: env.gw.adminToken };
    const { hook, collector } = await receiversUp();
    const token = await env.token("alice", ["developers"]);
    // The receiver now refuses bodies over 16 KiB; the sink sends at most 8 KiB, except an event that alone is larger.
    hook.maxBodyBytes = 16 * 1024;
    const c = await env.connect(token);
    try {
      await c.query(`SELECT length('${"y".repeat(64 * 1024)}') AS n`);
      for (let i = 0; i < 5; i++) await c.query(`INSERT INTO t VALUES (${1000 + i}, 'after the big one')`);
    } finally {
      await c.end();
    }
    const big = (await store.query<{ id: string }>("SELECT id FROM statements WHERE text LIKE 'SELECT length(%'")).rows.map((r) => r.id);
    expect(big).toHaveLength(1);
    // The statement and its completion both carry the 64 KiB text.
    const bigIds = [`statement:${big[0]}`, `statement.end:${big[0]}`].sort();
    const dead = await eventually(async () => {
      const s = (await sinks()).find((x) => x.name === "siem-webhook")!;
      const ended = (await store.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL")).rows[0]!.n === 0;
      return ended && s.deadLettered === 2 && s.pending === 0 ? s : null;
    }, 60_000, "the big statement's two events dead-lettered, every other event delivered");
    expect(dead.deadLetterError).toMatch(/^dead-letter: refused 3 times: HTTP 413/);
    expect(hook.tooLarge).toBeGreaterThanOrEqual(6);
    const expected = await expectedIds();
    const got = new Set(hook.events.map((e) => e.id));
    // Everything but the two refused events reached the webhook, the session's later statements included.
    expect(expected.filter((id) => !got.has(id))).toEqual(bigIds);
    // Syslog has no such limit: it has them all.
    await eventually(async () => unique(collector.messages.map((m) => m.sd.event_id!)).length === expected.length, 20_000, "every syslog event");

    const cli = await runCli(["audit", "sinks"], admin);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/siem-webhook\s+webhook\s+\S+\s+on\s+0\s+2\s/);
    expect(cli.stdout).toContain("airlock audit sinks retry NAME");
    // Admins only.
    expect((await env.gw.api("POST", "/api/v1/audit/sinks/siem-webhook/retry", undefined, token)).status).toBe(403);

    // The receiver's limit is raised; retry sends the dead letters.
    hook.maxBodyBytes = Infinity;
    const retry = await runCli(["audit", "sinks", "retry", "siem-webhook"], admin);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toContain("2 dead-lettered event(s) of siem-webhook are due again");
    await eventually(async () => (await sinks()).every((s) => s.pending === 0 && s.deadLettered === 0), 20_000, "dead letters delivered");
    expect(unique(hook.events.map((e) => e.id))).toEqual(expected);
    expect(hook.problems).toEqual([]);
  }, 120_000);

  it("an admin disables a sink (nothing is queued for it) and enables it again", async () => {
    const { hook, collector } = await receiversUp();
    const admin = { AIRLOCK_URL: env.gw.apiUrl, AIRLOCK_TOKEN: env.gw.adminToken };
    const token = await env.token("alice", ["developers"]);
    const marker = async (text: string) => {
      const c = await env.connect(token);
      try {
        await c.query(`SELECT '${text}' AS marker`);
      } finally {
        await c.end();
      }
      const rows = (await store.query<{ id: string }>("SELECT id FROM statements WHERE text LIKE $1", [`%${text}%`])).rows;
      expect(rows).toHaveLength(1);
      return `statement:${rows[0]!.id}`;
    };
    const off = await runCli(["audit", "sinks", "disable", "siem-syslog"], admin);
    expect(off.code, off.stderr).toBe(0);
    expect((await sinks()).find((s) => s.name === "siem-syslog")).toMatchObject({ enabled: false });
    const whileOff = await marker("while syslog is off");
    await eventually(async () => hook.events.some((e) => e.id === whileOff), 20_000, "the webhook getting the statement");
    await eventually(async () => {
      const ended = (await store.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL")).rows[0]!.n === 0;
      return ended && (await sinks()).every((s) => s.pending === 0);
    }, 20_000, "empty outbox");
    // Never queued for syslog: not delivered, and not waiting.
    expect(collector.messages.some((m) => m.sd.event_id === whileOff)).toBe(false);

    const on = await runCli(["audit", "sinks", "enable", "siem-syslog"], admin);
    expect(on.code, on.stderr).toBe(0);
    const afterOn = await marker("syslog is on again");
    await eventually(async () => collector.messages.some((m) => m.sd.event_id === afterOn) && hook.events.some((e) => e.id === afterOn), 20_000, "both sinks getting the statement");
  }, 60_000);
});
