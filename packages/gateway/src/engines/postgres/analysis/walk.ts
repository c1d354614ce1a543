/**
 * Walks one statement's raw parse tree (libpg-query JSON) and collects facts.
 *
 * The JSON mixes two node shapes: polymorphic fields/lists hold wrapped nodes
 * ({"RangeVar": {...}}), while typed fields hold bare structs (DeleteStmt.relation
 * is {relname, ...}). We therefore walk generically and recognise bare RangeVars
 * by their `relname` string, so tables in any clause (joins, subqueries, CTEs,
 * USING, FK REFERENCES, view bodies...) are found without listing every field.
 * Write targets are the exception: they are listed per node in WRITE_FIELDS.
 */
import { isConstantTrue } from "./where.js";
import type { QualifiedName, RiskFlag } from "./types.js";

type Json = Record<string, unknown>;

/** Fields whose RangeVar(s) are modified (data or definition), per node type. */
const WRITE_FIELDS: Record<string, readonly string[]> = {
  InsertStmt: ["relation"],
  UpdateStmt: ["relation"],
  DeleteStmt: ["relation"],
  MergeStmt: ["relation"],
  TruncateStmt: ["relations"],
  CreateStmt: ["relation"],
  CreateTableAsStmt: ["into"],
  SelectStmt: ["intoClause"],
  ViewStmt: ["view"],
  IndexStmt: ["relation"],
  AlterTableStmt: ["relation"],
  RenameStmt: ["relation"],
  RefreshMatViewStmt: ["relation"],
  CreateTrigStmt: ["relation"],
  RuleStmt: ["relation"],
  CreatePolicyStmt: ["table"],
  AlterPolicyStmt: ["table"],
  AlterObjectSchemaStmt: ["relation"],
  AlterOwnerStmt: ["relation"],
  GrantStmt: ["objects"],
  CreateSeqStmt: ["sequence"],
  AlterSeqStmt: ["sequence"],
};

/** DROP of these object types names relations; other DROPs (functions, types...) name no table. */
const DROP_RELATION_TYPES = new Set(["OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_INDEX", "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"]);

const FILE_FUNCTIONS = new Set([
  "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
  "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir",
  "pg_ls_replslotdir", "lo_import", "lo_export", "pg_file_write", "pg_file_rename", "pg_file_unlink",
  "pg_file_sync", "pg_logdir_ls",
]);
const ADMIN_FUNCTIONS = new Set([
  "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
  "pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_log_backend_memory_contexts",
]);

export interface Collected {
  reads: QualifiedName[];
  writes: QualifiedName[];
  functions: string[];
  risky: RiskFlag[];
  hasWhere: boolean | undefined;
  parameterCount: number;
  dml: Array<"insert" | "update" | "delete" | "merge">;
}

function str(node: unknown): string | undefined {
  const s = (node as { String?: { sval?: unknown } } | undefined)?.String?.sval;
  return typeof s === "string" ? s : undefined;
}

