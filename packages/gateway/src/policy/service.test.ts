// PolicyService on real stores (PGlite in a temp dir, a throwaway PostgreSQL
// database) and a real directory watched with fs.watch.
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AirlockError } from "@airlock/shared";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../store/index.js";
import { createTempDatabase } from "../store/testing.js";
import { PolicyService, type ActivePolicy } from "./service.js";
import type { PolicyRequest } from "./types.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => { for (const fn of cleanups.splice(0).reverse()) await fn(); });

/** A logger whose records the test can read. */
function recordingLogger() {
  const records: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const log = pino({ level: "info" }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { log, records, messages: () => records.map((r) => r.msg) };
}
const quiet = pino({ level: "silent" });

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-policy-svc-"));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

const sharedDirs: string[] = [];
afterAll(async () => { for (const d of sharedDirs) await rm(d, { recursive: true, force: true }); });
async function sharedDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-policy-svc-"));
  sharedDirs.push(d);
  return d;
}

async function postgresStores(n: number): Promise<Store[]> {
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  const stores: Store[] = [];
  for (let i = 0; i < n; i++) {
    const s = await openStore({ databaseUrl: db.url, dataDir: "/nonexistent", logger: quiet });
    cleanups.push(() => s.close());
    stores.push(s);
  }
  return stores;
}

async function started(opts: Parameters<typeof PolicyService.start>[0]): Promise<PolicyService> {
  const s = await PolicyService.start(opts);
  cleanups.push(() => s.close());
  return s;
}

