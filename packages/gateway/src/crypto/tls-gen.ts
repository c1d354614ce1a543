// Certificate generation for the agent port: a private CA and server
// certificates signed by it, all ECDSA P-256 / SHA-256 (small, fast, and
// accepted by every TLS stack we talk to, including grpc-js).
//
// @peculiar/x509 builds the certificates; keys come from Node's webcrypto and
// are exported as PKCS#8 PEM, the format Node's tls and grpc-js load directly.
// tsyringe (used inside @peculiar/x509) needs a Reflect polyfill loaded first;
// ESM evaluates imports in order, so this import must stay above the x509 one.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { KeyObject, createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import os from "node:os";

// Passed explicitly rather than via x509.cryptoProvider.set(), so we never
// change a process-wide setting other code might rely on.
const crypto: webcrypto.Crypto = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const EC_PARAMS = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALG = { name: "ECDSA", hash: "SHA-256" } as const;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const CA_VALIDITY_MS = 3650 * DAY_MS; // 10 years
export const SERVER_VALIDITY_MS = 365 * DAY_MS; // 1 year
// Backdate notBefore so a peer whose clock is a little behind ours still accepts a fresh cert.
const CLOCK_SKEW_MS = HOUR_MS;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface SanNames {
  dns: string[];
  ips: string[];
}

/** A positive, minimal-length DER INTEGER serial with 126 bits of randomness. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40; // high bit clear (positive) and not zero (no leading-zero octet)
  return b.toString("hex");
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_PARAMS, true, ["sign", "verify"]);
}

function exportPkcs8Pem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }) as string;
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  const der = createPrivateKey(keyPem).export({ type: "pkcs8", format: "der" });
  return crypto.subtle.importKey("pkcs8", der, EC_PARAMS, false, ["sign"]);
}

function pemOf(cert: x509.X509Certificate): string {
  // @peculiar's PEM is already standard; end with a newline like openssl does.
  const pem = cert.toString("pem");
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

/**
 * The names the server certificate must carry: loopback in every spelling
 * agents on the same host use, this host's name, and whatever the operator
 * configured (DNS names are case-insensitive, so they are lowercased).
 */
export function desiredSanNames(extraNames: readonly string[] = [], hostname = os.hostname()): SanNames {
  const dns = new Set<string>(["localhost"]);
  const ips = new Set<string>(["127.0.0.1", "::1"]);
  for (const raw of [hostname, ...extraNames]) {
    const name = raw.trim();
    if (name === "") continue;
    // Brackets are how IPv6 literals appear in URLs; people copy them from there.
    const unbracketed = name.startsWith("[") && name.endsWith("]") ? name.slice(1, -1) : name;
    if (isIpLiteral(unbracketed)) ips.add(unbracketed);
    else dns.add(name.toLowerCase().replace(/\.$/, ""));
  }
  return { dns: [...dns], ips: [...ips] };
}

function isIpLiteral(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
}

/** A new self-signed CA. Its name carries a random suffix so two gateways' CAs are never confused. */
export async function generateCa(now: Date = new Date()): Promise<PemPair> {
  const keys = await newKeyPair();
  const name: x509.JsonName = [{ CN: [`Airlock Gateway CA ${randomBytes(4).toString("hex")}`] }, { O: ["Airlock"] }];
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
      signingAlgorithm: SIGNING_ALG,
      keys,
      extensions: [
        // pathLength 0: this CA signs leaf certificates only.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: pemOf(cert), keyPem: exportPkcs8Pem(keys.privateKey) };
}

/** A new server key and certificate for `names`, signed by `ca`, never outliving the CA. */
export async function issueServerCert(ca: PemPair, names: SanNames, now: Date = new Date()): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await importSigningKey(ca.keyPem);
  const keys = await newKeyPair();
  const notAfter = Math.min(now.getTime() + SERVER_VALIDITY_MS, caCert.notAfter.getTime());
  const cn = names.dns.find((n) => n !== "localhost") ?? names.dns[0] ?? "airlock-gateway";
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [cn] }, { O: ["Airlock"] }],
      issuer: caCert.subject,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(notAfter),
      signingAlgorithm: SIGNING_ALG,
      publicKey: keys.publicKey,
      signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([
          ...names.dns.map((value) => ({ type: "dns" as const, value })),
          ...names.ips.map((value) => ({ type: "ip" as const, value })),
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: pemOf(cert), keyPem: exportPkcs8Pem(keys.privateKey) };
}

/** The DNS names in a certificate's subjectAltName, lowercased. */
export function certDnsNames(certPem: string): string[] {
  const san = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
  if (san === null) return [];
  return san.names.items.filter((n) => n.type === "dns").map((n) => n.value.toLowerCase());
}
