import { X509Certificate } from "node:crypto";
import { promises as fs } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TLS_DIR, TLS_FILES, fingerprintPem, loadOrCreateGatewayTls, type GatewayTls } from "./tls.js";
import { certDnsNames } from "./tls-gen.js";

let root: string;
let n = 0;
const freshDir = async () => {
  const d = path.join(root, `d${n++}`);
  await fs.mkdir(d);
  return d;
};
const DAY = 24 * 3_600_000;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "airlock-tls-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function withServer<T>(material: GatewayTls, host: string, fn: (port: number) => Promise<T>): Promise<T> {
  const server = tls.createServer({ cert: material.certPem, key: material.keyPem }, (sock) => sock.end("hi"));
  server.on("tlsClientError", () => {}); // a refused client is the expected outcome in some tests
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  try {
    return await fn((server.address() as AddressInfo).port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

type Outcome = { ok: true; data: string } | { ok: false; code: string };
function connect(port: number, opts: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = tls.connect({ port, ...opts });
    let data = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (data += d));
    sock.on("end", () => resolve({ ok: true, data }));
    sock.on("error", (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? err.message }));
  });
}

describe("generated gateway TLS", () => {
  let dataDir: string;
  let first: GatewayTls;

  beforeAll(async () => {
    dataDir = await freshDir();
    first = await loadOrCreateGatewayTls({ dataDir });
  });

  it("writes the CA and server cert into <dataDir>/tls with private keys 0600", async () => {
    expect(first.generated).toEqual({ ca: true, server: true });
    const dir = path.join(dataDir, TLS_DIR);
    expect((await fs.readdir(dir)).sort()).toEqual(Object.values(TLS_FILES).sort());
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of [TLS_FILES.caKey, TLS_FILES.serverKey]) expect((await fs.stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path.join(dir, TLS_FILES.caCert), "utf8")).toBe(first.caPem);
    expect(first.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8
  });

  it("makes an ECDSA P-256 CA for 10 years and a server cert for 1 year with the right SANs", () => {
    const ca = new X509Certificate(first.caPem);
    const leaf = new X509Certificate(first.certPem);
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const years = (c: X509Certificate) => (Date.parse(c.validTo) - Date.parse(c.validFrom)) / (365 * DAY);
    expect(years(ca)).toBeGreaterThan(9.9);
    expect(years(leaf)).toBeGreaterThan(0.99);
    expect(years(leaf)).toBeLessThan(1.01);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(certDnsNames(first.certPem)).toEqual(expect.arrayContaining(["localhost", os.hostname().toLowerCase()]));
    for (const ip of ["127.0.0.1", "::1"]) expect(leaf.checkIP(ip)).toBe(ip);
    expect(first.certNotAfter.getTime()).toBe(Date.parse(leaf.validTo));
  });

  it("fingerprints the CA as sha256:<hex of DER>, stable across restarts", async () => {
    const nodeFp = new X509Certificate(first.caPem).fingerprint256.replace(/:/g, "").toLowerCase();
    expect(first.caFingerprint).toBe(`sha256:${nodeFp}`);
    expect(fingerprintPem(first.caPem)).toBe(first.caFingerprint);
    const again = await loadOrCreateGatewayTls({ dataDir });
    expect(again.generated).toEqual({ ca: false, server: false });
    expect(again.caFingerprint).toBe(first.caFingerprint);
    expect(again.certPem).toBe(first.certPem);
    expect(again.keyPem).toBe(first.keyPem);
    expect(() => fingerprintPem("nope")).toThrow();
  });

  it("serves TLS that clients trusting only the CA accept, by name and by IP", async () => {
    await withServer(first, "127.0.0.1", async (port) => {
      expect(await connect(port, { host: "127.0.0.1", ca: first.caPem, servername: "localhost" })).toEqual({ ok: true, data: "hi" });
      // No servername: Node checks the IP SAN against the host it dialled.
      expect(await connect(port, { host: "127.0.0.1", ca: first.caPem })).toEqual({ ok: true, data: "hi" });
      expect(await connect(port, { host: "127.0.0.1", ca: first.caPem, servername: "evil.example" })).toEqual({
        ok: false,
        code: "ERR_TLS_CERT_ALTNAME_INVALID",
      });
    });
  });

  it("serves TLS on ::1 too (when the host has IPv6 loopback)", async () => {
    let listened = false;
    try {
      await withServer(first, "::1", async (port) => {
        listened = true;
        expect(await connect(port, { host: "::1", ca: first.caPem })).toEqual({ ok: true, data: "hi" });
      });
    } catch (err) {
      if (listened || !["EADDRNOTAVAIL", "EAFNOSUPPORT"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
    }
  });

  it("is refused by a client that trusts a different CA", async () => {
    const other = await loadOrCreateGatewayTls({ dataDir: await freshDir() });
    expect(other.caFingerprint).not.toBe(first.caFingerprint);
    await withServer(first, "127.0.0.1", async (port) => {
      const r = await connect(port, { host: "127.0.0.1", ca: other.caPem, servername: "localhost" });
      expect(r.ok).toBe(false);
      expect(r.ok ? "" : r.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    });
  });

  it("works with grpc-js credentials", async () => {
    const server = new grpc.Server();
    const creds = grpc.ServerCredentials.createSsl(null, [
      { private_key: Buffer.from(first.keyPem), cert_chain: Buffer.from(first.certPem) },
    ]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const client = new grpc.Client(`localhost:${port}`, grpc.credentials.createSsl(Buffer.from(first.caPem)));
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
      );
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe("server certificate renewal", () => {
  it("re-issues for a new requested name, keeping the CA", async () => {
    const dataDir = await freshDir();
    const a = await loadOrCreateGatewayTls({ dataDir });
    const b = await loadOrCreateGatewayTls({ dataDir, extraNames: ["GW.Example.test", "10.9.8.7", "[fd00::1]"] });
    expect(b.generated).toEqual({ ca: false, server: true });
    expect(b.caFingerprint).toBe(a.caFingerprint);
    expect(certDnsNames(b.certPem)).toContain("gw.example.test");
    expect(new X509Certificate(b.certPem).checkIP("10.9.8.7")).toBe("10.9.8.7");
    expect(new X509Certificate(b.certPem).checkIP("fd00::1")).toBe("fd00::1");
    // Asking again for names already covered changes nothing.
    const c = await loadOrCreateGatewayTls({ dataDir, extraNames: ["gw.example.test"] });
    expect(c.generated.server).toBe(false);
    await withServer(c, "127.0.0.1", async (port) => {
      expect(await connect(port, { host: "127.0.0.1", ca: a.caPem, servername: "gw.example.test" })).toMatchObject({ ok: true });
    });
  });

  it("re-issues when the cert expires within 30 days, not before", async () => {
    const dataDir = await freshDir();
    const a = await loadOrCreateGatewayTls({ dataDir });
    const later = await loadOrCreateGatewayTls({ dataDir, now: new Date(Date.now() + 300 * DAY) });
    expect(later.generated).toEqual({ ca: false, server: false });
    const renewed = await loadOrCreateGatewayTls({ dataDir, now: new Date(Date.now() + 340 * DAY) });
    expect(renewed.generated).toEqual({ ca: false, server: true });
    expect(renewed.caFingerprint).toBe(a.caFingerprint);
    expect(renewed.certNotAfter.getTime()).toBeGreaterThan(a.certNotAfter.getTime());
  });

  it("repairs a missing or mismatched server key", async () => {
    const dataDir = await freshDir();
    const a = await loadOrCreateGatewayTls({ dataDir });
    const other = await loadOrCreateGatewayTls({ dataDir: await freshDir() });
    await fs.writeFile(path.join(dataDir, TLS_DIR, TLS_FILES.serverKey), other.keyPem);
    const b = await loadOrCreateGatewayTls({ dataDir });
    expect(b.generated).toEqual({ ca: false, server: true });
    expect(b.caFingerprint).toBe(a.caFingerprint);
  });

  it("refuses to replace a CA whose key is lost (agents pinned it)", async () => {
    const dataDir = await freshDir();
    await loadOrCreateGatewayTls({ dataDir });
    await fs.rm(path.join(dataDir, TLS_DIR, TLS_FILES.caKey));
    await expect(loadOrCreateGatewayTls({ dataDir })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});

describe("operator-supplied certificate", () => {
  it("loads configured files instead of generating", async () => {
    const src = await loadOrCreateGatewayTls({ dataDir: await freshDir() });
    const dir = path.join(root, "byo");
    await fs.mkdir(dir);
    const f = (name: string) => path.join(dir, name);
    await fs.writeFile(f("cert.pem"), src.certPem);
    await fs.writeFile(f("key.pem"), src.keyPem);
    await fs.writeFile(f("ca.pem"), src.caPem);
    const dataDir = await freshDir();
    const got = await loadOrCreateGatewayTls({ dataDir, certFile: f("cert.pem"), keyFile: f("key.pem"), caFile: f("ca.pem") });
    expect(got).toMatchObject({ caPem: src.caPem, certPem: src.certPem, keyPem: src.keyPem, caFingerprint: src.caFingerprint });
    expect(got.generated).toEqual({ ca: false, server: false });
    expect(await fs.readdir(dataDir)).toEqual([]);

    // Without caFile, the last certificate of the chain is the CA.
    await fs.writeFile(f("chain.pem"), src.certPem + src.caPem);
    const chained = await loadOrCreateGatewayTls({ dataDir, certFile: f("chain.pem"), keyFile: f("key.pem") });
    expect(chained.caFingerprint).toBe(src.caFingerprint);

    const other = await loadOrCreateGatewayTls({ dataDir: await freshDir() });
    await fs.writeFile(f("other-key.pem"), other.keyPem);
    for (const bad of [
      { certFile: f("cert.pem") },
      { caFile: f("ca.pem") },
      { certFile: f("cert.pem"), keyFile: f("other-key.pem") },
      { certFile: f("missing.pem"), keyFile: f("key.pem") },
      { certFile: f("key.pem"), keyFile: f("key.pem") },
    ]) {
      await expect(loadOrCreateGatewayTls({ dataDir, ...bad })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    }
  });
});
