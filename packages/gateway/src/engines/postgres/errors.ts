// How Airlock's errors reach a Postgres client: an ErrorResponse with the
// SQLSTATE the client's driver understands, prefixed "airlock:" so a user sees
// where it came from. Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
import { AirlockError, type ErrorCode } from "@airlock/shared";
import { buildErrorResponse, PgProtocolError, writeBackend } from "./protocol/index.js";

/** A fatal startup-phase error with its SQLSTATE; sent to the client, then the connection closes. */
export class PgFatal extends Error {
  override readonly name = "PgFatal";
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const SQLSTATE: Partial<Record<ErrorCode, string>> = {
  UNAUTHENTICATED: "28000", // invalid_authorization_specification
  TOKEN_INVALID: "28P01", // invalid_password: the password is the token
  TOKEN_EXPIRED: "28P01",
  TOKEN_REVOKED: "28P01",
  PERMISSION_DENIED: "42501", // insufficient_privilege
  STATEMENT_DENIED: "42501",
  STATEMENT_UNPARSABLE: "42601",
  NOT_FOUND: "3D000", // invalid_catalog_name: the "database" names the connection
  INVALID_ARGUMENT: "08004", // sqlserver_rejected_establishment_of_sqlconnection
  AGENT_UNAVAILABLE: "08001", // sqlclient_unable_to_establish_sqlconnection
  STREAM_REFUSED: "08001",
  TARGET_AUTH_FAILED: "08001",
  TARGET_TLS_FAILED: "08001",
  TARGET_PROTOCOL_ERROR: "08P01",
  CLIENT_PROTOCOL_ERROR: "08P01",
  LINK_LOST: "08006", // connection_failure
  LINK_TIMEOUT: "08006",
  STREAM_RESET: "08006",
  STORE_UNAVAILABLE: "58000", // system_error: fail closed when we cannot record
  MASKING_UNSUPPORTED: "0A000",
  CLIENT_STALLED: "08006",
};

export function sqlstateFor(err: AirlockError | PgFatal): string {
  if (err instanceof PgFatal) return err.sqlstate;
  return SQLSTATE[err.code] ?? "XX000";
}

/** The FATAL ErrorResponse bytes for an error that ends the connection. */
export function fatalFrame(err: unknown): Buffer {
  // A client's malformed startup bytes come from the codec with their own SQLSTATE (08P01, 54000, …).
  if (err instanceof PgProtocolError) err = new PgFatal(err.sqlstate, err.message);
  const e = err instanceof PgFatal ? err : AirlockError.from(err);
  const hint = e instanceof PgFatal ? e.hint : undefined;
  const detail = e instanceof AirlockError ? `code ${e.code}` : undefined;
  return writeBackend(buildErrorResponse("FATAL", sqlstateFor(e), `airlock: ${e.message}`, detail, hint));
}