/** Waits (up to 10 s) for a condition the service reaches asynchronously. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const permitAll = `@id("all") permit(principal, action, resource);\n`;
const forbidDdl = `@id("no-ddl") @reason("no DDL") forbid(principal, action == Airlock::Action::"ddl", resource);\n`;
const req = (action: PolicyRequest["action"] = "select"): PolicyRequest => ({
  principal: { type: "User", id: "ann", groups: ["dev"] },
  action,
  resource: { connection: "c1", database: "db" },
  context: { time: { hour: 9, weekday: 1 } },
});
const decide = (p: ActivePolicy, action?: PolicyRequest["action"]) => p.engine.decide(req(action)).decision;

describe("store mode (PGlite)", () => {
  // One store for the file (PGlite takes seconds to open): these tests run in order and
  // only the last one stores versions.
  let shared: Store;
  beforeAll(async () => { shared = await openStore({ dataDir: await sharedDir(), logger: quiet }); });
  afterAll(async () => { await shared?.close(); });

  it("fails closed with nothing applied and says so", async () => {
    const { log, messages } = recordingLogger();
    const svc = await started({ store: shared, pollMs: 60_000, log });
    const p = svc.current();
    expect(p).toMatchObject({ source: "none", version: null, digest: "", policyIds: [] });
    expect(p.engine.decide(req()).reasons).toEqual(["no policies loaded (fail closed)"]);
    expect(p.masker.maskValue("notes", "mail ann@example.com")).not.toContain("ann@");
    expect(messages()).toContain("no policies applied: every statement is denied until `airlock policy apply`");
  });

  it("refuses an invalid bundle with POLICY_INVALID and file:line errors, storing nothing", async () => {
    const svc = await started({ store: shared, pollMs: 60_000, log: quiet });
    const err = await svc.apply({ "p.cedar": `${permitAll}\npermit(principal, action` }, "alice").catch((e: unknown) => e);
    expect(AirlockError.is(err, "POLICY_INVALID")).toBe(true);
    const e = err as AirlockError;
    expect(e.message).toMatch(/^policy bundle is invalid: p\.cedar:3:\d+:/);
    expect(e.details?.errors).toEqual([expect.objectContaining({ file: "p.cedar", line: 3 })]);
    expect(await svc.list()).toEqual([]);
    expect(svc.current().source).toBe("none");
  });
  it("apply stores version 1, the same bundle again is unchanged, a new one is version 2", async () => {
    const { log, records } = recordingLogger();
    const svc = await started({ store: shared, pollMs: 60_000, log });
    const seen: Array<number | null> = [];
    const off = svc.onChange((p) => seen.push(p.version));

    const v1 = await svc.apply({ "p.cedar": permitAll }, "alice");
    expect(v1).toMatchObject({ version: 1, changed: true, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(svc.current()).toMatchObject({ version: 1, source: "store", digest: v1.digest, policyIds: ["all"] });
    expect(decide(svc.current(), "ddl")).toBe("allow");

    expect(await svc.apply({ "p.cedar": permitAll }, "bob")).toEqual({ version: 1, digest: v1.digest, changed: false });
    const v2 = await svc.apply({ "p.cedar": permitAll + forbidDdl, "masking.json": "{}" }, "bob");
    expect(v2).toMatchObject({ version: 2, changed: true });
    expect(decide(svc.current(), "ddl")).toBe("deny");
    off();
    await svc.apply({ "p.cedar": permitAll }, "carol"); // rollback = a new version
    expect(seen).toEqual([1, 2]);
    expect(svc.current().version).toBe(3);

    const list = await svc.list();
    expect(list.map((v) => [v.version, v.createdBy, v.files])).toEqual([[3, "carol", ["p.cedar"]], [2, "bob", ["masking.json", "p.cedar"]], [1, "alice", ["p.cedar"]]]);
    expect(list[0]?.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(list[0]!.createdAt.getTime() - Date.now())).toBeLessThan(3_600_000); // no time zone shift
    expect((await svc.get(2)).files).toEqual({ "p.cedar": permitAll + forbidDdl, "masking.json": "{}" });
    await expect(svc.get(99)).rejects.toMatchObject({ code: "NOT_FOUND" });

    const activations = records.filter((r) => r.msg === "policies activated");
    expect(activations.map((r) => [r.version, r.policies, r.digest])).toEqual([[1, 1, v1.digest.slice(0, 12)], [2, 2, v2.digest.slice(0, 12)], [3, 1, expect.any(String)]]);
  });

});

describe("store mode (PostgreSQL, two gateway processes)", () => {
  it("an apply on one is picked up by the other through polling", async () => {
    const [a, b] = await postgresStores(2);
    const one = await started({ store: a!, pollMs: 50, log: quiet });
    const two = await started({ store: b!, pollMs: 50, log: quiet });
    const t0 = performance.now();
    const r = await one.apply({ "p.cedar": permitAll }, "alice");
    const t1 = performance.now();
    await eventually(() => two.current().version === r.version, "the second process to load version 1");
    console.log(`policy apply (PostgreSQL): ${(t1 - t0).toFixed(1)} ms; picked up by the other process after ${(performance.now() - t1).toFixed(0)} ms (poll every 50 ms)`);
    expect(two.current()).toMatchObject({ source: "store", digest: r.digest });
    expect(decide(two.current())).toBe("allow");

    await two.apply({ "p.cedar": permitAll + forbidDdl }, "bob");
    await eventually(() => one.current().version === 2, "the first process to load version 2");
    expect(decide(one.current(), "ddl")).toBe("deny");

    const list = await two.list();
    expect(list.map((v) => [v.version, v.createdBy, v.files])).toEqual([[2, "bob", ["p.cedar"]], [1, "alice", ["p.cedar"]]]);
    expect(Math.abs(list[0]!.createdAt.getTime() - Date.now())).toBeLessThan(3_600_000); // no time zone shift

    // A process started later loads the latest version at start.
    const three = await started({ store: a!, pollMs: 60_000, log: quiet });
    expect(three.current()).toMatchObject({ version: 2, source: "store" });
  });

  it("concurrent applies from both get distinct, gapless versions", async () => {
    const [a, b] = await postgresStores(2);
    const one = await started({ store: a!, pollMs: 60_000, log: quiet });
    const two = await started({ store: b!, pollMs: 60_000, log: quiet });
    const bundles = Array.from({ length: 8 }, (_, i) => ({ "p.cedar": `${permitAll}// bundle ${i}\n` }));
    const results = await Promise.all(bundles.map((files, i) => (i % 2 ? one : two).apply(files, `user${i}`)));
    expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(results.every((r) => r.changed)).toBe(true);
  });
});

describe("a stored version that does not load", () => {
  it("is logged once and skipped; the next good version activates", async () => {
    const [store] = await postgresStores(1);
    const { log, records } = recordingLogger();
    const svc = await started({ store: store!, pollMs: 50, log });
    // Written behind the service's back, as an older gateway or a bad restore might leave it.
    await store!.prisma.policyVersion.create({ data: { version: 1, files: { "p.cedar": "permit(" }, digest: "x" } });
    await eventually(() => records.some((r) => r.msg.startsWith("stored policy version cannot be loaded")), "the bad version to be reported");
    await new Promise((r) => setTimeout(r, 300)); // several more polls
    expect(records.filter((r) => r.msg.startsWith("stored policy version cannot be loaded"))).toHaveLength(1);
    expect(svc.current().source).toBe("none");
    expect(await svc.apply({ "p.cedar": permitAll }, "alice")).toMatchObject({ version: 2, changed: true });
    expect(svc.current()).toMatchObject({ version: 2, source: "store" });
  });
});

describe("directory mode", () => {
  it("hot-reloads edits, keeps the previous policy on a broken edit, refuses apply", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "p.cedar"), permitAll);
    const { log, records } = recordingLogger();
    const [store] = await postgresStores(1);
    const svc = await started({ store: store!, dir, pollMs: 60_000, log });
    expect(svc.current()).toMatchObject({ source: "dir", version: null, policyIds: ["all"] });
    expect(decide(svc.current(), "ddl")).toBe("allow");

    const t0 = performance.now();
    await writeFile(join(dir, "guard.cedar"), forbidDdl);
    await eventually(() => svc.current().policyIds.length === 2, "the new file to be loaded");
    console.log(`policy dir hot reload: active ${(performance.now() - t0).toFixed(0)} ms after the write (debounce 200 ms)`);
    expect(decide(svc.current(), "ddl")).toBe("deny");

    const before = svc.current();
    await writeFile(join(dir, "guard.cedar"), "forbid(principal, action");
    await eventually(() => records.some((r) => r.msg.startsWith("policy bundle has errors")), "the broken edit to be reported");
    const warn = records.find((r) => r.msg.startsWith("policy bundle has errors"))!;
    expect(warn.errors).toEqual([expect.stringMatching(/^guard\.cedar:1:\d+: /)]);
    expect(svc.current()).toBe(before);
    expect(decide(svc.current(), "ddl")).toBe("deny");

    await unlink(join(dir, "guard.cedar"));
    await eventually(() => svc.current().policyIds.length === 1, "the removal to be loaded");
    expect(decide(svc.current(), "ddl")).toBe("allow");

    await expect(svc.apply({ "p.cedar": permitAll }, "alice")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("refuses to start on an invalid bundle, listing the errors", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "p.cedar"), permitAll);
    await writeFile(join(dir, "masking.json"), `{"detectors": {"emial": false}}`);
    const [store] = await postgresStores(1);
    const err = await PolicyService.start({ store: store!, dir, pollMs: 60_000, log: quiet }).catch((e: unknown) => e);
    expect(AirlockError.is(err, "CONFIG_INVALID")).toBe(true);
    expect((err as Error).message).toMatch(/is invalid:\n {2}masking\.json:1:16: detectors\.emial: unknown detector/);
    const missing = await PolicyService.start({ store: store!, dir: join(dir, "nope"), pollMs: 60_000, log: quiet }).catch((e: unknown) => e);
    expect(AirlockError.is(missing, "CONFIG_INVALID")).toBe(true);
  });
});
