import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AirlockError } from "@airlock/shared/errors";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENVELOPE_HEADER_BYTES, Keyring, keyIdOf, recordKeyId } from "./envelope.js";
import { MASTER_KEY_FILE, generateMasterKey, loadOrCreateKeyring, parseMasterKeys } from "./master-key.js";

const secret = { user: "postgres", password: "hunter2-very-secret", port: 5432, nested: { a: [1, 2, 3] } };

function expectDecryptFailed(fn: () => unknown): AirlockError {
  try {
    fn();
  } catch (err) {
    expect(AirlockError.is(err, "SECRET_DECRYPT_FAILED")).toBe(true);
    return err as AirlockError;
  }
  throw new Error("expected SECRET_DECRYPT_FAILED");
}

describe("Keyring", () => {
  const ring = new Keyring([randomBytes(32)]);

  it("round-trips JSON and bytes", () => {
    const rec = ring.encryptJson(secret, "conn_1");
    expect(ring.decryptJson(rec, "conn_1")).toEqual(secret);
    const bytes = randomBytes(1000);
    expect(ring.decrypt(ring.encrypt(bytes, "x"), "x").equals(bytes)).toBe(true);
    expect(ring.decrypt(ring.encrypt(Buffer.alloc(0), "x"), "x")).toHaveLength(0);
  });

  it("writes a compact versioned record that does not contain the plaintext", () => {
    const plain = Buffer.from(JSON.stringify(secret));
    const rec = ring.encryptJson(secret, "conn_1");
    expect(rec[0]).toBe(1);
    expect(rec.length).toBe(ENVELOPE_HEADER_BYTES + plain.length);
    expect(recordKeyId(rec)).toBe(ring.primaryKeyId);
    expect(rec.includes(Buffer.from("hunter2"))).toBe(false);
  });

  it("is randomised: same input, different records", () => {
    expect(ring.encryptJson(secret, "a").equals(ring.encryptJson(secret, "a"))).toBe(false);
  });

  it("fails on a change to any single byte", () => {
    const rec = ring.encryptJson(secret, "conn_1");
    for (let i = 0; i < rec.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bad = Buffer.from(rec);
        bad[i]! ^= mask;
        expectDecryptFailed(() => ring.decryptJson(bad, "conn_1"));
      }
    }
  });

  it("fails on truncation, extension and garbage", () => {
    const rec = ring.encryptJson(secret, "conn_1");
    for (const bad of [
      rec.subarray(0, rec.length - 1),
      rec.subarray(0, ENVELOPE_HEADER_BYTES - 1),
      Buffer.concat([rec, Buffer.from([0])]),
      Buffer.alloc(0),
      randomBytes(200),
    ]) {
      expectDecryptFailed(() => ring.decrypt(bad, "conn_1"));
    }
    expectDecryptFailed(() => ring.decrypt("not a buffer" as unknown as Uint8Array, "conn_1"));
  });

  it("binds the record to its associated data", () => {
    const rec = ring.encryptJson(secret, "conn_1");
    const err = expectDecryptFailed(() => ring.decryptJson(rec, "conn_2"));
    expect(err.message).not.toContain("hunter2");
    expectDecryptFailed(() => ring.decryptJson(rec, "conn_1 "));
  });

  it("refuses empty associated data (a caller bug)", () => {
    expect(() => ring.encryptJson(secret, "")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("decrypts Uint8Array views (as Prisma returns Bytes)", () => {
    const rec = ring.encryptJson(secret, "c");
    const padded = new Uint8Array(rec.length + 10);
    padded.set(rec, 5);
    expect(ring.decryptJson(padded.subarray(5, 5 + rec.length), "c")).toEqual(secret);
  });

  it("does not leak the plaintext when it is not JSON", () => {
    const rec = ring.encrypt(Buffer.from("hunter2 is not json"), "c");
    const err = expectDecryptFailed(() => ring.decryptJson(rec, "c"));
    expect(JSON.stringify({ m: err.message, d: err.details, s: err.stack })).not.toContain("hunter2");
    expect(err.cause).toBeUndefined();
  });

  it("fails with another master key", () => {
    const rec = ring.encryptJson(secret, "c");
    const err = expectDecryptFailed(() => new Keyring([randomBytes(32)]).decryptJson(rec, "c"));
    expect(err.message).toContain("unknown master key");
  });

  it("rotates: the new primary encrypts, old keys still decrypt", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const before = new Keyring([oldKey]);
    const oldRec = before.encryptJson(secret, "c");

    const after = new Keyring([newKey, oldKey]);
    expect(after.primaryKeyId).toBe(keyIdOf(newKey));
    expect(after.keyIds).toEqual([keyIdOf(newKey), keyIdOf(oldKey)]);
    expect(after.decryptJson(oldRec, "c")).toEqual(secret);
    expect(after.needsRotation(oldRec)).toBe(true);

    const newRec = after.encryptJson(after.decryptJson(oldRec, "c"), "c");
    expect(recordKeyId(newRec)).toBe(keyIdOf(newKey));
    expect(after.needsRotation(newRec)).toBe(false);
    expectDecryptFailed(() => before.decryptJson(newRec, "c"));
    expect(new Keyring([newKey]).decryptJson(newRec, "c")).toEqual(secret);
  });

  it("rejects keys of the wrong size", () => {
    expect(() => new Keyring([randomBytes(16)])).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(() => new Keyring([])).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
  });
});

describe("master keys", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "airlock-mk-"));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("creates <dataDir>/master.key with mode 0600 and reuses it", async () => {
    const dataDir = path.join(dir, "data"); // does not exist yet
    const first = await loadOrCreateKeyring({ dataDir });
    expect(first.source).toBe("created");
    const file = path.join(dataDir, MASTER_KEY_FILE);
    const st = await fs.stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(parseMasterKeys(await fs.readFile(file, "utf8"), "f")).toHaveLength(1);
    const rec = first.encryptJson(secret, "c");

    const second = await loadOrCreateKeyring({ dataDir });
    expect(second.source).toBe("file");
    expect(second.primaryKeyId).toBe(first.primaryKeyId);
    expect(second.decryptJson(rec, "c")).toEqual(secret);
    expect((await fs.readdir(dataDir)).sort()).toEqual([MASTER_KEY_FILE]); // no temp files left
  });

  it("agrees on one key when several starts race", async () => {
    const rings = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKeyring({ dataDir: dir })));
    expect(new Set(rings.map((r) => r.primaryKeyId)).size).toBe(1);
    expect(rings.filter((r) => r.source === "created")).toHaveLength(1);
  });

  it("uses AIRLOCK_MASTER_KEY without touching the data dir", async () => {
    const key = generateMasterKey();
    const ring = await loadOrCreateKeyring({ dataDir: dir, masterKey: key });
    expect(ring.source).toBe("env");
    expect(ring.primaryKeyId).toBe(keyIdOf(Buffer.from(key, "base64")));
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it("accepts a rotation list, unpadded and base64url keys", async () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const ring = await loadOrCreateKeyring({
      dataDir: dir,
      masterKey: ` ${a.toString("base64url")}, ${b.toString("base64")}\n`,
    });
    expect(ring.keyIds).toEqual([keyIdOf(a), keyIdOf(b)]);
  });

  it("reads rotation lists from the key file too", async () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    await fs.writeFile(path.join(dir, MASTER_KEY_FILE), `${a.toString("base64")}\n${b.toString("base64")}\n`, { mode: 0o600 });
    const ring = await loadOrCreateKeyring({ dataDir: dir });
    expect(ring.keyIds).toEqual([keyIdOf(a), keyIdOf(b)]);
  });

  it("rejects malformed keys without echoing them", async () => {
    const shortKey = randomBytes(16).toString("base64");
    for (const bad of [shortKey, "not base64 at all!!", `${generateMasterKey()}AAAA`]) {
      const err = await loadOrCreateKeyring({ dataDir: dir, masterKey: bad }).catch((e: unknown) => e);
      expect(AirlockError.is(err, "CONFIG_INVALID")).toBe(true);
      expect((err as Error).message).not.toContain(bad);
    }
    await fs.writeFile(path.join(dir, MASTER_KEY_FILE), "garbage\n");
    await expect(loadOrCreateKeyring({ dataDir: dir })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});
