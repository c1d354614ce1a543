// Checks the deployment files in deploy/ with what runs on a machine without a
// Docker engine: the compose file is parsed and validated against the Compose
// Specification's JSON schema (plus the semantic points that matter for
// Airlock), the Dockerfile gets a cheap static sanity check, and the systemd
// unit goes through `systemd-analyze verify` (Debian package `systemd`).
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEPLOY = join(ROOT, "deploy");
const COMPOSE_FILE = join(DEPLOY, "docker-compose.yml");
const DOCKERFILE = join(DEPLOY, "Dockerfile");
const UNIT_FILE = join(DEPLOY, "systemd", "airlock-agent.service");
const UNIT_ENV_EXAMPLE = join(DEPLOY, "systemd", "agent.env.example");
const COMPOSE_ENV_EXAMPLE = join(DEPLOY, ".env.example");

// The CLI's environment surface (`airlock gateway`, `airlock agent`).
const GATEWAY_ENV = new Set([
  "AIRLOCK_DATA_DIR",
  "AIRLOCK_DATABASE_URL",
  "AIRLOCK_MASTER_KEY",
  "AIRLOCK_API_LISTEN",
  "AIRLOCK_AGENT_LISTEN",
  "AIRLOCK_TLS_NAMES",
  "AIRLOCK_LOG_LEVEL",
]);
const AGENT_ENV = new Set([
  "AIRLOCK_GATEWAY",
  "AIRLOCK_AGENT_TOKEN",
  "AIRLOCK_AGENT_DATA_DIR",
  "AIRLOCK_CA_FILE",
  "AIRLOCK_CA_PIN",
  "AIRLOCK_LOG_LEVEL",
]);

// ---------------------------------------------------------------- helpers ---

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
type Service = Obj;

const read = (p: string): string => readFileSync(p, "utf8");

