// bench: token validation cost per request: gateway tokens and IdP JWTs (cached JWKS) vs. an unauthenticated request
//
// One process, the way the gateway validates every credential (IdentityService,
// the code REST, WebSocket and the Postgres front door share):
//   1. verify() alone, per call: gateway access token (cached), IdP JWT RS256 /
//      ES256 with the JWKS cached (signature checked: a distinct token each call)
//      and the same JWT again (verified result cached), plus the uncached gateway
//      token (one store lookup) for reference;
//   2. whole HTTP requests over keep-alive to the real gateway: a public route
//      (no credential: the reference) vs. /api/v1/whoami with each credential;
//      the difference of medians is what validation adds to a request.
// The target (issue 4): < 50 µs added per request after the first. Figures are
// printed beside the reference, as ratios; nothing fails on timing.
// The JWT issuer is a local JWKS server (node:http) with keys made here; the
// store is PostgreSQL (a fresh database on 127.0.0.1:5432) or, with
// --store pglite, the embedded one (only the first-use rows touch it).
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { fmt, quantile, table } from "./lib/report.mjs";
import { dropStores, newStore } from "./lib/store.mjs";

const GW = join(import.meta.dirname, "..", "packages", "gateway", "dist");
const b64u = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");

function parseArgs(args) {
  const o = { quick: false, calls: 20000, requests: 4000, store: "postgres" };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--quick") o.quick = true;
    else if (args[i] === "--calls") o.calls = Number(args[++i]);
    else if (args[i] === "--requests") o.requests = Number(args[++i]);
    else if (args[i] === "--store") o.store = args[++i];
    else if (args[i] === "--help") {
      process.stdout.write("pnpm bench auth [--quick] [--calls N] [--requests N] [--store postgres|pglite]\n");
      process.exit(0);
    }
  }
  if (o.quick) Object.assign(o, { calls: 3000, requests: 600 });
  return o;
}

