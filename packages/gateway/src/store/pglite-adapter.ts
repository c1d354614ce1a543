// Prisma driver adapter for PGlite: pglite-prisma-adapter 0.6.1 with the
// fixes it needs to work with Prisma 6.19.
//
// Why a wrapper: 0.6.1 was written against Prisma 6.10's adapter API. Prisma
// 6.19's query compiler hands adapters arguments in a different encoding
// (Bytes as base64 strings, with a per-argument `argTypes` description), which
// 0.6.1 passes through untouched, so PGlite rejects every Bytes write ("Invalid
// input for bytea type"). The newer adapter (0.7) requires Prisma 7, whose CLI
// doesn't work offline here. So we keep 0.6.1 and convert arguments the way
// @prisma/adapter-pg 6.19 does (its `mapArg`). 0.6.1 also reports every
// database error as a raw { kind: "postgres" }, whereas 6.19 turns only
// classified errors into Prisma codes: a unique violation would not surface
// as P2002. We classify them like adapter-pg's `mapDriverError`.
import type { PGlite } from "@electric-sql/pglite";
import {
  DriverAdapterError,
  type ArgType,
  type MappedError,
  type SqlDriverAdapter,
  type SqlDriverAdapterFactory,
  type SqlQuery,
  type SqlQueryable,
  type Transaction,
} from "@prisma/driver-adapter-utils";
import { PrismaPGlite } from "pglite-prisma-adapter";

function mapArg(arg: unknown, type: ArgType | undefined): unknown {
  if (arg === null || arg === undefined || type === undefined) return arg;
  if (Array.isArray(arg) && type.arity === "list") return arg.map((v) => mapArg(v, { ...type, arity: "scalar" }));
  if (type.scalarType === "bytes") {
    if (typeof arg === "string") return Buffer.from(arg, "base64");
    if (Array.isArray(arg)) return Buffer.from(arg as number[]);
  }
  // Dates arrive as ISO strings ending in Z. PGlite sends them as text, and
  // PostgreSQL reads them correctly into timestamp(3) (it drops the zone,
  // which is UTC) and timestamptz, so they need no conversion.
  return arg;
}

function mapQuery(query: SqlQuery): SqlQuery {
  return { ...query, args: query.args.map((arg, i) => mapArg(arg, query.argTypes[i])) };
}

/** What 0.6.1 puts in DriverAdapterError.cause for any database error. */
interface RawPgError {
  kind: "postgres";
  code: string;
  message: string;
  detail?: string;
  column?: string;
}

function keyFields(detail: string | undefined): { fields: string[] } | undefined {
  const fields = detail?.match(/Key \(([^)]+)\)/)?.at(1)?.split(", ");
  return fields === undefined ? undefined : { fields };
}

function classify(e: RawPgError): MappedError | undefined {
  switch (e.code) {
    case "23505":
      return { kind: "UniqueConstraintViolation", constraint: keyFields(e.detail) };
    case "23502":
      return { kind: "NullConstraintViolation", constraint: keyFields(e.detail) };
    case "23503": // 0.6.1 drops the constraint name, so only a column can be named
      return { kind: "ForeignKeyConstraintViolation", constraint: e.column ? { fields: [e.column] } : undefined };
    case "22001":
      return { kind: "LengthMismatch", column: e.column };
    case "22003":
      return { kind: "ValueOutOfRange", cause: e.message };
    case "40001":
      return { kind: "TransactionWriteConflict" };
    default:
      return undefined;
  }
}

function reclassify(err: unknown): never {
  // Matched by name: 0.6.1 throws its own copy of the DriverAdapterError class.
  const cause = err instanceof Error && err.name === "DriverAdapterError" ? (err.cause as RawPgError) : undefined;
  const mapped = cause?.kind === "postgres" ? classify(cause) : undefined;
  if (cause && mapped) {
    throw new DriverAdapterError({ originalCode: cause.code, originalMessage: cause.message, ...mapped });
  }
  throw err;
}

/** Patches queryRaw/executeRaw of an adapter or transaction object in place. */
function fixQueryable<T extends SqlQueryable>(target: T): T {
  const queryRaw = target.queryRaw.bind(target);
  const executeRaw = target.executeRaw.bind(target);
  target.queryRaw = (query) => queryRaw(mapQuery(query)).catch(reclassify);
  target.executeRaw = (query) => executeRaw(mapQuery(query)).catch(reclassify);
  return target;
}

/** A Prisma 6.19 driver adapter factory over one PGlite instance. */
export class PGliteAdapterFactory implements SqlDriverAdapterFactory {
  readonly provider = "postgres";
  readonly adapterName = "pglite-prisma-adapter";
  readonly #inner: PrismaPGlite;

  constructor(db: PGlite) {
    this.#inner = new PrismaPGlite(db);
  }

  async connect(): Promise<SqlDriverAdapter> {
    // 0.6.1's types come from @prisma/driver-adapter-utils 6.10; the objects
    // are what 6.19 expects once arguments are converted.
    const adapter = fixQueryable((await this.#inner.connect()) as unknown as SqlDriverAdapter);
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const tx: Transaction = await startTransaction(isolationLevel);
      return fixQueryable(tx);
    };
    return adapter;
  }
}