function asObj(v: Json | undefined, what: string): Obj {
  if (v === null || v === undefined || typeof v !== "object" || Array.isArray(v)) {
    throw new Error(`${what}: expected a mapping, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parse YAML the way Compose does (YAML 1.1 merge keys `<<` resolved). */
function parseComposeYaml(text: string): Obj {
  const doc = parseDocument(text, { merge: true, prettyErrors: true, uniqueKeys: true });
  const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
  if (problems.length > 0) throw new Error(`YAML problems:\n${problems.join("\n")}`);
  return asObj(doc.toJS({ maxAliasCount: 100 }) as Json, "compose file");
}

/** A service's `environment`, in either the mapping or the list form. */
function envOf(service: Service): Record<string, string | null> {
  const env = service.environment;
  if (env === undefined || env === null) return {};
  if (Array.isArray(env)) {
    const out: Record<string, string | null> = {};
    for (const item of env) {
      const s = String(item);
      const eq = s.indexOf("=");
      if (eq < 0) out[s] = null;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  return Object.fromEntries(
    Object.entries(asObj(env, "environment")).map(([k, v]) => [k, v === null ? null : String(v)]),
  );
}

/** Names in a `depends_on` (list or mapping form) with their condition. */
function dependsOn(service: Service): Record<string, string> {
  const d = service.depends_on;
  if (d === undefined || d === null) return {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [String(n), "service_started"]));
  return Object.fromEntries(
    Object.entries(asObj(d, "depends_on")).map(([k, v]) => [
      k,
      String(asObj(v ?? {}, `depends_on.${k}`).condition ?? "service_started"),
    ]),
  );
}

/** Container ports published by `ports` (short "host:container[/proto]" or long form). */
function containerPorts(service: Service): number[] {
  const ports = service.ports;
  if (!Array.isArray(ports)) return [];
  return ports.map((p) => {
    if (typeof p === "object" && p !== null && !Array.isArray(p)) return Number(p.target);
    const short = String(p).replace(/\/(tcp|udp|sctp)$/, "");
    return Number(short.slice(short.lastIndexOf(":") + 1));
  });
}

/** `volumes` entries as { source, target } (short or long form). */
function mounts(service: Service): { source: string; target: string; type: "volume" | "bind" }[] {
  const vols = service.volumes;
  if (!Array.isArray(vols)) return [];
  return vols.map((v) => {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      return { source: String(v.source), target: String(v.target), type: v.type === "bind" ? "bind" : "volume" };
    }
    const [source = "", target = ""] = String(v).split(":");
    const bind = source.startsWith(".") || source.startsWith("/") || source.startsWith("~");
    return { source, target, type: bind ? "bind" : "volume" };
  });
}

function networksOf(service: Service): string[] {
  const n = service.networks;
  if (n === undefined || n === null) return ["default"];
  return Array.isArray(n) ? n.map(String) : Object.keys(asObj(n, "networks"));
}

const listenPort = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

/**
 * Compose-spec interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
 * ${VAR?e}, ${VAR:+r}, ${VAR+r}. Missing required variables throw, like Compose.
 */
function interpolateString(s: string, env: Record<string, string | undefined>, seen?: Set<string>): string {
  return s.replace(/\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced?: string, bare?: string) => {
    if (m === "$$") return "$";
    if (bare !== undefined) {
      seen?.add(bare);
      return env[bare] ?? "";
    }
    const b = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s.exec(braced ?? "");
    if (!b) throw new Error(`invalid interpolation "${m}"`);
    const [, name = "", op, arg = ""] = b;
    seen?.add(name);
    const value = env[name];
    const unsetOrEmpty = value === undefined || value === "";
    switch (op) {
      case undefined:
        return value ?? "";
      case ":-":
        return unsetOrEmpty ? arg : (value as string);
      case "-":
        return value === undefined ? arg : value;
      case ":?":
        if (unsetOrEmpty) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value as string;
      case "?":
        if (value === undefined) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value;
      case ":+":
        return unsetOrEmpty ? "" : arg;
      case "+":
        return value === undefined ? "" : arg;
      default:
        throw new Error(`invalid interpolation "${m}"`);
    }
  });
}

function interpolate(v: Json, env: Record<string, string | undefined>, seen?: Set<string>): Json {
  if (typeof v === "string") return interpolateString(v, env, seen);
  if (Array.isArray(v)) return v.map((x) => interpolate(x, env, seen));
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, env, seen)]));
  }
  return v;
}

const formatErrors = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`).join("\n");

/**
 * The Compose Specification schema (compose-spec/compose-spec, schema/compose-spec.json,
 * Apache-2.0) as vendored by the `dclint` npm package in schemas/compose.schema.json.
 */
function loadComposeSchema(): { schema: Obj; path: string; version: string } {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("dclint/package.json");
  const path = join(dirname(pkgJson), "schemas", "compose.schema.json");
  const version = String((JSON.parse(read(pkgJson)) as Obj).version);
  return { schema: JSON.parse(read(path)) as Obj, path, version };
}

function compileComposeSchema(schema: Obj): ValidateFunction {
  // The schema declares draft-07 (as "https://json-schema.org/draft-07/schema").
  expect(String(schema.$schema)).toMatch(/json-schema\.org\/draft-07\/schema#?$/);
  // strictSchema stays on (an unknown keyword in the schema is an error); the
  // strictTypes/Tuples/Required lints are about the upstream schema's style.
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
  const require = createRequire(import.meta.url);
  const draft7 = require("ajv/dist/refs/json-schema-draft-07.json") as Obj;
  if (String(schema.$schema) !== String(draft7.$id)) {
    // Same meta-schema, spelled with https:// and without the trailing '#'.
    ajv.addMetaSchema({ ...draft7, $id: String(schema.$schema) });
  }
  return ajv.compile(schema);
}

/** Env values that satisfy every required variable, shaped like the real thing. */
const SAMPLE_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: "0123456789abcdef0123456789abcdef0123456789abcdef",
  AIRLOCK_MASTER_KEY: Buffer.alloc(32, 7).toString("base64"),
  AIRLOCK_AGENT_TOKEN: `alk_enr_${"A".repeat(43)}`,
  AIRLOCK_CA_PIN: `sha256:${"ab".repeat(32)}`,
};

// ---------------------------------------------------------------- compose ---

describe("deploy/docker-compose.yml", () => {
  const raw = read(COMPOSE_FILE);
  const compose = parseComposeYaml(raw);
  const services = asObj(compose.services, "services");
  const svc = (name: string): Service => asObj(services[name], `services.${name}`);
  const { schema, path: schemaPath, version: dclintVersion } = loadComposeSchema();
  const validate = compileComposeSchema(schema);

  it("uses the Compose Specification schema shipped by the dclint package", () => {
    expect(schema.title).toBe("Compose Specification");
    expect(existsSync(schemaPath)).toBe(true);
    // Recent spec features, so this is not an outdated copy of the schema.
    const serviceProps = asObj(asObj(asObj(schema.definitions, "definitions").service, "service").properties, "p");
    expect(Object.keys(serviceProps)).toEqual(expect.arrayContaining(["develop", "post_start", "gpus"]));
    expect(dclintVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("is valid against the Compose Specification JSON schema", () => {
    const ok = validate(compose);
    expect(formatErrors(validate.errors)).toBe("");
    expect(ok).toBe(true);
  });

  it("stays valid after interpolation with every required variable set", () => {
    const resolved = interpolate(compose, SAMPLE_ENV);
    const ok = validate(resolved);
    expect(formatErrors(validate.errors)).toBe("");
    expect(ok).toBe(true);
  });

  it("the schema check is live: broken variants are rejected", () => {
    const typo = structuredClone(compose) as Obj;
    const gw = asObj(asObj(typo.services, "services").gateway, "gateway");
    gw.healthchek = gw.healthcheck ?? null;
    expect(validate(typo)).toBe(false);

    const badCondition = structuredClone(compose) as Obj;
    const agent = asObj(asObj(badCondition.services, "services").agent, "agent");
    agent.depends_on = { gateway: { condition: "service_ready" } };
    expect(validate(badCondition)).toBe(false);

    const badRestart = structuredClone(compose) as Obj;
    asObj(asObj(badRestart.services, "services").postgres, "postgres").restart = 3;
    expect(validate(badRestart)).toBe(false);
  });

  it("has the gateway, its PostgreSQL, one agent and a sample target", () => {
    expect(Object.keys(services).sort()).toEqual(["agent", "gateway", "postgres", "sample-db"]);
    expect(svc("postgres").image).toBe("postgres:16");
    expect(svc("gateway").command).toEqual(["gateway"]);
    expect(svc("agent").command).toEqual(["agent"]);
  });

  it("gateway waits for a healthy PostgreSQL and uses it as its store", () => {
    const pg = svc("postgres");
    const hc = asObj(pg.healthcheck, "postgres.healthcheck");
    expect(hc.disable).not.toBe(true);
    expect(JSON.stringify(hc.test)).toContain("pg_isready");
    expect(dependsOn(svc("gateway"))).toMatchObject({ postgres: "service_healthy" });

    const env = envOf(svc("gateway"));
    const resolvedGw = envOf(asObj(interpolate(svc("gateway"), SAMPLE_ENV), "gateway"));
    const pgEnv = envOf(asObj(interpolate(pg, SAMPLE_ENV), "postgres"));
    const url = new URL(String(resolvedGw.AIRLOCK_DATABASE_URL));
    expect(url.protocol).toMatch(/^postgres(ql)?:$/);
    expect(url.hostname).toBe("postgres");
    expect(url.port || "5432").toBe("5432");
    expect(decodeURIComponent(url.username)).toBe(pgEnv.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(pgEnv.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
    expect(env.AIRLOCK_MASTER_KEY).toMatch(/^\$\{AIRLOCK_MASTER_KEY:\?[^}]+\}$/);
    // Gateway and store share a network.
    expect(networksOf(svc("gateway")).some((n) => networksOf(pg).includes(n))).toBe(true);
  });

  it("gateway: CLI env only, published ports, data volume, /healthz healthcheck", () => {
    const gw = svc("gateway");
    const env = envOf(gw);
    for (const k of Object.keys(env)) expect(GATEWAY_ENV, `unknown gateway env ${k}`).toContain(k);
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining(["AIRLOCK_DATA_DIR", "AIRLOCK_DATABASE_URL", "AIRLOCK_MASTER_KEY"]),
    );
    const apiPort = listenPort(env.AIRLOCK_API_LISTEN ?? "0.0.0.0:8080");
    const agentPort = listenPort(env.AIRLOCK_AGENT_LISTEN ?? "0.0.0.0:8443");
    expect([apiPort, agentPort]).toEqual([8080, 8443]);
    expect(containerPorts(gw).sort((a, b) => a - b)).toEqual([8080, 8443, 15432]);

    const dataDir = env.AIRLOCK_DATA_DIR;
    const data = mounts(gw).find((m) => m.target === dataDir);
    expect(data, "AIRLOCK_DATA_DIR must be on a volume").toBeDefined();
    expect(data?.type).toBe("volume");

    const hc = asObj(gw.healthcheck, "gateway.healthcheck");
    expect(hc.disable).not.toBe(true);
    expect(JSON.stringify(hc.test)).toContain(`:${apiPort}/healthz`);
  });

  it("agent gets its enrollment token (and CA trust) from the environment", () => {
    const agent = svc("agent");
    const gwEnv = envOf(svc("gateway"));
    const env = envOf(agent);
    for (const k of Object.keys(env)) expect(AGENT_ENV, `unknown agent env ${k}`).toContain(k);
    expect(env.AIRLOCK_AGENT_TOKEN).toMatch(/^\$\{AIRLOCK_AGENT_TOKEN:\?[^}]+\}$/);
    expect(env.AIRLOCK_CA_PIN ?? env.AIRLOCK_CA_FILE).toBeTruthy();
    // Dials the gateway service on its agent port, under a name in the gateway's certificate.
    const [host, port] = String(env.AIRLOCK_GATEWAY).split(":");
    expect(host).toBe("gateway");
    expect(Number(port)).toBe(listenPort(gwEnv.AIRLOCK_AGENT_LISTEN ?? "0.0.0.0:8443"));
    const tlsNames = String(interpolate(gwEnv.AIRLOCK_TLS_NAMES ?? "", {})).split(",");
    expect(tlsNames).toContain("gateway");
    expect(dependsOn(agent)).toMatchObject({ gateway: "service_healthy" });
    // Its long-lived key survives restarts.
    const data = mounts(agent).find((m) => m.target === env.AIRLOCK_AGENT_DATA_DIR);
    expect(data?.type).toBe("volume");
  });

  it("refuses to start without the agent token, naming the variable", () => {
    const { AIRLOCK_AGENT_TOKEN: _omit, ...rest } = SAMPLE_ENV;
    expect(() => interpolate(compose, rest)).toThrow(/AIRLOCK_AGENT_TOKEN/);
    expect(() => interpolate(compose, { ...rest, AIRLOCK_AGENT_TOKEN: "" })).toThrow(/AIRLOCK_AGENT_TOKEN/);
  });

  it("every service has a restart policy, and a healthcheck where it can have one", () => {
    for (const [name, s] of Object.entries(services)) {
      const service = asObj(s, name);
      const restart = service.restart;
      const hc = service.healthcheck as Obj | undefined;
      const healthy = hc !== undefined && hc.disable !== true && hc.test !== undefined;
      expect(healthy || restart !== undefined, `${name}: needs a healthcheck or a restart policy`).toBe(true);
      expect(["always", "unless-stopped"], `${name}: restart policy`).toContain(restart);
    }
    // The agent has no HTTP endpoint; everything else reports health.
    for (const name of ["postgres", "gateway", "sample-db"]) expect(svc(name).healthcheck).toBeDefined();
  });

  it("the sample target is reachable by the agent only, not by the gateway directly", () => {
    const target = networksOf(svc("sample-db"));
    expect(networksOf(svc("agent")).some((n) => target.includes(n))).toBe(true);
    expect(networksOf(svc("gateway")).some((n) => target.includes(n))).toBe(false);
    expect(svc("sample-db").ports).toBeUndefined();
  });

  it("named volumes and networks are declared; bind-mount sources exist", () => {
    const declaredVolumes = Object.keys(asObj(compose.volumes ?? {}, "volumes"));
    const declaredNetworks = Object.keys(asObj(compose.networks ?? {}, "networks"));
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(asObj(s, name))) {
        if (m.type === "volume") expect(declaredVolumes, `${name}: volume ${m.source}`).toContain(m.source);
        else expect(existsSync(resolve(DEPLOY, m.source)), `${name}: bind source ${m.source}`).toBe(true);
      }
      for (const n of networksOf(asObj(s, name))) {
        if (n !== "default") expect(declaredNetworks, `${name}: network ${n}`).toContain(n);
      }
    }
  });

  it("images are pinned, and the build context and Dockerfile exist", () => {
    for (const [name, s] of Object.entries(services)) {
      const service = asObj(s, name);
      const image = String(interpolate(service.image ?? "", {}));
      if (service.build === undefined) expect(image, `${name}: image tag`).toMatch(/^[^:]+:(?!latest$)[\w.-]+$/);
      if (service.build !== undefined) {
        const build = asObj(service.build, `${name}.build`);
        const context = resolve(DEPLOY, String(build.context ?? "."));
        expect(context).toBe(ROOT);
        expect(existsSync(resolve(context, String(build.dockerfile ?? "Dockerfile")))).toBe(true);
      }
    }
  });

  it("every variable the file uses is listed in .env.example", () => {
    const seen = new Set<string>();
    interpolate(compose, SAMPLE_ENV, seen);
    const example = read(COMPOSE_ENV_EXAMPLE);
    for (const name of seen) {
      expect(example, `${name} missing from deploy/.env.example`).toMatch(new RegExp(`^#? ?${name}=`, "m"));
    }
    expect(read(join(DEPLOY, ".gitignore"))).toMatch(/^\.env$/m);
  });
});

// ------------------------------------------------------------- Dockerfile ---

type Instruction = { cmd: string; args: string; line: number };

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = "";
  let start = 0;
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (buf === "" && /^\s*(#|$)/.test(line)) return; // comment / blank between instructions
    if (buf !== "" && /^\s*#/.test(line)) return; // comment inside a continuation
    if (buf === "") start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += `${line.replace(/\\\s*$/, "")} `;
      return;
    }
    buf += line;
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(buf);
    if (m) out.push({ cmd: (m[1] ?? "").toUpperCase(), args: (m[2] ?? "").trim(), line: start });
    buf = "";
  });
  return out;
}

describe("deploy/Dockerfile (static sanity check; no Docker engine here)", () => {
  const ins = parseDockerfile(read(DOCKERFILE));
  const rootPkg = JSON.parse(read(join(ROOT, "package.json"))) as Obj;
  const argDefaults = new Map(
    ins
      .filter((i) => i.cmd === "ARG" && i.args.includes("="))
      .map((i) => [i.args.split("=")[0] ?? "", i.args.slice(i.args.indexOf("=") + 1)]),
  );
  const subst = (s: string): string =>
    s.replace(/\$\{?(\w+)\}?/g, (m, n: string) => argDefaults.get(n) ?? m);
  const froms = ins.filter((i) => i.cmd === "FROM");

  it("is a multi-stage build on node:20-bookworm-slim", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(subst(f.args.split(/\s+/)[0] ?? "")).toBe("node:20-bookworm-slim");
  });

  it("installs the repo's pnpm, a frozen lockfile, builds, and runs the CLI", () => {
    const runs = ins.filter((i) => i.cmd === "RUN").map((i) => i.args);
    const pnpmVersion = String(rootPkg.packageManager).replace(/^pnpm@/, "");
    expect(runs.some((r) => r.includes(`npm i -g pnpm@${pnpmVersion}`))).toBe(true);
    expect(runs.some((r) => /pnpm install --frozen-lockfile(?! --prod)/.test(r))).toBe(true);
    expect(runs.some((r) => /\bpnpm build\b/.test(r))).toBe(true);
    const entry = ins.filter((i) => i.cmd === "ENTRYPOINT").at(-1);
    expect(JSON.parse(entry?.args ?? "null")).toEqual(["node", "packages/cli/dist/main.js"]);
    expect(existsSync(join(ROOT, "packages", "cli", "package.json"))).toBe(true);
    const cliPkg = JSON.parse(read(join(ROOT, "packages", "cli", "package.json"))) as Obj;
    expect(asObj(cliPkg.bin, "bin").airlock).toBe("./dist/main.js");
  });

  it("COPY sources exist in the repository and --from names a stage", () => {
    const stages = new Set(froms.map((f) => /\bAS\s+(\S+)/i.exec(f.args)?.[1]).filter(Boolean));
    const copies = ins.filter((i) => i.cmd === "COPY" || i.cmd === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const words = c.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith("--"));
      const paths = words.filter((w) => !w.startsWith("--"));
      const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
      if (from !== undefined) {
        expect(stages, `line ${c.line}: --from=${from}`).toContain(from);
        continue;
      }
      for (const src of paths.slice(0, -1)) {
        expect(existsSync(resolve(ROOT, src)), `line ${c.line}: COPY source ${src}`).toBe(true);
      }
    }
  });

  it("runs as an unprivileged user, and the build context skips node_modules", () => {
    const lastFrom = ins.lastIndexOf(froms.at(-1) as Instruction);
    const user = ins.slice(lastFrom).filter((i) => i.cmd === "USER").at(-1);
    expect(user?.args).toBeDefined();
    expect(user?.args).not.toMatch(/^(root|0)(:|$)/);
    const ignore = read(`${DOCKERFILE}.dockerignore`);
    expect(ignore).toMatch(/^\*\*\/node_modules$/m);
    expect(ignore).toMatch(/^deploy\/\.env$/m);
  });
});

