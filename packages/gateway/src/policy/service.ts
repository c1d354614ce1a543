// The gateway's active policy bundle and where it comes from:
// - a directory (AIRLOCK policy dir, e.g. a git checkout): loaded at start,
//   watched and hot-reloaded; the directory is the source of truth.
// - else the store: versions pushed with `airlock policy apply`; every gateway
//   process polls for a newer version, so an apply on one reaches all of them.
// With nothing loaded every decision is deny (fail closed).
import { watch, type FSWatcher } from "node:fs";
import { AirlockError, type Logger } from "@airlock/shared";
import { createMasker, type Masker, type MaskingRules } from "../masking/masker.js";
import type { Store } from "../store/index.js";
import { bundleDigest, compileBundle, readBundleDir, type BundleFiles } from "./bundle.js";
import { PolicyEngine } from "./engine.js";
import { formatPolicyError, type PolicyError } from "./types.js";

/**
 * One activated bundle. Read `current()` per decision rather than keeping
 * this: an engine is disposed two activations after it was replaced, and a
 * disposed engine denies everything.
 */
export interface ActivePolicy {
  engine: PolicyEngine;
  masker: Masker;
  masking: MaskingRules;
  /** Store version; null for a directory or nothing. */
  version: number | null;
  /** bundleDigest of the files; "" when nothing is loaded. */
  digest: string;
  source: "dir" | "store" | "none";
  loadedAt: Date;
  policyIds: string[];
}

export interface PolicyVersionInfo {
  version: number;
  digest: string;
  createdBy: string | null;
  createdAt: Date;
  files: string[];
}

export interface PolicyServiceOptions {
  store: Store;
  /** When set, the bundle directory is the only source (apply is refused). */
  dir?: string;
  /** Store mode: how often to look for a version applied by another process. */
  pollMs: number;
  /** Used as given: pass a child logger ({ component: "policy" }). */
  log: Logger;
}

/** Editors save in several steps (truncate, write, rename): reload once they are done. */
const DEBOUNCE_MS = 200;
/** Transaction-scoped advisory lock serializing version numbers ("airlockp" in ASCII). */
const APPLY_LOCK = 0x6169726c6f636b70n;

type Compiled = { engine: PolicyEngine; masker: Masker; masking: MaskingRules; policyIds: string[] };

export class PolicyService {
  private active: ActivePolicy;
  /** The engine replaced last: still usable by a caller that read current() just before. */
  private previous: PolicyEngine | undefined;
  private readonly listeners = new Set<(p: ActivePolicy) => void>();
  /** Loads and activations run one at a time, in order. */
  private queue: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private pollFailing = false;
  /** A bundle that failed to compile: reported once, not on every event or poll. */
  private rejected: string | number | undefined;
  private closed = false;

  private constructor(
    private readonly store: Store,
    private readonly dir: string | undefined,
    private readonly log: Logger,
  ) {
    this.active = {
      engine: new PolicyEngine(), // nothing loaded: decide() denies
      masker: createMasker({}), // every detector on
      masking: {},
      version: null,
      digest: "",
      source: "none",
      loadedAt: new Date(),
      policyIds: [],
    };
  }

  /** Throws AirlockError CONFIG_INVALID when the directory's bundle is invalid. */
  static async start(opts: PolicyServiceOptions): Promise<PolicyService> {
    const s = new PolicyService(opts.store, opts.dir, opts.log);
    if (opts.dir !== undefined) await s.startDir(opts.dir);
    else await s.startStore(opts.pollMs);
    return s;
  }

  /** Synchronous, never throws; with nothing loaded the engine denies everything (fail closed). */
  current(): ActivePolicy {
    return this.active;
  }

