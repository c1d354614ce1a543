/**
 * Public types for the Postgres SQL analyser.
 *
 * These are "facts" about a statement, not decisions: the guardrail layer
 * decides what to allow. Anything we cannot establish is surfaced as a risk
 * flag or an error so callers can deny by default.
 */

/**
 * Coarse statement class. Every top-level parse node is mapped in kinds.ts;
 * nodes we do not know (e.g. added by a future Postgres) become "utility".
 */
export type StatementKind =
  | "select" // SELECT / VALUES / TABLE (SELECT ... INTO is "ddl": it creates a table)
  | "insert"
  | "update"
  | "delete"
  | "merge"
  | "truncate" // separate from "delete" so guardrails can treat it as an unbounded delete
  | "copy"
  | "call" // CALL procedure
  | "do" // anonymous procedural block: body is opaque text
  | "explain" // EXPLAIN [ANALYZE] — inner statement's tables/functions are included
  | "prepare" // PREPARE name AS <stmt> — inner statement is analysed
  | "execute" // EXECUTE name — opaque without its PREPARE (see risky)
  | "ddl"
  | "dcl" // GRANT/REVOKE, roles, default privileges, ownership reassignment
  | "tcl" // BEGIN/COMMIT/ROLLBACK/SAVEPOINT/...
  | "config" // SET/RESET/SHOW, ALTER SYSTEM
  | "utility"; // everything else (VACUUM, LOCK, LISTEN, cursors, unknown nodes)

export interface QualifiedName {
  /** Present only when written in the SQL; unqualified names resolve via search_path at run time. */
  schema?: string;
  /** As the parser folds it: unquoted identifiers lower-cased, quoted kept verbatim. */
  name: string;
}

export type RiskFlag =
  | "copy_program" // COPY ... FROM/TO PROGRAM: runs a shell command on the DB server
  | "copy_server_file" // COPY ... FROM/TO '<file>': server filesystem access
  | "server_file_function" // pg_read_file, lo_import, pg_ls_dir, ...
  | "admin_function" // pg_terminate_backend, pg_reload_conf, ...
  | "set_config" // set_config(): can change role-related GUCs from inside a SELECT
  | "alter_system" // writes postgresql.auto.conf
  | "set_role"
  | "set_session_authorization"
  | "dblink" // dblink*(): opens connections to other servers
  | "execute_prepared" // EXECUTE: the statement body is not visible here
  | "do_block" // DO: procedural code, not analysable
  | "load_library"; // LOAD: loads a shared library into the backend

export interface StatementFacts {
  kind: StatementKind;
  /** For PREPARE and EXPLAIN: the kind of the statement they wrap. */
  innerKind?: StatementKind;
  /** Upper-case command tag-like label, e.g. "DROP TABLE", "CREATE INDEX", "SELECT". */
  command: string;
  /** Tables/views read (FROM, JOIN, subqueries, CTE bodies, USING, INSERT...SELECT sources). CTE names are excluded. */
  reads: QualifiedName[];
  /** Relations whose data or definition this statement changes (DML targets, DDL/GRANT targets, COPY FROM targets). */
  writes: QualifiedName[];
  /** Called functions, lower-cased, "schema.name" when qualified. */
  functions: string[];
  /**
   * undefined when the statement contains no UPDATE/DELETE (anywhere, incl. CTEs/EXPLAIN/PREPARE).
   * Otherwise true only if EVERY UPDATE/DELETE in it has a WHERE that is not a recognised
   * constant-true expression (see where.ts for the exact list).
   */
  hasWhere: boolean | undefined;
  /** Sorted, de-duplicated. */
  risky: RiskFlag[];
  /** This statement's own SQL, sliced from the input with stmt_location/stmt_len and trimmed. */
  text: string;
  /** Data-modifying statements anywhere in it (CTEs, EXPLAIN ANALYZE, PREPARE bodies included), sorted. */
  dml: Array<"insert" | "update" | "delete" | "merge">;
  /** Highest $n placeholder referenced (0 if none). Gaps count: "$3" alone gives 3. */
  parameterCount: number;
}

/** Thrown for any input the analyser cannot turn into facts. Callers should deny. */
export class SqlAnalysisError extends Error {
  override readonly name = "SqlAnalysisError";
  constructor(
    message: string,
    /** 0-based position reported by the parser, or -1 when not a parser error. */
    readonly cursorPosition: number,
  ) {
    super(message);
  }
}