// ---------------------------------------------------------------- systemd ---

function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = new Map();
      sections.set(sec[1] ?? "", current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`unparsable unit line: ${rawLine}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function systemdAnalyze(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8", env: { ...process.env, SYSTEMD_COLORS: "0" } });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error(
      "systemd-analyze is not installed, so deploy/systemd/airlock-agent.service cannot be verified. " +
        "Install Debian's systemd package: apt-get update && apt-get install -y systemd",
    );
  }
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("deploy/systemd/airlock-agent.service", () => {
  const text = read(UNIT_FILE);
  const unit = parseUnit(text);
  const service = unit.get("Service") ?? new Map<string, string[]>();
  const one = (k: string): string | undefined => service.get(k)?.at(-1);
  let tmp = "";
  let stub = "";

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "airlock-unit-"));
    // `verify` requires ExecStart's binary to exist: point it at a stub.
    stub = join(tmp, "bin", "airlock");
    mkdirp(dirname(stub));
    writeFileSync(stub, "#!/bin/sh\nexit 0\n");
    chmodSync(stub, 0o755);
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** A copy of the unit under the same name, ExecStart pointing at the stub. */
  function stagedUnit(dirName: string, body: string): string {
    const dir = join(tmp, dirName);
    mkdirp(dir);
    const path = join(dir, "airlock-agent.service");
    writeFileSync(path, body.replace(/^ExecStart=\/usr\/local\/bin\/airlock /m, `ExecStart=${stub} `));
    return path;
  }

  /** Lines of `systemd-analyze verify` output that concern this unit. */
  function verifyFindings(path: string): { status: number | null; findings: string[]; out: string } {
    const { status, out } = systemdAnalyze(["verify", "--man=no", path]);
    const findings = out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .filter((l) => l.includes("airlock-agent") || l.includes(tmp));
    return { status, findings, out };
  }

  it("runs `airlock agent` from /usr/local/bin with its env file", () => {
    expect(one("ExecStart")).toMatch(/^\/usr\/local\/bin\/airlock agent(\s|$)/);
    expect(one("EnvironmentFile")).toBe("/etc/airlock/agent.env");
    expect(one("ExecStart")).toContain("--data-dir ${STATE_DIRECTORY}");
  });

  it("is hardened", () => {
    expect(one("DynamicUser") === "yes" || one("User") === "airlock").toBe(true);
    expect(one("StateDirectory")).toBe("airlock-agent");
    expect(one("CapabilityBoundingSet")).toBe("");
    expect(one("AmbientCapabilities") ?? "").toBe("");
    expect(one("RestrictAddressFamilies")?.split(/\s+/).sort()).toEqual(["AF_INET", "AF_INET6", "AF_UNIX"]);
    const expected: Record<string, string> = {
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      PrivateDevices: "yes",
      ProtectKernelTunables: "yes",
      ProtectKernelModules: "yes",
      ProtectControlGroups: "yes",
      RestrictSUIDSGID: "yes",
      RestrictNamespaces: "yes",
      LockPersonality: "yes",
      SystemCallArchitectures: "native",
      Restart: "always",
    };
    for (const [k, v] of Object.entries(expected)) expect(one(k), k).toBe(v);
    expect(one("RestartSec")).toMatch(/^\d+(ms|s|min)?$/);
    expect(service.get("SystemCallFilter")).toContain("@system-service");
    // V8's JIT needs W+X pages; this must stay off or the agent cannot start.
    expect(one("MemoryDenyWriteExecute")).not.toBe("yes");
    expect(unit.get("Unit")?.get("StartLimitIntervalSec")?.at(-1)).toBe("0");
    expect(unit.get("Install")?.get("WantedBy")).toContain("multi-user.target");
  });

  it("passes `systemd-analyze verify` with no warnings", () => {
    const version = systemdAnalyze(["--version"]).out.split("\n")[0];
    const path = stagedUnit("verify", text);
    const { status, findings, out } = verifyFindings(path);
    expect(findings, `systemd-analyze verify (${version}):\n${out}`).toEqual([]);
    expect(status, out).toBe(0);
  });

  it("the verify check is live: a misspelt directive and a missing binary are reported", () => {
    const typo = verifyFindings(stagedUnit("typo", text.replace(/^ProtectHome=/m, "ProtectHom=")));
    expect(typo.findings.join("\n")).toMatch(/Unknown key 'ProtectHom'/);
    const missing = join(tmp, "missing");
    const path = stagedUnit("missing-binary", text);
    writeFileSync(path, read(path).replace(/^ExecStart=\S+/m, `ExecStart=${missing}/airlock`));
    const r = verifyFindings(path);
    expect(r.findings.join("\n")).toMatch(/not executable|No such file/);
  });

  it("has a low exposure score in `systemd-analyze security --offline`", () => {
    const path = stagedUnit("security", text);
    const { out } = systemdAnalyze(["security", "--offline=true", "--no-pager", path]);
    const m = /Overall exposure level for airlock-agent\.service:\s*([\d.]+)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(2.0);
  });

  it("the example env file sets only agent variables", () => {
    const lines = read(UNIT_ENV_EXAMPLE)
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    const keys = lines.map((l) => l.slice(0, l.indexOf("=")));
    for (const k of keys) expect(AGENT_ENV, `unknown agent env ${k}`).toContain(k);
    expect(keys).toEqual(expect.arrayContaining(["AIRLOCK_GATEWAY", "AIRLOCK_AGENT_TOKEN"]));
    expect(keys.includes("AIRLOCK_CA_PIN") || keys.includes("AIRLOCK_CA_FILE")).toBe(true);
    // The data dir belongs to the unit (StateDirectory=), not to the env file.
    expect(keys).not.toContain("AIRLOCK_AGENT_DATA_DIR");
  });
});

function mkdirp(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