  /**
   * Validates, stores as version N+1 (no-op when the digest equals the latest
   * version's) and activates here at once. Throws POLICY_INVALID (errors in
   * details.errors), INVALID_ARGUMENT in directory mode, STORE_UNAVAILABLE.
   */
  async apply(files: BundleFiles, createdBy: string): Promise<{ version: number; digest: string; changed: boolean }> {
    if (this.dir !== undefined) {
      throw new AirlockError("INVALID_ARGUMENT", `this gateway loads its policies from the directory ${this.dir}; change the files there`);
    }
    const c = await compileBundle(files);
    if (!c.ok) throw invalid(c.errors);
    const digest = bundleDigest(files);
    let saved: { version: number; changed: boolean };
    try {
      saved = await this.store.prisma.$transaction(async (tx) => {
        // Two gateways applying at once take turns, so versions stay gapless and unique.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${APPLY_LOCK})`;
        const latest = await tx.policyVersion.findFirst({ orderBy: { version: "desc" }, select: { version: true, digest: true } });
        if (latest?.digest === digest) return { version: latest.version, changed: false };
        const row = await tx.policyVersion.create({ data: { version: (latest?.version ?? 0) + 1, files, digest, createdBy } });
        return { version: row.version, changed: true };
      });
    } catch (err) {
      c.engine.dispose();
      throw AirlockError.from(err, "STORE_UNAVAILABLE");
    }
    await this.serially(async () => this.activateVersion(c, saved.version, digest));
    if (saved.changed) this.log.info({ version: saved.version, by: createdBy }, "policy bundle applied");
    return { ...saved, digest };
  }

  /** Stored versions, newest first, with file names (not contents). */
  async list(limit = 100): Promise<PolicyVersionInfo[]> {
    const rows = await this.store.prisma.$queryRaw<Array<{ version: number; digest: string; created_by: string | null; created_at: Date; files: string[] }>>`
      SELECT version, digest, created_by, created_at, ARRAY(SELECT jsonb_object_keys(files) ORDER BY 1) AS files
        FROM policy_versions ORDER BY version DESC LIMIT ${limit}`;
    return rows.map((r) => ({ version: Number(r.version), digest: r.digest, createdBy: r.created_by, createdAt: new Date(r.created_at), files: r.files }));
  }

  async get(version: number): Promise<Omit<PolicyVersionInfo, "files"> & { files: BundleFiles }> {
    const row = await this.store.prisma.policyVersion.findUnique({ where: { version } });
    if (!row) throw new AirlockError("NOT_FOUND", `no policy version ${version}`);
    const files = row.files;
    // Written only by apply(), but it is a JSON column: check before trusting its shape.
    if (typeof files !== "object" || files === null || Array.isArray(files) || Object.values(files).some((t) => typeof t !== "string")) {
      throw new AirlockError("INTERNAL", `stored policy version ${version} is malformed`);
    }
    return { version: row.version, digest: row.digest, createdBy: row.createdBy, createdAt: row.createdAt, files: files as BundleFiles };
  }

