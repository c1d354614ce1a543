// PolicyEngine: Cedar policies kept pre-parsed inside the WASM module
// (preparsePolicySet + statefulIsAuthorized) because re-parsing per call
// caps out around 1.6k decisions/s. Cedar only knows permit/forbid, so
// "review" is layered on top via an @effect("review") annotation.
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type { AuthorizationAnswer } from "@cedar-policy/cedar-wasm/nodejs";
import { loadPolicyDir, loadPolicyFiles, type LoadedPolicies } from "./loader.js";
import { toCedarRequest, type CedarRequest } from "./request.js";
import type { DecisionResult, PolicyError, PolicyMeta, PolicyRequest } from "./types.js";

interface ActiveSet {
  /** The directory loaded, or "(memory)" for in-memory files. */
  dir: string;
  meta: Map<string, PolicyMeta>;
  schemaName: string;
  /** Every policy. */
  fullId: string;
  /** Every policy except review-forbids: "would this be allowed otherwise?". */
  baseId: string;
}

export interface ReloadResult { ok: boolean; errors: PolicyError[] }

let engineCounter = 0;
/**
 * Prefixes of disposed engines. Reusing them means a new engine's preparse
 * overwrites (and so frees) the old entries: engines built per validation or
 * per activation would otherwise grow the WASM heap forever.
 */
const freePrefixes: string[] = [];
const DISPOSED: PolicyError = { file: "(engine)", message: "policy engine was disposed" };

export class PolicyEngine {
  // The WASM cache is keyed by id and has no delete, so each engine flips
  // between two slots: memory stays bounded and the active slot is never
  // overwritten while in use (decide() is synchronous, so the swap is atomic).
  private readonly prefix = freePrefixes.pop() ?? `airlock-policy-${++engineCounter}`;
  private slot = 0;
  private active: ActiveSet | undefined;
  private disposed = false;

  /** Loads `dir` into a fresh engine; check `errors` (engine denies everything if non-empty). */
  static async fromDir(dir: string): Promise<{ engine: PolicyEngine; errors: PolicyError[] }> {
    const engine = new PolicyEngine();
    const { errors } = await engine.reload(dir);
    return { engine, errors };
  }

  /** In-memory files (name -> text, see loadPolicyFiles); check `errors` as with fromDir. */
  static fromFiles(files: Record<string, string>): { engine: PolicyEngine; errors: PolicyError[] } {
    const engine = new PolicyEngine();
    const { errors } = engine.reloadFiles(files);
    return { engine, errors };
  }

  get loaded(): { dir: string; policyIds: string[] } | undefined {
    return this.active && { dir: this.active.dir, policyIds: [...this.active.meta.keys()] };
  }

  /** Swap in the policies of `dir`; on any error the previous set stays active. */
  async reload(dir: string): Promise<ReloadResult> {
    if (this.disposed) return { ok: false, errors: [DISPOSED] };
    return this.activate(await loadPolicyDir(dir), dir);
  }

  /** Like reload, from in-memory files; synchronous (Cedar calls are). */
  reloadFiles(files: Record<string, string>): ReloadResult {
    if (this.disposed) return { ok: false, errors: [DISPOSED] };
    return this.activate(loadPolicyFiles(files), "(memory)");
  }

