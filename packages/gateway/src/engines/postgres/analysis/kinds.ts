/**
 * Maps every top-level Postgres parse node (PG 18 raw parse tree) to a
 * StatementKind and a human command label. Kept as a table so a reviewer can
 * see at a glance how each statement is classified; unknown nodes fall back
 * to "utility" with the node name as command, so new PG nodes fail closed
 * into the most generic bucket rather than being misclassified as reads.
 */
import type { StatementKind } from "./types.js";

type Body = Record<string, unknown>;
type Entry = [StatementKind, string | ((b: Body) => string)];

/** "OBJECT_FOREIGN_TABLE" -> "FOREIGN TABLE", with the few irregular names fixed. */
export function objectLabel(objtype: unknown): string {
  const s = typeof objtype === "string" ? objtype.replace(/^OBJECT_/, "") : "OBJECT";
  const irregular: Record<string, string> = {
    MATVIEW: "MATERIALIZED VIEW",
    TSCONFIGURATION: "TEXT SEARCH CONFIGURATION",
    TSDICTIONARY: "TEXT SEARCH DICTIONARY",
    TSPARSER: "TEXT SEARCH PARSER",
    TSTEMPLATE: "TEXT SEARCH TEMPLATE",
    FDW: "FOREIGN DATA WRAPPER",
    FOREIGN_SERVER: "SERVER",
    OPCLASS: "OPERATOR CLASS",
    OPFAMILY: "OPERATOR FAMILY",
    STATISTIC_EXT: "STATISTICS",
    EVENT_TRIGGER: "EVENT TRIGGER",
    ACCESS_METHOD: "ACCESS METHOD",
    DEFACL: "DEFAULT PRIVILEGES",
  };
  return irregular[s] ?? s.replace(/_/g, " ");
}

const TRANS: Record<string, string> = {
  TRANS_STMT_BEGIN: "BEGIN",
  TRANS_STMT_START: "START TRANSACTION",
  TRANS_STMT_COMMIT: "COMMIT",
  TRANS_STMT_ROLLBACK: "ROLLBACK",
  TRANS_STMT_SAVEPOINT: "SAVEPOINT",
  TRANS_STMT_RELEASE: "RELEASE",
  TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
  TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
  TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
  TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
};

const alter = (b: Body) => `ALTER ${objectLabel(b.objtype ?? b.objectType ?? b.renameType)}`;

