// TLS material for the agent port (gRPC link).
//
// By default the gateway runs its own CA: generated into `<dataDir>/tls/` on
// first start and kept, because agents pin it (`--ca-pin sha256:<hex>`) and a
// new CA would cut every agent off. The server certificate, by contrast, is
// cheap to replace: it is re-issued whenever it nears expiry, stops matching
// the CA or key, or lacks a name the operator asked for. Operators who bring
// their own certificate point certFile/keyFile (and caFile) at it instead.
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { AirlockError } from "@airlock/shared/errors";
import { ensurePrivateDir, readIfExists, writeFileAtomic } from "./files.js";
import { type PemPair, certDnsNames, desiredSanNames, generateCa, issueServerCert } from "./tls-gen.js";

export const TLS_DIR = "tls";
export const TLS_FILES = {
  caCert: "ca.pem",
  caKey: "ca-key.pem",
  serverCert: "server.pem",
  serverKey: "server-key.pem",
} as const;

/** Renew the server certificate once it has less than this left. */
export const RENEW_BEFORE_MS = 30 * 24 * 3_600_000;

export interface GatewayTlsOptions {
  dataDir: string;
  /** Extra DNS names or IP addresses the server certificate must cover. */
  extraNames?: readonly string[] | undefined;
  /** Operator-supplied server certificate (PEM, leaf first) and key; both or neither. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** CA that issued certFile; defaults to the last certificate in certFile. */
  caFile?: string | undefined;
  /** Current time; tests move it to exercise renewal. */
  now?: Date | undefined;
}

export interface GatewayTls {
  caPem: string;
  /** The server certificate: the leaf when generated, the file's chain as given when configured. */
  certPem: string;
  /** The server key, PKCS#8 PEM. */
  keyPem: string;
  /** `sha256:<lowercase hex of the CA certificate DER>`, what agents pin. */
  caFingerprint: string;
  certNotAfter: Date;
  /** What this call created, so the caller can log it (a new CA means agents must re-pin). */
  generated: { ca: boolean; server: boolean };
}

/** `sha256:<hex>` of the DER of the first certificate in `pem`. */
export function fingerprintPem(pem: string): string {
  const cert = parseCert(pem);
  if (cert === null) throw new AirlockError("INVALID_ARGUMENT", "no certificate found in PEM");
  return `sha256:${createHash("sha256").update(cert.raw).digest("hex")}`;
}

