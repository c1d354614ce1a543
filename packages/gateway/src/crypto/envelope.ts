// Envelope encryption of secrets at rest (connection credentials).
//
// Each record gets its own random 256-bit data key; the plaintext is sealed
// with AES-256-GCM under that data key, and the data key is itself sealed
// (wrapped) with AES-256-GCM under a master key. Why the two layers: a master
// key rotation only needs to re-wrap 32-byte data keys, a data key never
// seals more than one message (so GCM nonce reuse is impossible in practice),
// and the master key touches only random bytes, never user data.
//
// Record layout, version 1 (fixed 93-byte header, then ciphertext):
//   [0]       version = 1
//   [1..5)    master key id (see keyIdOf)
//   [5..17)   wrap IV
//   [17..49)  wrapped data key
//   [49..65)  wrap tag
//   [65..77)  data IV
//   [77..93)  data tag
//   [93..]    ciphertext
//
// The caller's associated data (e.g. the connection id) is authenticated by
// both GCM layers, together with the header, so a record copied into another
// row, or with any header byte changed, fails to decrypt.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { AirlockError } from "@airlock/shared/errors";

export const ENVELOPE_VERSION = 1;
export const MASTER_KEY_BYTES = 32;

const KEY_ID_BYTES = 4;
const IV_BYTES = 12; // the GCM-native nonce size
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;

const OFF_KEY_ID = 1;
const OFF_WRAP_IV = OFF_KEY_ID + KEY_ID_BYTES;
const OFF_WRAPPED = OFF_WRAP_IV + IV_BYTES;
const OFF_WRAP_TAG = OFF_WRAPPED + DATA_KEY_BYTES;
const OFF_DATA_IV = OFF_WRAP_TAG + TAG_BYTES;
const OFF_DATA_TAG = OFF_DATA_IV + IV_BYTES;
export const ENVELOPE_HEADER_BYTES = OFF_DATA_TAG + TAG_BYTES; // 93

// Domain separation: the two GCM layers never accept each other's AAD, even if
// the same key were ever used for both.
const WRAP_LABEL = Buffer.from("airlock/envelope/v1/wrap\0");
const DATA_LABEL = Buffer.from("airlock/envelope/v1/data\0");

/**
 * The key id stored in each record: derived from the key itself, so an
 * operator never has to name keys and ids stay stable across restarts. It is
 * an HMAC (not a plain hash) so the id reveals nothing usable about the key.
 */
export function keyIdOf(masterKey: Uint8Array): string {
  return createHmac("sha256", masterKey).update("airlock/master-key-id").digest().subarray(0, KEY_ID_BYTES).toString("hex");
}

/** The id of the master key a record was encrypted with, or null if it is not a v1 record. */
export function recordKeyId(record: Uint8Array): string | null {
  if (record.length < ENVELOPE_HEADER_BYTES || record[0] !== ENVELOPE_VERSION) return null;
  return Buffer.from(record.subarray(OFF_KEY_ID, OFF_WRAP_IV)).toString("hex");
}

function decryptFailed(reason: string, cause?: unknown): AirlockError {
  // Reasons are fixed strings written here: never include plaintext, key
  // material or parser messages (JSON.parse errors quote their input).
  return new AirlockError("SECRET_DECRYPT_FAILED", `a secret could not be decrypted: ${reason}`, {
    cause,
    details: { reason },
  });
}

function checkAad(aad: string): Buffer {
  if (typeof aad !== "string" || aad.length === 0) {
    // An empty binding would make records movable between rows; it is always a caller bug.
    throw new AirlockError("INVALID_ARGUMENT", "envelope associated data must be a non-empty string");
  }
  return Buffer.from(aad, "utf8");
}

function seal(key: Uint8Array, iv: Buffer, aad: Buffer, plaintext: Uint8Array): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

function open(key: Uint8Array, iv: Uint8Array, aad: Buffer, ct: Uint8Array, tag: Uint8Array): Buffer {
  const d = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}

export type KeyringSource = "env" | "file" | "created" | "memory";

/**
 * A set of master keys: encrypts with the primary (the first), decrypts with
 * whichever key the record names, so rotation is "put the new key first, keep
 * the old ones until every record is re-encrypted".
 */
export class Keyring {
  readonly primaryKeyId: string;
  /** Where the keys came from, for the startup log line. */
  readonly source: KeyringSource;
  readonly #keys: { id: string; key: Buffer }[];