const TABLE: Record<string, Entry> = {
  // DML
  SelectStmt: ["select", "SELECT"],
  InsertStmt: ["insert", "INSERT"],
  UpdateStmt: ["update", "UPDATE"],
  DeleteStmt: ["delete", "DELETE"],
  MergeStmt: ["merge", "MERGE"],
  TruncateStmt: ["truncate", "TRUNCATE"],
  CopyStmt: ["copy", "COPY"],
  CallStmt: ["call", "CALL"],
  DoStmt: ["do", "DO"],
  ExplainStmt: ["explain", "EXPLAIN"],
  PrepareStmt: ["prepare", "PREPARE"],
  ExecuteStmt: ["execute", "EXECUTE"],
  // TCL
  TransactionStmt: ["tcl", (b) => TRANS[String(b.kind)] ?? "TRANSACTION"],
  // DCL
  GrantStmt: ["dcl", (b) => (b.is_grant ? "GRANT" : "REVOKE")],
  GrantRoleStmt: ["dcl", (b) => (b.is_grant ? "GRANT ROLE" : "REVOKE ROLE")],
  CreateRoleStmt: ["dcl", (b) => (b.stmt_type === "ROLESTMT_USER" ? "CREATE USER" : b.stmt_type === "ROLESTMT_GROUP" ? "CREATE GROUP" : "CREATE ROLE")],
  AlterRoleStmt: ["dcl", "ALTER ROLE"],
  AlterRoleSetStmt: ["dcl", "ALTER ROLE"],
  DropRoleStmt: ["dcl", "DROP ROLE"],
  AlterDefaultPrivilegesStmt: ["dcl", "ALTER DEFAULT PRIVILEGES"],
  ReassignOwnedStmt: ["dcl", "REASSIGN OWNED"],
  DropOwnedStmt: ["dcl", "DROP OWNED"],
  // Config
  VariableSetStmt: ["config", (b) => (String(b.kind).startsWith("VAR_RESET") ? "RESET" : "SET")],
  VariableShowStmt: ["config", "SHOW"],
  AlterSystemStmt: ["config", "ALTER SYSTEM"],
  // DDL
  CreateStmt: ["ddl", "CREATE TABLE"],
  CreateForeignTableStmt: ["ddl", "CREATE FOREIGN TABLE"],
  CreateTableAsStmt: ["ddl", (b) => `CREATE ${objectLabel(b.objtype)} AS`],
  ViewStmt: ["ddl", "CREATE VIEW"],
  IndexStmt: ["ddl", "CREATE INDEX"],
  AlterTableStmt: ["ddl", alter],
  DropStmt: ["ddl", (b) => `DROP ${objectLabel(b.removeType)}`],
  RenameStmt: ["ddl", (b) => `ALTER ${objectLabel(b.renameType)} RENAME`],
  AlterObjectSchemaStmt: ["ddl", (b) => `ALTER ${objectLabel(b.objectType)} SET SCHEMA`],
  AlterOwnerStmt: ["ddl", (b) => `ALTER ${objectLabel(b.objectType)} OWNER`],
  AlterObjectDependsStmt: ["ddl", (b) => `ALTER ${objectLabel(b.objectType)} DEPENDS`],
  CreateSchemaStmt: ["ddl", "CREATE SCHEMA"],
  CreateSeqStmt: ["ddl", "CREATE SEQUENCE"],
  AlterSeqStmt: ["ddl", "ALTER SEQUENCE"],
  CreateFunctionStmt: ["ddl", (b) => (b.is_procedure ? "CREATE PROCEDURE" : "CREATE FUNCTION")],
  AlterFunctionStmt: ["ddl", (b) => `ALTER ${objectLabel(b.objtype)}`],
  CreateTrigStmt: ["ddl", "CREATE TRIGGER"],
  CreateEventTrigStmt: ["ddl", "CREATE EVENT TRIGGER"],
  AlterEventTrigStmt: ["ddl", "ALTER EVENT TRIGGER"],
  CreateExtensionStmt: ["ddl", "CREATE EXTENSION"],
  AlterExtensionStmt: ["ddl", "ALTER EXTENSION"],
  AlterExtensionContentsStmt: ["ddl", "ALTER EXTENSION"],
  CreateDomainStmt: ["ddl", "CREATE DOMAIN"],
  AlterDomainStmt: ["ddl", "ALTER DOMAIN"],
  CompositeTypeStmt: ["ddl", "CREATE TYPE"],
  CreateEnumStmt: ["ddl", "CREATE TYPE"],
  CreateRangeStmt: ["ddl", "CREATE TYPE"],
  AlterEnumStmt: ["ddl", "ALTER TYPE"],
  AlterTypeStmt: ["ddl", "ALTER TYPE"],
  DefineStmt: ["ddl", (b) => `CREATE ${objectLabel(b.kind)}`],
  CommentStmt: ["ddl", "COMMENT"],
  SecLabelStmt: ["ddl", "SECURITY LABEL"],
  RuleStmt: ["ddl", "CREATE RULE"],
  CreatePolicyStmt: ["ddl", "CREATE POLICY"],
  AlterPolicyStmt: ["ddl", "ALTER POLICY"],
  CreatedbStmt: ["ddl", "CREATE DATABASE"],
  AlterDatabaseStmt: ["ddl", "ALTER DATABASE"],
  AlterDatabaseSetStmt: ["ddl", "ALTER DATABASE"],
  AlterDatabaseRefreshCollStmt: ["ddl", "ALTER DATABASE"],
  DropdbStmt: ["ddl", "DROP DATABASE"],
  CreateTableSpaceStmt: ["ddl", "CREATE TABLESPACE"],
  DropTableSpaceStmt: ["ddl", "DROP TABLESPACE"],
  AlterTableSpaceOptionsStmt: ["ddl", "ALTER TABLESPACE"],
  AlterTableMoveAllStmt: ["ddl", "ALTER TABLE"],
  CreateFdwStmt: ["ddl", "CREATE FOREIGN DATA WRAPPER"],
  AlterFdwStmt: ["ddl", "ALTER FOREIGN DATA WRAPPER"],
  CreateForeignServerStmt: ["ddl", "CREATE SERVER"],
  AlterForeignServerStmt: ["ddl", "ALTER SERVER"],
  CreateUserMappingStmt: ["ddl", "CREATE USER MAPPING"],
  AlterUserMappingStmt: ["ddl", "ALTER USER MAPPING"],
  DropUserMappingStmt: ["ddl", "DROP USER MAPPING"],
  ImportForeignSchemaStmt: ["ddl", "IMPORT FOREIGN SCHEMA"],
  CreatePublicationStmt: ["ddl", "CREATE PUBLICATION"],
  AlterPublicationStmt: ["ddl", "ALTER PUBLICATION"],
  CreateSubscriptionStmt: ["ddl", "CREATE SUBSCRIPTION"],
  AlterSubscriptionStmt: ["ddl", "ALTER SUBSCRIPTION"],
  DropSubscriptionStmt: ["ddl", "DROP SUBSCRIPTION"],
  CreateStatsStmt: ["ddl", "CREATE STATISTICS"],
  AlterStatsStmt: ["ddl", "ALTER STATISTICS"],
  CreateCastStmt: ["ddl", "CREATE CAST"],
  CreateConversionStmt: ["ddl", "CREATE CONVERSION"],
  CreateTransformStmt: ["ddl", "CREATE TRANSFORM"],
  CreateOpClassStmt: ["ddl", "CREATE OPERATOR CLASS"],
  CreateOpFamilyStmt: ["ddl", "CREATE OPERATOR FAMILY"],
  AlterOpFamilyStmt: ["ddl", "ALTER OPERATOR FAMILY"],
  AlterOperatorStmt: ["ddl", "ALTER OPERATOR"],
  CreateAmStmt: ["ddl", "CREATE ACCESS METHOD"],
  CreatePLangStmt: ["ddl", "CREATE LANGUAGE"],
  AlterCollationStmt: ["ddl", "ALTER COLLATION"],
  AlterTSDictionaryStmt: ["ddl", "ALTER TEXT SEARCH DICTIONARY"],
  AlterTSConfigurationStmt: ["ddl", "ALTER TEXT SEARCH CONFIGURATION"],
  RefreshMatViewStmt: ["ddl", "REFRESH MATERIALIZED VIEW"],
  // Utility
  VacuumStmt: ["utility", (b) => (b.is_vacuumcmd ? "VACUUM" : "ANALYZE")],
  ClusterStmt: ["utility", "CLUSTER"],
  ReindexStmt: ["utility", "REINDEX"],
  CheckPointStmt: ["utility", "CHECKPOINT"],
  LoadStmt: ["utility", "LOAD"],
  ListenStmt: ["utility", "LISTEN"],
  UnlistenStmt: ["utility", "UNLISTEN"],
  NotifyStmt: ["utility", "NOTIFY"],
  LockStmt: ["utility", "LOCK TABLE"],
  DeclareCursorStmt: ["utility", "DECLARE CURSOR"],
  FetchStmt: ["utility", (b) => (b.ismove ? "MOVE" : "FETCH")],
  ClosePortalStmt: ["utility", "CLOSE"],
  DiscardStmt: ["utility", "DISCARD"],
  DeallocateStmt: ["utility", "DEALLOCATE"],
  ConstraintsSetStmt: ["utility", "SET CONSTRAINTS"],
};

