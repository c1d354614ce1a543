// Column names for masking rules written as "schema.table.column". A
// RowDescription only carries the table's OID and the column number, so before
// a statement is forwarded the tables it reads are looked up once on a side
// connection (same target, user and database, through the same agent) and
// cached; when the rows arrive the names are a synchronous map lookup.
// Only used when the active masking rules contain a dotted column pattern.
import type { Duplex } from "node:stream";
import type { Logger } from "@airlock/shared";
import type { TargetConnection } from "./backend/index.js";
import type { QualifiedName } from "./analysis/types.js";
import { writeFrontend, type BackendMessage, type FieldDescription } from "./protocol/index.js";

interface Table {
  schema: string;
  table: string;
  columns: Map<number, string>;
}

const MAX_TABLES = 5_000;

/** `"schema"."name"`, as a SQL string literal for to_regclass(). */
function regclassLiteral(t: QualifiedName): string {
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const name = t.schema ? `${ident(t.schema)}.${ident(t.name)}` : ident(t.name);
  return `'${name.replace(/'/g, "''")}'`;
}

export class CatalogCache {
  private conn: Promise<TargetConnection> | null = null;
  private readonly byOid = new Map<number, Table>();
  private readonly looked = new Set<string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly open: () => Promise<TargetConnection>,
    private readonly log: Logger,
  ) {}

  /** "schema.table.column" for a field of a known table, else the field's own name. */
  name(f: FieldDescription): string {
    const t = f.tableOid ? this.byOid.get(f.tableOid) : undefined;
    const col = t?.columns.get(f.columnAttrNumber);
    return t && col ? `${t.schema}.${t.table}.${col}` : f.name;
  }

  /** Looks up tables not seen yet. Never throws: on failure, rules fall back to bare column names. */
  prepare(tables: readonly QualifiedName[]): Promise<void> {
    const todo = tables.filter((t) => !this.looked.has(`${t.schema ?? ""}.${t.name}`));
    if (todo.length === 0) return Promise.resolve();
    for (const t of todo) this.looked.add(`${t.schema ?? ""}.${t.name}`);
    const run = this.chain.then(() => this.lookup(todo)).catch((err: Error) => {
      this.log.warn({ err: err.message }, "masking: could not resolve column names; dotted column rules fall back to bare names");
    });
    this.chain = run;
    return run;
  }

  close(): void {
    void this.conn?.then((c) => c.socket.destroy()).catch(() => {});
  }

  private async lookup(tables: QualifiedName[]): Promise<void> {
    if (this.byOid.size > MAX_TABLES) this.byOid.clear();
    this.conn ??= this.open();
    const c = await this.conn;
    const sql =
      "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname FROM pg_catalog.pg_class c " +
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " +
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped " +
      `WHERE c.oid = ANY (ARRAY[${tables.map((t) => `pg_catalog.to_regclass(${regclassLiteral(t)})`).join(", ")}])`;
    const rows = await query(c.socket, c.reader, sql);
    for (const [oid, schema, table, attnum, attname] of rows) {
      const key = Number(oid);
      let t = this.byOid.get(key);
      if (!t) this.byOid.set(key, (t = { schema: schema!, table: table!, columns: new Map() }));
      t.columns.set(Number(attnum), attname!);
    }
  }
}

/** One simple query on an idle connection; text results. */
function query(socket: Duplex, reader: TargetConnection["reader"], sql: string): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const rows: string[][] = [];
    let error: string | null = null;
    const onMessage = (m: BackendMessage) => {
      if (m.type === "DataRow") rows.push(m.values.map((v) => (v ? v.toString("utf8") : "")));
      else if (m.type === "ErrorResponse") error = m.fields.M ?? "error";
      else if (m.type === "ReadyForQuery") {
        done();
        if (error) reject(new Error(error));
        else resolve(rows);
      }
    };
    const onData = (chunk: Buffer) => {
      try {
        reader.feed(chunk, onMessage);
      } catch (err) {
        done();
        reject(err as Error);
      }
    };
    const onClose = () => {
      done();
      reject(new Error("catalog connection closed"));
    };
    const done = () => {
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
    socket.write(writeFrontend({ type: "Query", query: sql }));
  });
}
