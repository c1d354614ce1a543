// The writer side of tamper evidence against a real store (PGlite, as
// `airlock dev` uses): sessions and statements recorded through the real
// SessionRecorder and StatementLog verify with the published keys; a store
// that refuses a record leaves a signed tombstone; a crashed session is
// recovered with a "recovered" checkpoint.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifySession } from "@airlock/shared/audit/index";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyring } from "../crypto/index.js";
import { SessionRecorder } from "../sessions/recorder.js";
import { StatementLog, type StatementStart } from "../sessions/statements.js";
import { openStore, type Store } from "../store/index.js";
import { AuditChains } from "./chains.js";
import { AuditKeys } from "./keys.js";
import { loadMaterial } from "./material.js";

const log = pino({ level: "silent" });
let dir = "";
let store: Store;
let keys: AuditKeys;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-chains-"));
  store = await openStore({ dataDir: dir, logger: log });
  keys = new AuditKeys(store, new Keyring([randomBytes(32)]), log);
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const publicKeys = async () => new Map((await keys.list()).map((k) => [k.id, k.publicKey]));
const start = { subject: "alice", subjectKind: "user", authMethod: "oidc", tokenId: null, connectionId: null, agentId: null, connectionName: "pg", protocol: "postgres", clientAddr: "127.0.0.1", groups: ["dba"] };
const stmt = (sessionId: string, seq: number, text = `SELECT ${seq}`): StatementStart => ({ sessionId, seq, text, kind: "select", command: "SELECT", objects: [], decision: "allow" });

describe("AuditChains with the real recorder and statement log", () => {
  it("records a session whose chain, periodic and final checkpoints verify", async () => {
    const chains = new AuditChains(store, keys, log, { checkpointIntervalMs: 0 });
    const sessions = new SessionRecorder(store, log, chains);
    const statements = new StatementLog(store, log, { chains });
    const id = await sessions.start(start);
    const ids = await statements.record([stmt(id, 1), stmt(id, 2, "SELECT 'x\0y'")]);
    statements.complete(ids[0]!, { status: "ok", durationMs: 0.25, rows: 1, commandTag: "SELECT 1", masked: 2 }, id);
    await chains.checkpointOpen();
    statements.complete(ids[1]!, { status: "error", durationMs: 1 / 3, errorCode: "22012", error: "division by zero" }, id);
    await statements.flush();
    await sessions.finish(id, { bytesUp: 10, bytesDown: 20, outcome: "ok" });
    const m = (await loadMaterial(store, id))!;
    expect(m.checkpoints.map((c) => [c.kind, c.links])).toEqual([["periodic", 4], ["final", 6]]);
    expect(verifySession(m, await publicKeys())).toMatchObject({ ok: true, links: 6, findings: [] });
    await statements.close();
    await chains.close();
  });

  it("explains a statement the store refused with a signed tombstone, and the chain still verifies", async () => {
    const chains = new AuditChains(store, keys, log, { checkpointIntervalMs: 0 });
    const sessions = new SessionRecorder(store, log, chains);
    let fail = false;
    const statements = new StatementLog(store, log, { chains, sql: (text, params) => (fail ? Promise.reject(Object.assign(new Error("disk full"), { code: "53100" })) : store.sql(text, params)) });
    const id = await sessions.start(start);
    await statements.record([stmt(id, 1)]);
    fail = true;
    await expect(statements.record([stmt(id, 2)])).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    fail = false;
    await statements.record([stmt(id, 3)]);
    await statements.flush();
    await sessions.finish(id, { bytesUp: 0, bytesDown: 0, outcome: "ok" });
    const r = verifySession((await loadMaterial(store, id))!, await publicKeys());
    expect(r.ok).toBe(true);
    expect(r.findings).toEqual([expect.objectContaining({ code: "TOMBSTONE", link: 3, message: expect.stringContaining("so it was not run") })]);
    await statements.close();
    await chains.close();
  });

  it("closes a session a crash left open with a recovered checkpoint", async () => {
    const crashed = new AuditChains(store, keys, log, { checkpointIntervalMs: 0 });
    const id = await new SessionRecorder(store, log, crashed).start(start);
    const statements = new StatementLog(store, log, { chains: crashed });
    const [a] = await statements.record([stmt(id, 1)]);
    await crashed.checkpointOpen();
    // A completion numbered but never written: the process "dies" before the UPDATE.
    crashed.append(id, "statement.end", ["ok"]);
    await statements.record([stmt(id, 2)]);
    void a;
    const fresh = new AuditChains(store, keys, log, { checkpointIntervalMs: 0 });
    expect(await new SessionRecorder(store, log, fresh).closeOrphans([id])).toBe(1);
    const m = (await loadMaterial(store, id))!;
    expect(m.session).toMatchObject({ outcome: "failed", errorCode: "LINK_LOST" });
    expect(m.checkpoints.map((c) => c.kind)).toEqual(["periodic", "recovered"]);
    const r = verifySession(m, await publicKeys());
    expect(r.ok).toBe(true);
    expect(r.findings).toEqual([expect.objectContaining({ code: "TOMBSTONE", link: 3, message: expect.stringContaining("stopped abruptly") })]);
    await statements.close();
    await fresh.close();
  });
});
