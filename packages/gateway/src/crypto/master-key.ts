// Where the master keys come from: AIRLOCK_MASTER_KEY when configured,
// otherwise `<dataDir>/master.key`, generated on first start so that a plain
// `airlock gateway` works without setup.
//
// Rotation: list several keys, newest first, separated by commas/whitespace in
// the variable or one per line in the file. The first key encrypts; all decrypt.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { AirlockError } from "@airlock/shared/errors";
import { Keyring, MASTER_KEY_BYTES } from "./envelope.js";
import { createFileExclusive, ensurePrivateDir, readIfExists } from "./files.js";

export const MASTER_KEY_FILE = "master.key";

// 32 bytes is 43 base64 characters plus one '=' (optional here); accept the
// base64url alphabet too, since people paste whichever their tool printed.
const KEY_RE = /^[A-Za-z0-9+/_-]{43}=?$/;

/** A fresh master key, base64 (the AIRLOCK_MASTER_KEY format). */
export function generateMasterKey(): string {
  return randomBytes(MASTER_KEY_BYTES).toString("base64");
}

/**
 * Parses a list of base64 master keys. `origin` names the source in errors;
 * the key text itself is never echoed, since it may be a typo of a real key.
 */
export function parseMasterKeys(text: string, origin: string): Buffer[] {
  const parts = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith("#"));
  if (parts.length === 0) throw new AirlockError("CONFIG_INVALID", `${origin} holds no master key`);
  return parts.map((p, i) => {
    const where = parts.length > 1 ? `${origin} (key #${i + 1})` : origin;
    if (!KEY_RE.test(p)) {
      throw new AirlockError("CONFIG_INVALID", `${where} must be ${MASTER_KEY_BYTES} bytes in base64 (44 characters)`);
    }
    const key = Buffer.from(p.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (key.length !== MASTER_KEY_BYTES) {
      throw new AirlockError("CONFIG_INVALID", `${where} must decode to ${MASTER_KEY_BYTES} bytes`);
    }
    return key;
  });
}

export interface LoadKeyringOptions {
  dataDir: string;
  /** AIRLOCK_MASTER_KEY: base64 key(s), newest first. When set, no file is read or created. */
  masterKey?: string | undefined;
}

export async function loadOrCreateKeyring(opts: LoadKeyringOptions): Promise<Keyring> {
  if (opts.masterKey !== undefined && opts.masterKey.trim() !== "") {
    return new Keyring(parseMasterKeys(opts.masterKey, "AIRLOCK_MASTER_KEY"), "env");
  }

  const file = path.join(opts.dataDir, MASTER_KEY_FILE);
  const existing = await readIfExists(file);
  if (existing !== null) return new Keyring(parseMasterKeys(existing, file), "file");

  await ensurePrivateDir(opts.dataDir);
  const created = await createFileExclusive(file, `${generateMasterKey()}\n`, 0o600);
  // Re-read even when we created it: if another process won the race, its key is the one on disk.
  const text = await fs.readFile(file, "utf8");
  return new Keyring(parseMasterKeys(text, file), created ? "created" : "file");
}