/** A JWT signed with node:crypto (independent of the gateway's code). */
function sign(alg, key, kid, claims) {
  const input = `${b64u({ alg, typ: "JWT", kid })}.${b64u(claims)}`;
  const sig = alg === "RS256" ? crypto.sign("sha256", Buffer.from(input), key) : crypto.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

async function jwksServer(keys) {
  let fetches = 0;
  const srv = http.createServer((req, res) => {
    const base = `http://127.0.0.1:${srv.address().port}`;
    if (req.url === "/.well-known/openid-configuration") return res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
    if (req.url === "/jwks") {
      fetches++;
      return res.end(JSON.stringify({ keys }));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { issuer: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close(), fetches: () => fetches };
}

/** ns per call of an async fn over n calls (one warm-up pass of min(n, 500) first unless warm is false). */
async function perCall(n, fn, warm = true) {
  if (warm) for (let i = 0; i < Math.min(n, 500); i++) await fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * Sequential keep-alive GETs, the variants interleaved request by request so
 * drift in machine load hits them all alike; returns sorted latencies in µs.
 */
async function requests(variants, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = ({ url, headers }) =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      http
        .get(url, { agent, headers }, (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1000) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
        })
        .on("error", reject);
    });
  for (let i = 0; i < 200; i++) for (const v of variants) await one(v);
  const out = variants.map(() => []);
  for (let i = 0; i < n; i++) for (let j = 0; j < variants.length; j++) out[j].push(await one(variants[j]));
  agent.destroy();
  return out.map((a) => a.sort((x, y) => x - y));
}

export async function run(args) {
  const o = parseArgs(args);
  if (!fs.existsSync(join(GW, "index.js"))) throw new Error("build first: pnpm build");
  const { loadConfig, startGateway } = await import(pathToFileURL(join(GW, "index.js")).href);
  const { pino } = await import(pathToFileURL(join(import.meta.dirname, "..", "packages", "gateway", "node_modules", "pino", "pino.js")).href).catch(() => import("pino"));

  const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const idp = await jwksServer([
    { ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-1", alg: "RS256", use: "sig" },
    { ...ec.publicKey.export({ format: "jwk" }), kid: "ec-1", alg: "ES256", use: "sig" },
  ]);
  const dir = fs.mkdtempSync(join(os.tmpdir(), "airlock-bench-auth-"));
  const logger = pino({ level: "silent" });
  const databaseUrl = newStore(o.store);
  const gw = await startGateway(
    loadConfig({
      dataDir: dir,
      ...(databaseUrl ? { databaseUrl } : {}),
      api: { host: "127.0.0.1", port: 0 },
      agents: { host: "127.0.0.1", port: 0, insecure: true },
      postgres: { enabled: false },
      identity: { jwtIssuers: [{ name: "bench-idp", issuer: idp.issuer, audience: "airlock-bench" }] },
    }, {}),
    logger,
  );
  try {
    const ctx = { via: "rest", clientAddr: "127.0.0.1" };
    const now = Math.floor(Date.now() / 1000);
    const claims = (i) => ({ iss: idp.issuer, aud: "airlock-bench", sub: `machine-${i % 7}`, groups: ["ci"], iat: now, exp: now + 3600, jti: `j${i}` });
    const at = (await gw.tokens.mint({ subject: "bench", roles: ["user"], groups: ["bench"], ttlSeconds: 3600 })).token;
    const rsTokens = Array.from({ length: o.calls }, (_, i) => sign("RS256", rsa.privateKey, "rsa-1", claims(i)));
    const esTokens = Array.from({ length: o.calls }, (_, i) => sign("ES256", ec.privateKey, "ec-1", claims(i)));
    const uncachedAt = [];
    for (let i = 0; i < Math.min(300, o.calls); i++) uncachedAt.push((await gw.tokens.mint({ subject: `bench-${i}`, roles: ["user"], ttlSeconds: 3600 })).token);

    // The first JWT: discovery + JWKS fetch (the "first" the target excludes).
    const t0 = process.hrtime.bigint();
    await gw.identity.verify(rsTokens[0], ctx);
    const firstUs = Number(process.hrtime.bigint() - t0) / 1000;

    const micro = [
      ["gateway token, cached", await perCall(o.calls, () => gw.identity.verify(at, ctx))],
      ["IdP JWT RS256, result cached", await perCall(o.calls, () => gw.identity.verify(rsTokens[1], ctx))],
      ["IdP JWT RS256, first use: signature checked (JWKS cached)", await perCall(o.calls - 10, (i) => gw.identity.verify(rsTokens[i + 10], ctx), false)],
      ["IdP JWT ES256, first use: signature checked (JWKS cached)", await perCall(o.calls - 10, (i) => gw.identity.verify(esTokens[i + 10], ctx), false)],
      ["gateway token, first use (store lookup)", await perCall(uncachedAt.length, (i) => gw.identity.verify(uncachedAt[i], ctx), false)],
    ];

    const base = gw.apiUrl;
    const [ref, withAt, withJwt] = await requests(
      [
        { url: `${base}/api/v1/auth/providers`, headers: {} },
        { url: `${base}/api/v1/whoami`, headers: { authorization: `Bearer ${at}` } },
        { url: `${base}/api/v1/whoami`, headers: { authorization: `Bearer ${rsTokens[2]}` } },
      ],
      o.requests,
    );
    const p50 = (a) => quantile(a, 0.5);
    const p99 = (a) => quantile(a, 0.99);

    process.stdout.write(`\nStore: ${o.store}. Token validation (IdentityService.verify), ${o.calls} calls each; first JWT (discovery + JWKS fetch): ${fmt(firstUs, 0)} µs; JWKS fetched ${idp.fetches()}×\n\n`);
    process.stdout.write(
      table(
        ["credential", "µs/call", "target < 50 µs"],
        micro.map(([label, ns]) => [label, fmt(ns / 1000, 2), label.includes("first use") ? "(first use)" : ns / 1000 < 50 ? "met" : "MISSED"]),
      ) + "\n",
    );
    const row = (label, a) => [label, fmt(p50(a), 1), fmt(p99(a), 1), fmt(p50(a) - p50(ref), 1), fmt(p50(a) / p50(ref), 2)];
    process.stdout.write(`\nWhole HTTP requests, keep-alive, sequential, ${o.requests} each (µs):\n\n`);
    process.stdout.write(
      table(["request", "p50", "p99", "added p50 vs reference", "ratio"], [row("public route, no credential (reference)", ref), row("whoami, gateway token", withAt), row("whoami, IdP JWT RS256", withJwt)]) + "\n",
    );
    const results = { at: new Date().toISOString(), store: o.store, calls: o.calls, requests: o.requests, firstJwtUs: firstUs, jwksFetches: idp.fetches(), microNs: Object.fromEntries(micro), http: { ref: { p50: p50(ref), p99: p99(ref) }, gatewayToken: { p50: p50(withAt), p99: p99(withAt) }, jwt: { p50: p50(withJwt), p99: p99(withJwt) } } };
    const outDir = join(import.meta.dirname, "results");
    fs.mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `auth-${results.at.replace(/[:.]/g, "-")}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2));
    process.stdout.write(`\nresults: ${file}\n`);
    return results;
  } finally {
    await gw.stop();
    dropStores();
    idp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
