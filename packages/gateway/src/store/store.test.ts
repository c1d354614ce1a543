// openStore end to end on both backends: real PGlite in a temp dir and a real
// PostgreSQL database (created per test, dropped after).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AirlockError } from "@airlock/shared/errors";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, Prisma, type PrismaClient, type Store } from "./index.js";
import { createTempDatabase, type TempDatabase } from "./testing.js";

const logger = pino({ level: "silent" });
// Past Number.MAX_SAFE_INTEGER: proves BIGINT round-trips without loss.
const BIG = 2n ** 53n + 7n;
const SECRET = Buffer.from([0, 1, 2, 127, 128, 254, 255]);

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tempDb(): Promise<TempDatabase> {
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  return db;
}

function track(store: Store): Store {
  cleanups.push(() => store.close());
  return store;
}

/** Writes one of each model, then reads them back; returns ids for later checks. */
async function writeAndRead(prisma: PrismaClient) {
  const seen = new Date("2025-03-04T05:06:07.089Z");
  const agent = await prisma.agent.create({ data: { name: "edge-1", group: "dc1", keyHash: "k1", lastSeenAt: seen } });
  const connection = await prisma.connection.create({
    data: {
      name: "pg-prod",
      type: "postgres",
      host: "db.internal",
      port: 5432,
      agentId: agent.id,
      tls: { enabled: true, verify: false },
      labels: { env: "prod" },
      secret: SECRET,
    },
  });
  const token = await prisma.accessToken.create({
    data: { hash: "sha256-of-token", subject: "alice", roles: ["admin", "auditor"], expiresAt: seen },
  });
  const session = await prisma.session.create({
    data: {
      subject: "alice",
      tokenId: token.id,
      connectionId: connection.id,
      connectionName: connection.name,
      protocol: "tcp",
      agentId: agent.id,
      clientAddr: "127.0.0.1:50000",
      bytesUp: BIG,
    },
  });
  await prisma.session.update({
    where: { id: session.id },
    data: { bytesDown: { increment: 5n }, endedAt: new Date(), outcome: "ok" },
  });

  const read = await prisma.session.findUniqueOrThrow({
    where: { id: session.id },
    include: { connection: true, agent: true },
  });
  expect(read.bytesUp).toBe(BIG);
  expect(read.bytesDown).toBe(5n);
  expect(read.outcome).toBe("ok");
  expect(read.agent?.lastSeenAt?.toISOString()).toBe(seen.toISOString());
  expect(Buffer.from(read.connection?.secret ?? [])).toEqual(SECRET);
  expect(read.connection?.tls).toEqual({ enabled: true, verify: false });
  expect(read.connection?.updatedAt).toBeInstanceOf(Date);
  expect(await prisma.session.count({ where: { bytesUp: { gt: 2n ** 53n } } })).toBe(1);
  const readToken = await prisma.accessToken.findUniqueOrThrow({ where: { hash: "sha256-of-token" } });
  expect(readToken.roles).toEqual(["admin", "auditor"]);
  expect(readToken.kind).toBe("user");
  expect(await prisma.accessToken.count({ where: { roles: { has: "auditor" } } })).toBe(1);
  expect(await prisma.connection.count({ where: { secret: { equals: SECRET } } })).toBe(1);

  // Unique violations must surface as Prisma's P2002 (the API maps it to ALREADY_EXISTS).
  const dup = await prisma.agent.create({ data: { name: "edge-1" } }).catch((e: unknown) => e);
  expect(dup).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
  expect((dup as Prisma.PrismaClientKnownRequestError).code).toBe("P2002");

  // Interactive transactions roll back on throw.
  await expect(
    prisma.$transaction(async (tx) => {
      await tx.agent.create({ data: { name: "doomed" } });
      throw new Error("roll me back");
    }),
  ).rejects.toThrow("roll me back");
  expect(await prisma.agent.count({ where: { name: "doomed" } })).toBe(0);

  return { agentId: agent.id, connectionId: connection.id, sessionId: session.id };
}

/** onDelete: SetNull keeps the session readable after its connection goes. */
async function deleteConnection(prisma: PrismaClient, ids: { connectionId: string; sessionId: string }) {
  await prisma.connection.delete({ where: { id: ids.connectionId } });
  const s = await prisma.session.findUniqueOrThrow({ where: { id: ids.sessionId } });
  expect(s.connectionId).toBeNull();
  expect(s.connectionName).toBe("pg-prod");
}

describe("openStore on PGlite", () => {
  it("stores every model and keeps the data across reopen", async () => {
    const dataDir = await tempDir();
    const first = await openStore({ dataDir, logger });
    expect(first.kind).toBe("pglite");
    const ids = await writeAndRead(first.prisma);
    await first.close();
    await first.close(); // idempotent

    const second = track(await openStore({ dataDir, logger }));
    const session = await second.prisma.session.findUniqueOrThrow({ where: { id: ids.sessionId } });
    expect(session.bytesUp).toBe(BIG);
    expect((await second.prisma.agent.findUniqueOrThrow({ where: { name: "edge-1" } })).id).toBe(ids.agentId);
    await deleteConnection(second.prisma, ids);
  });

  it("refuses a second open of the same directory while the first is open", async () => {
    const dataDir = await tempDir();
    track(await openStore({ dataDir, logger }));
    const err = await openStore({ dataDir, logger }).catch((e: unknown) => e);
    expect(AirlockError.is(err, "STORE_UNAVAILABLE")).toBe(true);
  });

  it("takes over the lock file of a process that died", async () => {
    const dataDir = await tempDir();
    // PID 2^22+1 is above Linux's pid_max default, so no such process runs.
    await writeFile(join(dataDir, "store.lock"), `${2 ** 22 + 1}\n`);
    const store = track(await openStore({ dataDir, logger }));
    expect(await store.prisma.agent.count()).toBe(0);
  });
});

describe("openStore on PostgreSQL", () => {
  it("stores every model and keeps the data across reopen", async () => {
    const db = await tempDb();
    const dataDir = await tempDir();
    const first = await openStore({ databaseUrl: db.url, dataDir, logger });
    expect(first.kind).toBe("postgres");
    const ids = await writeAndRead(first.prisma);
    await first.close();

    const second = track(await openStore({ databaseUrl: db.url, dataDir, logger }));
    expect((await second.prisma.session.findUniqueOrThrow({ where: { id: ids.sessionId } })).bytesUp).toBe(BIG);
    await deleteConnection(second.prisma, ids);
  });

  it("rejects a URL that is not postgres with CONFIG_INVALID", async () => {
    const dataDir = await tempDir();
    for (const databaseUrl of ["mysql://root@127.0.0.1/x", "not a url"]) {
      const err = await openStore({ databaseUrl, dataDir, logger }).catch((e: unknown) => e);
      expect(AirlockError.is(err, "CONFIG_INVALID")).toBe(true);
    }
  });

  it("reports an unreachable server as STORE_UNAVAILABLE", async () => {
    const dataDir = await tempDir();
    // Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    const err = await openStore({ databaseUrl: "postgresql://postgres@127.0.0.1:9/x", dataDir, logger }).catch(
      (e: unknown) => e,
    );
    expect(AirlockError.is(err, "STORE_UNAVAILABLE")).toBe(true);
  });
});
