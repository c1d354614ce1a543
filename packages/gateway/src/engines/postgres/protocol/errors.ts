// Errors raised by the codec, and the ErrorResponse a gateway sends when it gives up on a client.
// Error fields: https://www.postgresql.org/docs/current/protocol-error-fields.html
// SQLSTATEs:    https://www.postgresql.org/docs/current/errcodes-appendix.html
import { ErrorField } from "./constants.js";
import type { ErrorFields, ErrorResponse, ErrorSeverity, NoticeResponse, NoticeSeverity } from "./types.js";

/**
 * Stable machine-readable reasons. Callers branch on these, never on the message text.
 * - INVALID_MESSAGE_LENGTH: length word below its minimum (4, or 8 for startup packets).
 * - MESSAGE_TOO_LARGE: length word above the reader's limit (checked before buffering the body).
 * - UNKNOWN_MESSAGE_TYPE: tag byte not defined for this direction.
 * - MALFORMED_MESSAGE: body does not match the layout (truncated field, missing terminator, trailing bytes…).
 * - UNSUPPORTED_PROTOCOL_VERSION: startup packet with a major version other than 3 (or unknown 1234.x request).
 * - UNENCRYPTED_DATA_AFTER_NEGOTIATION: bytes already buffered behind an SSL/GSSENC request or its answer;
 *   they arrived before encryption and may have been injected (CVE-2021-23214 / CVE-2021-23222).
 * - UNEXPECTED_MESSAGE: valid message at a point where the protocol forbids it.
 * - DIRECT_TLS_HANDSHAKE: a TLS ClientHello where a startup packet was expected (PG17 sslnegotiation=direct).
 * - INVALID_STRING / VALUE_OUT_OF_RANGE: the writer was asked to encode something the wire cannot carry.
 */
export type PgProtocolErrorCode =
  | "INVALID_MESSAGE_LENGTH"
  | "MESSAGE_TOO_LARGE"
  | "UNKNOWN_MESSAGE_TYPE"
  | "MALFORMED_MESSAGE"
  | "UNSUPPORTED_PROTOCOL_VERSION"
  | "UNENCRYPTED_DATA_AFTER_NEGOTIATION"
  | "UNEXPECTED_MESSAGE"
  | "DIRECT_TLS_HANDSHAKE"
  | "INVALID_STRING"
  | "VALUE_OUT_OF_RANGE";

/** SQLSTATEs the server itself would report for these conditions. */
export const SqlState = {
  ProtocolViolation: "08P01",
  ProgramLimitExceeded: "54000",
  FeatureNotSupported: "0A000",
  CharacterNotInRepertoire: "22021",
  NumericValueOutOfRange: "22003",
} as const;

export class PgProtocolError extends Error {
  override readonly name = "PgProtocolError";

  constructor(
    readonly code: PgProtocolErrorCode,
    readonly sqlstate: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 08P01 protocol_violation, the catch-all a server uses for framing and layout errors. */
export function protocolViolation(code: PgProtocolErrorCode, message: string, cause?: unknown): PgProtocolError {
  return new PgProtocolError(code, SqlState.ProtocolViolation, message, cause === undefined ? undefined : { cause });
}

/** A SQLSTATE is five characters from [0-9A-Z]; the first two are the class. */
const SQLSTATE_RE = /^[0-9A-Z]{5}$/;

/**
 * ErrorResponse for a client, with the fields in the order a server emits them:
 * S (localized severity), V (non-localized, 9.6+), C, M, then optional D and H.
 * NUL characters are stripped because a String field cannot contain them (they would end the
 * field early and desynchronise the client); an invalid SQLSTATE is a programming error.
 * Serialize the result with writeBackend().
 */
export function buildErrorResponse(
  severity: ErrorSeverity,
  sqlstate: string,
  message: string,
  detail?: string,
  hint?: string,
): ErrorResponse {
  return { type: "ErrorResponse", fields: noticeFields(severity, sqlstate, message, detail, hint) };
}

/** NoticeResponse for a client: the same fields and rules as buildErrorResponse, with a notice severity. */
export function buildNoticeResponse(severity: NoticeSeverity, sqlstate: string, message: string, detail?: string, hint?: string): NoticeResponse {
  return { type: "NoticeResponse", fields: noticeFields(severity, sqlstate, message, detail, hint) };
}

function noticeFields(severity: ErrorSeverity | NoticeSeverity, sqlstate: string, message: string, detail?: string, hint?: string): ErrorFields {
  if (!SQLSTATE_RE.test(sqlstate)) throw new RangeError(`invalid SQLSTATE ${JSON.stringify(sqlstate)}`);
  const fields: ErrorFields = {};
  fields[ErrorField.Severity] = severity;
  fields[ErrorField.SeverityNonLocalized] = severity;
  fields[ErrorField.Code] = sqlstate;
  fields[ErrorField.Message] = stripNul(message);
  if (detail !== undefined) fields[ErrorField.Detail] = stripNul(detail);
  if (hint !== undefined) fields[ErrorField.Hint] = stripNul(hint);
  return fields;
}

/** The FATAL ErrorResponse to send before closing a connection whose stream failed to parse. */
export function errorResponseFor(err: PgProtocolError): ErrorResponse {
  return buildErrorResponse("FATAL", err.sqlstate, err.message);
}

function stripNul(s: string): string {
  return s.includes("\0") ? s.replaceAll("\0", "") : s;
}