export function classify(node: string, body: Body): { kind: StatementKind; command: string; innerKind?: StatementKind } {
  // PREPARE and EXPLAIN wrap a statement; guardrails act on what the wrapped one does.
  if ((node === "PrepareStmt" || node === "ExplainStmt") && body.query && typeof body.query === "object") {
    const inner = Object.entries(body.query as Body)[0];
    if (inner) {
      const outer = classifyOwn(node, body);
      return { ...outer, innerKind: classify(inner[0], inner[1] as Body).kind };
    }
  }
  return classifyOwn(node, body);
}

function classifyOwn(node: string, body: Body): { kind: StatementKind; command: string } {
  const e = TABLE[node];
  if (!e) return { kind: "utility", command: node };
  const [kind, cmd] = e;
  let command = typeof cmd === "string" ? cmd : cmd(body);
  // SELECT ... INTO creates a table; classify it with CREATE TABLE AS, not as a read.
  if (node === "SelectStmt" && body.intoClause) return { kind: "ddl", command: "SELECT INTO" };
  if (node === "ExplainStmt" && JSON.stringify(body.options ?? []).includes('"analyze"')) command = "EXPLAIN ANALYZE";
  return { kind, command };
}

/** Exposed for tests: every node name we map explicitly. */
export const MAPPED_NODES: readonly string[] = Object.keys(TABLE);
