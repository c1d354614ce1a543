// The gateway's audit signing keys (Ed25519). The private key is sealed with
// the keyring (envelope encryption, bound to the key id) and never leaves the
// process; public keys are published at GET /api/v1/audit/keys so anyone can
// check checkpoints. Rotation adds a new key and retires the old one, which
// stays published: old checkpoints keep verifying.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { AirlockError, type Logger } from "@airlock/shared";
import type { Keyring } from "../crypto/index.js";
import type { Store } from "../store/index.js";

export interface PublicAuditKey {
  id: string;
  algorithm: "Ed25519";
  publicKey: string;
  createdAt: string;
  retiredAt: string | null;
}

/** How often a process checks for a key another process rotated in. */
const RELOAD_MS = 60_000;

interface Active {
  id: string;
  key: KeyObject;
}

export class AuditKeys {
  private active: Active | null = null;
  private loading: Promise<Active> | null = null;
  private loadedAt = 0;
  /** Key ids whose rows were checked against the master key (list()). */
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly log: Logger,
  ) {}

  /**
   * Signs with the active key (created on first use); rejects STORE_UNAVAILABLE when no key can be
   * loaded. The payload names the key, so it is built for the very key that signs it (a rotation
   * in between cannot pair one key's id with another's signature).
   */
  async sign(payloadFor: (keyId: string) => Buffer): Promise<{ keyId: string; signature: Buffer }> {
    const k = await this.current();
    return { keyId: k.id, signature: sign(null, payloadFor(k.id), k.key) };
  }

  async current(): Promise<Active> {
    if (this.active) {
      // Another gateway process may have rotated: look again now and then, signing with the known key meanwhile.
      if (Date.now() - this.loadedAt > RELOAD_MS && !this.loading) {
        this.loading = this.load().finally(() => (this.loading = null));
        this.loading.catch(() => undefined);
      }
      return this.active;
    }
    this.loading ??= this.load().finally(() => (this.loading = null));
    return this.loading;
  }

  /**
   * Every key ever used, newest first (public halves only). Only keys this gateway sealed are
   * published: a row whose private half does not open under the master key, or does not match its
   * public half, was put there by someone else and is left out (and logged).
   */
  async list(): Promise<PublicAuditKey[]> {
    const rows = await this.store.prisma.auditKey.findMany({ orderBy: { createdAt: "desc" } });
    const out: PublicAuditKey[] = [];
    for (const r of rows) {
      let ours = this.verified.get(r.id) === r.publicKey;
      if (!ours) {
        try {
          const der = this.keyring.decrypt(r.privateKey, `audit-key:${r.id}`);
          const pub = createPublicKey(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" })).export({ format: "pem", type: "spki" }).toString();
          ours = pub === r.publicKey;
        } catch {
          ours = false;
        }
        if (ours) this.verified.set(r.id, r.publicKey);
        else this.log.error({ keyId: r.id }, "audit key row not sealed by this gateway's master key: not published");
      }
      if (ours) out.push({ id: r.id, algorithm: "Ed25519", publicKey: r.publicKey, createdAt: r.createdAt.toISOString(), retiredAt: r.retiredAt?.toISOString() ?? null });
    }
    return out;
  }

  /** Creates a new active key and retires the others (they stay published for verification). */
  async rotate(): Promise<PublicAuditKey> {
    const created = await this.create(true);
    this.active = created.active;
    this.log.info({ keyId: created.active.id }, "audit signing key rotated");
    return created.view;
  }

  /** Other processes pick up a rotation on their next reload (start, or forget()). */
  forget(): void {
    this.active = null;
  }

  private async load(): Promise<Active> {
    try {
      const row = await this.store.prisma.auditKey.findFirst({ where: { retiredAt: null }, orderBy: { createdAt: "desc" } });
      this.loadedAt = Date.now();
      if (row) {
        if (this.active?.id === row.id) return this.active;
        const der = this.keyring.decrypt(row.privateKey, `audit-key:${row.id}`);
        this.active = { id: row.id, key: createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }) };
        return this.active;
      }
      this.active = (await this.create(false)).active;
      return this.active;
    } catch (err) {
      throw new AirlockError("STORE_UNAVAILABLE", "cannot load the audit signing key", { cause: err });
    }
  }

  private async create(retireOthers: boolean): Promise<{ active: Active; view: PublicAuditKey }> {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const id = `ak_${new Date().toISOString().slice(0, 10).replace(/-/g, "")}_${randomBytes(4).toString("hex")}`;
    const pem = publicKey.export({ format: "pem", type: "spki" }).toString();
    const sealed = this.keyring.encrypt(privateKey.export({ format: "der", type: "pkcs8" }), `audit-key:${id}`);
    const row = await this.store.prisma.$transaction(async (tx) => {
      if (retireOthers) await tx.auditKey.updateMany({ where: { retiredAt: null }, data: { retiredAt: new Date() } });
      return tx.auditKey.create({ data: { id, publicKey: pem, privateKey: new Uint8Array(sealed) } });
    });
    return {
      active: { id, key: privateKey },
      view: { id, algorithm: "Ed25519", publicKey: pem, createdAt: row.createdAt.toISOString(), retiredAt: null },
    };
  }
}
