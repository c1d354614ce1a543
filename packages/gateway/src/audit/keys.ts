// The gateway's audit signing keys (Ed25519). The private key is sealed with
// the keyring (envelope encryption, bound to the key id) and never leaves the
// process; public keys are published at GET /api/v1/audit/keys so anyone can
// check checkpoints. Rotation adds a new key and retires the old one, which
// stays published: old checkpoints keep verifying.
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
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

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly log: Logger,
  ) {}

  /** Signs with the active key (created on first use); rejects STORE_UNAVAILABLE when no key can be loaded. */
  async sign(payload: Buffer): Promise<{ keyId: string; signature: Buffer }> {
    const k = await this.current();
    return { keyId: k.id, signature: sign(null, payload, k.key) };
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

  /** Every key ever used, newest first (public halves only). */
  async list(): Promise<PublicAuditKey[]> {
    const rows = await this.store.prisma.auditKey.findMany({ orderBy: { createdAt: "desc" } });
    return rows.map((r) => ({ id: r.id, algorithm: "Ed25519", publicKey: r.publicKey, createdAt: r.createdAt.toISOString(), retiredAt: r.retiredAt?.toISOString() ?? null }));
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