  constructor(masterKeys: readonly Uint8Array[], source: KeyringSource = "memory") {
    if (masterKeys.length === 0) throw new AirlockError("CONFIG_INVALID", "keyring needs at least one master key");
    this.#keys = masterKeys.map((k, i) => {
      if (k.length !== MASTER_KEY_BYTES) {
        throw new AirlockError("CONFIG_INVALID", `master key #${i + 1} must be ${MASTER_KEY_BYTES} bytes, got ${k.length}`);
      }
      // Copy so a caller wiping or reusing its buffer cannot change the keyring.
      return { id: keyIdOf(k), key: Buffer.from(k) };
    });
    this.primaryKeyId = this.#keys[0]!.id;
    this.source = source;
  }

  /** Ids of every key held, primary first. */
  get keyIds(): string[] {
    return this.#keys.map((k) => k.id);
  }

  /** True when a record is readable but sealed under a non-primary key (re-encrypt it after rotation). */
  needsRotation(record: Uint8Array): boolean {
    const id = recordKeyId(record);
    return id !== null && id !== this.primaryKeyId;
  }

  encrypt(plaintext: Uint8Array, aad: string): Buffer {
    const aadBuf = checkAad(aad);
    const primary = this.#keys[0]!;
    const header = Buffer.alloc(ENVELOPE_HEADER_BYTES);
    header[0] = ENVELOPE_VERSION;
    header.write(primary.id, OFF_KEY_ID, "hex");

    const dataKey = randomBytes(DATA_KEY_BYTES);
    try {
      const wrapIv = randomBytes(IV_BYTES);
      const wrapped = seal(primary.key, wrapIv, wrapAad(header, aadBuf), dataKey);
      wrapIv.copy(header, OFF_WRAP_IV);
      wrapped.ct.copy(header, OFF_WRAPPED);
      wrapped.tag.copy(header, OFF_WRAP_TAG);

      const dataIv = randomBytes(IV_BYTES);
      dataIv.copy(header, OFF_DATA_IV);
      const data = seal(dataKey, dataIv, dataAad(header, aadBuf), plaintext);
      data.tag.copy(header, OFF_DATA_TAG);
      return Buffer.concat([header, data.ct]);
    } finally {
      dataKey.fill(0); // best effort: the data key lives only inside the record
    }
  }

  decrypt(record: Uint8Array, aad: string): Buffer {
    const aadBuf = checkAad(aad);
    if (!(record instanceof Uint8Array)) throw decryptFailed("record is not binary");
    if (record.length < ENVELOPE_HEADER_BYTES) throw decryptFailed("record is truncated");
    if (record[0] !== ENVELOPE_VERSION) throw decryptFailed(`unsupported record version ${record[0]}`);
    const buf = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
    const header = buf.subarray(0, ENVELOPE_HEADER_BYTES);
    const id = header.subarray(OFF_KEY_ID, OFF_WRAP_IV).toString("hex");
    // Ids are 32 bits, so two keys may share one: try each candidate.
    const candidates = this.#keys.filter((k) => k.id === id);
    if (candidates.length === 0) throw decryptFailed(`sealed with unknown master key ${id}`);

    let dataKey: Buffer | undefined;
    let lastErr: unknown;
    for (const k of candidates) {
      try {
        dataKey = open(
          k.key,
          header.subarray(OFF_WRAP_IV, OFF_WRAPPED),
          wrapAad(header, aadBuf),
          header.subarray(OFF_WRAPPED, OFF_WRAP_TAG),
          header.subarray(OFF_WRAP_TAG, OFF_DATA_IV),
        );
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (dataKey === undefined) throw decryptFailed("data key failed authentication (wrong key, associated data or tampered record)", lastErr);
    try {
      return open(
        dataKey,
        header.subarray(OFF_DATA_IV, OFF_DATA_TAG),
        dataAad(header, aadBuf),
        buf.subarray(ENVELOPE_HEADER_BYTES),
        header.subarray(OFF_DATA_TAG, ENVELOPE_HEADER_BYTES),
      );
    } catch (err) {
      throw decryptFailed("ciphertext failed authentication (tampered record)", err);
    } finally {
      dataKey.fill(0);
    }
  }

  encryptJson(value: unknown, aad: string): Buffer {
    const json = JSON.stringify(value);
    if (json === undefined) throw new AirlockError("INVALID_ARGUMENT", "value is not JSON-serialisable");
    const plain = Buffer.from(json, "utf8");
    try {
      return this.encrypt(plain, aad);
    } finally {
      plain.fill(0);
    }
  }

  decryptJson<T = unknown>(record: Uint8Array, aad: string): T {
    const plain = this.decrypt(record, aad);
    try {
      return JSON.parse(plain.toString("utf8")) as T;
    } catch {
      // No cause: the SyntaxError message quotes the plaintext.
      throw decryptFailed("plaintext is not JSON");
    } finally {
      plain.fill(0);
    }
  }
}

// The wrapped key is bound to version + key id + caller AAD; the data layer to
// the whole header up to its own tag + caller AAD. Header parts are fixed-size,
// so the concatenations are unambiguous.
function wrapAad(header: Buffer, aad: Buffer): Buffer {
  return Buffer.concat([WRAP_LABEL, header.subarray(0, OFF_WRAP_IV), aad]);
}

function dataAad(header: Buffer, aad: Buffer): Buffer {
  return Buffer.concat([DATA_LABEL, header.subarray(0, OFF_DATA_TAG), aad]);
}