export function collect(node: string, body: Json): Collected {
  const reads = new Map<string, QualifiedName>();
  const writes = new Map<string, QualifiedName>();
  const functions = new Set<string>();
  const risky = new Set<RiskFlag>();
  let params = 0;
  let mutations = 0; // UPDATE/DELETE statements seen
  const dml = new Set<"insert" | "update" | "delete" | "merge">();
  let unbounded = 0; // ... of which without a real WHERE

  const add = (into: Map<string, QualifiedName>, rv: Json): void => {
    const name = rv.relname as string;
    const schema = typeof rv.schemaname === "string" ? rv.schemaname : undefined;
    const q: QualifiedName = schema === undefined ? { name } : { schema, name };
    into.set(JSON.stringify([schema ?? null, name]), q);
  };

  /** Record RangeVars (bare, wrapped, in lists, or inside an IntoClause) as writes. */
  const addWrites = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(addWrites);
    if (!v || typeof v !== "object") return;
    const o = v as Json;
    if (typeof o.relname === "string") return add(writes, o);
    if (o.RangeVar) return addWrites(o.RangeVar);
    if (o.rel) addWrites(o.rel); // IntoClause
  };

  const visit = (v: unknown, ctes: ReadonlySet<string>): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, ctes);
      return;
    }
    if (!v || typeof v !== "object") return;
    const o = v as Json;
    const keys = Object.keys(o);
    const k = keys[0];
    if (keys.length === 1 && k !== undefined && /^[A-Z]/.test(k) && o[k] && typeof o[k] === "object") {
      visitTyped(k, o[k] as Json, ctes);
    } else {
      visitTyped(undefined, o, ctes);
    }
  };

  const visitTyped = (type: string | undefined, b: Json, outer: ReadonlySet<string>): void => {
    if (type === "RangeVar" || (type === undefined && typeof b.relname === "string")) {
      // An unqualified name matching a visible CTE is the CTE, not a table.
      if (typeof b.schemaname !== "string" && outer.has(b.relname as string)) return;
      return add(reads, b);
    }
    if (type === "ParamRef" && typeof b.number === "number") params = Math.max(params, b.number);
    if (type === "FuncCall") noteFunction(b.funcname);
    if (type === "CallStmt") noteFunction((b.funccall as Json | undefined)?.funcname);
    if (type === "InsertStmt") dml.add("insert");
    if (type === "MergeStmt") dml.add("merge");
    if (type === "UpdateStmt" || type === "DeleteStmt") {
      dml.add(type === "UpdateStmt" ? "update" : "delete");
      mutations++;
      if (b.whereClause === undefined || isConstantTrue(b.whereClause)) unbounded++;
    }
    if (type === "DropStmt" && DROP_RELATION_TYPES.has(String(b.removeType))) {
      for (const obj of (b.objects as unknown[] | undefined) ?? []) {
        const parts = (((obj as Json).List as Json | undefined)?.items as unknown[] | undefined)?.map(str) ?? [];
        const name = parts[parts.length - 1];
        const schema = parts[parts.length - 2];
        if (name) writes.set(JSON.stringify([schema ?? null, name]), schema ? { schema, name } : { name });
      }
    }
    if (type === "CopyStmt") {
      if (b.is_program) risky.add("copy_program");
      else if (typeof b.filename === "string") risky.add("copy_server_file");
      if (b.is_from && b.relation) addWrites(b.relation);
      else visit(b.relation, outer);
      visit(b.query, outer);
      visit(b.whereClause, outer);
      return;
    }
    if (type === "CreateForeignTableStmt") return visitTyped("CreateStmt", (b.base as Json | undefined) ?? {}, outer);
    if (type === "VariableSetStmt" && b.name === "role") risky.add("set_role");
    if (type === "VariableSetStmt" && b.name === "session_authorization") risky.add("set_session_authorization");
    if (type === "AlterSystemStmt") risky.add("alter_system");
    if (type === "DoStmt") risky.add("do_block");
    if (type === "ExecuteStmt") risky.add("execute_prepared");
    if (type === "LoadStmt") risky.add("load_library");

    // WITH: non-recursive CTE i sees CTEs 0..i-1; RECURSIVE sees all; the body sees all.
    let scope = outer;
    const w = b.withClause as Json | undefined;
    if (w && Array.isArray(w.ctes)) {
      const all = new Set(outer);
      const defs = w.ctes.map((c) => ((c as Json).CommonTableExpr ?? {}) as Json);
      for (const d of defs) if (typeof d.ctename === "string") all.add(d.ctename);
      const seen = new Set(outer);
      for (const d of defs) {
        visit(d.ctequery, w.recursive ? all : seen);
        if (typeof d.ctename === "string") seen.add(d.ctename);
      }
      scope = all;
    }
    const writeFields = type ? WRITE_FIELDS[type] : undefined;
    for (const [key, val] of Object.entries(b)) {
      if (key === "withClause") continue;
      if (writeFields?.includes(key)) addWrites(val);
      else visit(val, scope);
    }
  };

  const noteFunction = (funcname: unknown): void => {
    if (!Array.isArray(funcname)) return;
    const parts = funcname.map(str).filter((s): s is string => s !== undefined).map((s) => s.toLowerCase());
    const base = parts[parts.length - 1];
    if (!base) return;
    functions.add(parts.join("."));
    // Match on the bare name whatever the schema: over-flagging a same-named user function is the safe side.
    if (FILE_FUNCTIONS.has(base)) risky.add("server_file_function");
    if (ADMIN_FUNCTIONS.has(base)) risky.add("admin_function");
    if (base.startsWith("dblink")) risky.add("dblink");
    if (base === "set_config") risky.add("set_config");
  };

  visitTyped(node, body, new Set());
  return {
    reads: [...reads.values()],
    writes: [...writes.values()],
    functions: [...functions].sort(),
    risky: [...risky].sort(),
    hasWhere: mutations === 0 ? undefined : unbounded === 0,
    parameterCount: params,
    dml: [...dml].sort(),
  };
}