/** Every certificate block in a PEM bundle, in order. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}

function parseCert(pem: string): X509Certificate | null {
  try {
    return new X509Certificate(pem);
  } catch {
    return null;
  }
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

export async function loadOrCreateGatewayTls(opts: GatewayTlsOptions): Promise<GatewayTls> {
  if (opts.certFile !== undefined || opts.keyFile !== undefined || opts.caFile !== undefined) {
    return loadConfiguredTls(opts);
  }
  const now = opts.now ?? new Date();
  const dir = path.join(opts.dataDir, TLS_DIR);
  await ensurePrivateDir(dir);
  const file = (name: keyof typeof TLS_FILES) => path.join(dir, TLS_FILES[name]);

  const { ca, created: caCreated } = await loadOrCreateCa(file("caCert"), file("caKey"), now);
  const caCert = new X509Certificate(ca.certPem);
  const names = desiredSanNames(opts.extraNames);

  let server: PemPair | null = null;
  const certPem = await readIfExists(file("serverCert"));
  const keyPem = await readIfExists(file("serverKey"));
  if (certPem !== null && keyPem !== null && serverCertUsable(certPem, keyPem, caCert, names, now)) {
    server = { certPem, keyPem };
  }
  const serverCreated = server === null;
  if (server === null) {
    server = await issueServerCert(ca, names, now);
    // Key first: a crash in between leaves a cert/key mismatch, which the next start repairs.
    await writeFileAtomic(file("serverKey"), server.keyPem, 0o600);
    await writeFileAtomic(file("serverCert"), server.certPem, 0o644);
  }

  return {
    caPem: ca.certPem,
    certPem: server.certPem,
    keyPem: server.keyPem,
    caFingerprint: fingerprintPem(ca.certPem),
    certNotAfter: new Date(new X509Certificate(server.certPem).validTo),
    generated: { ca: caCreated, server: serverCreated },
  };
}

async function loadOrCreateCa(certFile: string, keyFile: string, now: Date): Promise<{ ca: PemPair; created: boolean }> {
  const certPem = await readIfExists(certFile);
  const keyPem = await readIfExists(keyFile);
  if (certPem !== null) {
    const cert = parseCert(certPem);
    const hint = `restore it, or delete ${certFile} to create a new CA (every agent must then be re-pinned)`;
    if (cert === null) throw new AirlockError("CONFIG_INVALID", `${certFile} is not a certificate: ${hint}`);
    if (keyPem === null) throw new AirlockError("CONFIG_INVALID", `${keyFile} is missing: ${hint}`);
    if (!keyMatches(cert, keyPem)) throw new AirlockError("CONFIG_INVALID", `${keyFile} does not match ${certFile}: ${hint}`);
    // A CA about to expire cannot issue useful certs; replacing it is the only way on.
    if (new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_MS) {
      return { ca: { certPem, keyPem }, created: false };
    }
  }
  // No ca.pem means no agent can have pinned this CA yet (a stray ca-key.pem is
  // what a crash between the two writes leaves), so creating one is safe.
  const ca = await generateCa(now);
  await writeFileAtomic(keyFile, ca.keyPem, 0o600);
  await writeFileAtomic(certFile, ca.certPem, 0o644);
  return { ca, created: true };
}

function serverCertUsable(certPem: string, keyPem: string, ca: X509Certificate, names: ReturnType<typeof desiredSanNames>, now: Date): boolean {
  const cert = parseCert(certPem);
  if (cert === null || !keyMatches(cert, keyPem)) return false;
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
  const t = now.getTime();
  if (new Date(cert.validFrom).getTime() > t) return false;
  if (new Date(cert.validTo).getTime() - t <= RENEW_BEFORE_MS) return false;
  // IPs via checkIP, which compares addresses rather than spellings ("::1" vs "0:0::1").
  if (!names.ips.every((ip) => cert.checkIP(ip) !== undefined)) return false;
  const dns = new Set(certDnsNames(certPem));
  return names.dns.every((n) => dns.has(n));
}

async function loadConfiguredTls(opts: GatewayTlsOptions): Promise<GatewayTls> {
  if (opts.certFile === undefined || opts.keyFile === undefined) {
    throw new AirlockError("CONFIG_INVALID", "TLS certFile and keyFile must be configured together (caFile needs both)");
  }
  const read = async (file: string, what: string) => {
    try {
      return await fs.readFile(file, "utf8");
    } catch (err) {
      throw new AirlockError("CONFIG_INVALID", `cannot read TLS ${what} ${file}`, { cause: err });
    }
  };
  const certPem = await read(opts.certFile, "certificate");
  const keyPem = await read(opts.keyFile, "key");
  const chain = splitPemCertificates(certPem);
  const leaf = chain[0] === undefined ? null : parseCert(chain[0]);
  if (leaf === null) throw new AirlockError("CONFIG_INVALID", `${opts.certFile} holds no certificate`);
  if (!keyMatches(leaf, keyPem)) throw new AirlockError("CONFIG_INVALID", `${opts.keyFile} does not match ${opts.certFile}`);

  const caPem = opts.caFile !== undefined ? await read(opts.caFile, "CA") : chain[chain.length - 1]!;
  if (parseCert(caPem) === null) throw new AirlockError("CONFIG_INVALID", `${opts.caFile ?? opts.certFile} holds no CA certificate`);
  return {
    caPem,
    certPem,
    keyPem,
    caFingerprint: fingerprintPem(caPem),
    certNotAfter: new Date(leaf.validTo),
    generated: { ca: false, server: false },
  };
}