  /**
   * Releases this engine's WASM slots for reuse by a later engine. Afterwards
   * decide() denies everything and reload fails: call it only once no caller
   * can still be holding the engine.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.active = undefined;
    freePrefixes.push(this.prefix);
  }

  private activate(loaded: LoadedPolicies, dir: string): ReloadResult {
    // Disposed while reload(dir) awaited the disk: the slots may belong to another engine now.
    if (this.disposed) return { ok: false, errors: [DISPOSED] };
    if (loaded.errors.length > 0) return { ok: false, errors: loaded.errors };
    const slot = this.slot ^ 1;
    const ids = {
      schemaName: `${this.prefix}-${slot}-schema`,
      fullId: `${this.prefix}-${slot}-full`,
      baseId: `${this.prefix}-${slot}-base`,
    };
    const base: Record<string, string> = {};
    for (const [id, text] of Object.entries(loaded.policies)) {
      const m = loaded.meta.get(id);
      if (!(m?.review && m.effect === "forbid")) base[id] = text;
    }
    const steps = [
      cedar.preparseSchema(ids.schemaName, loaded.schema),
      cedar.preparsePolicySet(ids.fullId, { staticPolicies: loaded.policies }),
      cedar.preparsePolicySet(ids.baseId, { staticPolicies: base }),
    ];
    const failed = steps.flatMap((s) => (s.type === "failure" ? s.errors : []));
    if (failed.length > 0) {
      return { ok: false, errors: failed.map((e) => ({ file: dir, message: e.message })) };
    }
    this.slot = slot;
    this.active = { dir, meta: loaded.meta, ...ids };
    return { ok: true, errors: [] };
  }

  /** Annotations of the active policies with these ids (e.g. a review policy's @reviewers). */
  annotationsOf(ids: readonly string[]): Array<Record<string, string>> {
    const meta = this.active?.meta;
    return meta ? ids.flatMap((id) => (meta.get(id) ? [meta.get(id)!.annotations] : [])) : [];
  }

  decide(req: PolicyRequest): DecisionResult {
    const set = this.active;
    if (!set || set.meta.size === 0) {
      return deny(["no policies loaded (fail closed)"]);
    }
    let creq: CedarRequest;
    try {
      creq = toCedarRequest(req);
    } catch (e) {
      return deny([`invalid request (fail closed)`], [(e as Error).message]);
    }
    const full = this.evaluate(set, set.fullId, creq);
    if ("fail" in full) return full.fail;
    const describe = (ids: string[]) => ids.map((id) => reasonFor(set.meta.get(id), id));

    if (full.decision === "allow") {
      // Allowed only through review-permits -> a human must approve.
      const review = full.ids.every((id) => set.meta.get(id)?.review);
      return { decision: review ? "review" : "allow", reasons: describe(full.ids), policyIds: full.ids, errors: [] };
    }
    if (full.ids.length === 0) {
      return deny(["no permit policy matched (default deny)"]);
    }
    const hard = full.ids.filter((id) => !set.meta.get(id)?.review);
    if (hard.length > 0) return { decision: "deny", reasons: describe(hard), policyIds: hard, errors: [] };

    // Only review-forbids fired: review if the rest of the policies would allow.
    const base = this.evaluate(set, set.baseId, creq);
    if ("fail" in base) return base.fail;
    if (base.decision === "deny") {
      const why = base.ids.length > 0 ? describe(base.ids) : ["no permit policy matched (default deny)"];
      return { decision: "deny", reasons: why, policyIds: base.ids, errors: [] };
    }
    return { decision: "review", reasons: describe(full.ids), policyIds: full.ids, errors: [] };
  }

  private evaluate(set: ActiveSet, psetId: string, r: CedarRequest):
    { decision: "allow" | "deny"; ids: string[] } | { fail: DecisionResult } {
    let ans: AuthorizationAnswer;
    try {
      ans = cedar.statefulIsAuthorized({
        ...r, preparsedPolicySetId: psetId, preparsedSchemaName: set.schemaName, validateRequest: true,
      });
    } catch (e) {
      return { fail: deny(["authorizer threw (fail closed)"], [(e as Error).message]) };
    }
    if (ans.type === "failure") {
      return { fail: deny(["request rejected by authorizer (fail closed)"], ans.errors.map((e) => e.message)) };
    }
    const { decision, diagnostics } = ans.response;
    // Cedar skips policies that error; a skipped forbid would silently allow.
    if (diagnostics.errors.length > 0) {
      return {
        fail: deny(
          ["policy evaluation error (fail closed)"],
          diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
        ),
      };
    }
    return { decision, ids: diagnostics.reason };
  }
}

function reasonFor(m: PolicyMeta | undefined, id: string): string {
  return m?.reason ? `${id}: ${m.reason}` : id;
}

function deny(reasons: string[], errors: string[] = []): DecisionResult {
  return { decision: "deny", reasons, policyIds: [], errors };
}