  /** Called after every activation; returns the unsubscribe function. */
  onChange(fn: (p: ActivePolicy) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Stops watching and polling; current() keeps answering with the last policy. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.debounce);
    clearInterval(this.pollTimer);
    this.watcher?.close();
    await this.queue;
  }

  private async startDir(dir: string): Promise<void> {
    let files: BundleFiles;
    try {
      files = await readBundleDir(dir);
    } catch (err) {
      throw new AirlockError("CONFIG_INVALID", `policy directory: ${(err as Error).message}`, { cause: err });
    }
    const c = await compileBundle(files);
    if (!c.ok) {
      const list = c.errors.map(formatPolicyError).join("\n  ");
      throw new AirlockError("CONFIG_INVALID", `policy bundle ${dir} is invalid:\n  ${list}`, { details: { errors: c.errors } });
    }
    this.activate(c, { version: null, digest: bundleDigest(files), source: "dir" });
    // persistent: false, so a forgotten close() never keeps a process alive.
    this.watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.serially(() => this.reloadDir(dir)), DEBOUNCE_MS);
    });
    this.watcher.on("error", (err) => this.log.warn({ dir, err: err.message }, "stopped watching the policy directory; restart the gateway to reload"));
  }

  private async reloadDir(dir: string): Promise<void> {
    let files: BundleFiles;
    try {
      files = await readBundleDir(dir);
    } catch (err) {
      this.log.warn({ dir, err: (err as Error).message }, "cannot read the policy directory; keeping the previous policies");
      return;
    }
    const digest = bundleDigest(files);
    // Touched files, README edits, or a broken edit saved twice: nothing new.
    if (digest === this.active.digest || digest === this.rejected) return;
    const c = await compileBundle(files);
    if (!c.ok) {
      this.rejected = digest;
      this.log.warn({ dir, errors: c.errors.map(formatPolicyError) }, "policy bundle has errors; keeping the previous policies");
      return;
    }
    if (this.closed) return c.engine.dispose();
    this.activate(c, { version: null, digest, source: "dir" });
  }

  private async startStore(pollMs: number): Promise<void> {
    const latest = await this.latestVersion();
    if (latest !== null) await this.serially(() => this.loadVersion(latest));
    if (this.active.source === "none") this.log.warn("no policies applied: every statement is denied until `airlock policy apply`");
    this.pollTimer = setInterval(() => void this.poll(), pollMs);
    this.pollTimer.unref();
  }

  private async latestVersion(): Promise<number | null> {
    const rows = await this.store.prisma.$queryRaw<Array<{ v: number | null }>>`SELECT max(version) AS v FROM policy_versions`;
    const v = rows[0]?.v;
    return v === null || v === undefined ? null : Number(v);
  }

  /** One cheap query per tick; a newer version (applied by another process) is loaded. */
  private async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const v = await this.latestVersion();
      if (this.pollFailing) this.log.info("policy store reachable again");
      this.pollFailing = false;
      if (v !== null && v > (this.active.version ?? 0) && v !== this.rejected) await this.serially(() => this.loadVersion(v));
    } catch (err) {
      // The active policy stays; say so once, not on every tick.
      if (!this.pollFailing) this.log.warn({ err: (err as Error).message }, "cannot poll the store for policy versions");
      this.pollFailing = true;
    } finally {
      this.polling = false;
    }
  }

  /** Store errors propagate (start fails, poll warns); a bad stored bundle is logged once and skipped. */
  private async loadVersion(version: number): Promise<void> {
    if (this.closed || version <= (this.active.version ?? 0)) return;
    let row: Awaited<ReturnType<PolicyService["get"]>>;
    try {
      row = await this.get(version);
    } catch (err) {
      if (!AirlockError.is(err, "INTERNAL")) throw err;
      return this.reject(version, [err.message]);
    }
    const c = await compileBundle(row.files);
    // Stored bundles were valid when applied; this one may predate a schema change.
    if (!c.ok) return this.reject(version, c.errors.map(formatPolicyError));
    this.activateVersion(c, version, row.digest);
  }

  private reject(version: number, errors: string[]): void {
    this.rejected = version;
    this.log.error({ version, errors }, "stored policy version cannot be loaded; keeping the previous policies");
  }

  /** Activates a store version unless an equal or newer one already is. */
  private activateVersion(c: Compiled, version: number, digest: string): void {
    if (this.closed || version <= (this.active.version ?? 0)) return c.engine.dispose();
    this.activate(c, { version, digest, source: "store" });
  }

  private activate(c: Compiled, m: Pick<ActivePolicy, "version" | "digest" | "source">): void {
    this.previous?.dispose();
    this.previous = this.active.engine;
    this.active = { engine: c.engine, masker: c.masker, masking: c.masking, policyIds: c.policyIds, ...m, loadedAt: new Date() };
    this.rejected = undefined;
    this.log.info({ version: m.version, digest: m.digest.slice(0, 12), policies: c.policyIds.length, source: m.source }, "policies activated");
    for (const fn of this.listeners) {
      try {
        fn(this.active);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "policy change listener failed");
      }
    }
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    // The queue itself never rejects, or one failure would stop every later load.
    this.queue = run.catch((err: unknown) => this.log.error({ err: (err as Error).message }, "policy load failed"));
    return run;
  }
}

function invalid(errors: PolicyError[]): AirlockError {
  const first = errors[0] ? `: ${formatPolicyError(errors[0])}` : "";
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
  return new AirlockError("POLICY_INVALID", `policy bundle is invalid${first}${more}`, { details: { errors } });
}
