// Decoded PostgreSQL protocol v3 messages, one interface per wire message, discriminated by `type`.
// Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
//
// Conventions (why the shapes look like this):
// - Counts declared as Int16 on the wire are read unsigned, like the server's pq_getmsgint(…, 2):
//   a Bind may carry up to 65535 parameters.
// - Object ids (type, table, function) are UInt32: OIDs above 2^31 exist.
// - Binary payloads are Buffers that may alias the chunks fed to the reader (zero-copy); copy them
//   if you keep them while mutating the source.
// - Strings are decoded as UTF-8: the gateway is expected to pin client_encoding to UTF8.
// - Text-keyed maps (startup params, error fields) preserve wire order; startup params have a null
//   prototype because their keys come from the client.

/** Text (0) or binary (1). Kept as a number: validating it is the executor's job, not the codec's. */
export type FormatCode = number;

// ---------------------------------------------------------------- frontend (client -> server)

/** Untagged. Int32 len, Int32 version, (String name, String value)*, Byte1 0. */
export interface StartupMessage {
  type: "StartupMessage";
  protocolVersion: number;
  params: Record<string, string>;
}
/** Untagged. Int32 8, Int32 80877103. Answered by a single byte 'S' or 'N'. */
export interface SSLRequest { type: "SSLRequest" }
/** Untagged. Int32 8, Int32 80877104. Answered by a single byte 'G' or 'N'. */
export interface GSSENCRequest { type: "GSSENCRequest" }
/** Untagged, on a fresh connection. Int32 len (16 in 3.0), Int32 80877102, Int32 pid, Byte[n] key. */
export interface CancelRequest { type: "CancelRequest"; processId: number; secretKey: Buffer }
/** 'Q': String query. */
export interface Query { type: "Query"; query: string }
/** 'P': String name, String query, Int16 n, UInt32[n] parameter type OIDs (0 = unspecified). */
export interface Parse { type: "Parse"; name: string; query: string; paramTypes: number[] }
/**
 * 'B': String portal, String statement, Int16 n, Int16[n] param formats, Int16 m,
 * (Int32 len | -1 for NULL, Byte[len])[m], Int16 k, Int16[k] result formats.
 */
export interface Bind {
  type: "Bind";
  portal: string;
  statement: string;
  paramFormats: FormatCode[];
  params: (Buffer | null)[];
  resultFormats: FormatCode[];
}
/** 'S' = prepared statement, 'P' = portal. */
export type TargetKind = "S" | "P";
/** 'D': Byte1 kind, String name. */
export interface Describe { type: "Describe"; kind: TargetKind; name: string }
/** 'E': String portal, Int32 max rows (0 = no limit). */
export interface Execute { type: "Execute"; portal: string; maxRows: number }
/** 'S' */
export interface Sync { type: "Sync" }
/** 'H' */
export interface Flush { type: "Flush" }
/** 'C': Byte1 kind, String name. */
export interface Close { type: "Close"; kind: TargetKind; name: string }
/** 'd' in both directions: the payload is the whole body. */
export interface CopyData { type: "CopyData"; data: Buffer }
/** 'c' in both directions. */
export interface CopyDone { type: "CopyDone" }
/** 'f': String error message. */
export interface CopyFail { type: "CopyFail"; message: string }
/** 'F': UInt32 oid, Int16 n, Int16[n] arg formats, Int16 m, (Int32 len | -1, Byte[len])[m], Int16 result format. */
export interface FunctionCall {
  type: "FunctionCall";
  functionOid: number;
  argFormats: FormatCode[];
  args: (Buffer | null)[];
  resultFormat: FormatCode;
}
/** 'X' */
export interface Terminate { type: "Terminate" }

// 'p' carries four different messages; only the authentication exchange in progress tells which.
/** 'p' answering AuthenticationCleartextPassword/MD5Password: String password (or "md5…" hash). */
export interface PasswordMessage { type: "PasswordMessage"; password: string }
/** 'p' answering AuthenticationSASL: String mechanism, Int32 len (-1 = none), Byte[len]. */
export interface SASLInitialResponse { type: "SASLInitialResponse"; mechanism: string; data: Buffer | null }
/** 'p' answering AuthenticationSASLContinue: the body is the mechanism's data. */
export interface SASLResponse { type: "SASLResponse"; data: Buffer }
/** 'p' answering AuthenticationGSS/GSSContinue/SSPI: the body is the token. */
export interface GSSResponse { type: "GSSResponse"; data: Buffer }
/** 'p' read without a hint: the raw body, to be decoded by the auth layer (see decodeAuthResponse). */
export interface AuthResponse { type: "AuthResponse"; data: Buffer }
/** Which 'p' message the reader should expect; see FrontendReader.setAuthResponseKind. */
export type AuthResponseKind = "password" | "sasl-initial" | "sasl" | "gss";

export type AuthResponseMessage = PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse | AuthResponse;
/** Messages that may open a connection (no tag byte). */
export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export type FrontendMessage =
  | StartupPhaseMessage
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Sync
  | Flush
  | Close
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | Terminate
  | AuthResponseMessage;

// ---------------------------------------------------------------- backend (server -> client)

// 'R': Int32 code, then a code-specific tail.
export interface AuthenticationOk { type: "AuthenticationOk" } // 0
export interface AuthenticationKerberosV5 { type: "AuthenticationKerberosV5" } // 2
export interface AuthenticationCleartextPassword { type: "AuthenticationCleartextPassword" } // 3
/** 5: Byte4 salt. */
export interface AuthenticationMD5Password { type: "AuthenticationMD5Password"; salt: Buffer }
export interface AuthenticationGSS { type: "AuthenticationGSS" } // 7
/** 8: GSSAPI or SSPI token. */
export interface AuthenticationGSSContinue { type: "AuthenticationGSSContinue"; data: Buffer }
export interface AuthenticationSSPI { type: "AuthenticationSSPI" } // 9
/** 10: (String mechanism)*, terminated by an empty string. */
export interface AuthenticationSASL { type: "AuthenticationSASL"; mechanisms: string[] }
/** 11: SASL challenge (e.g. SCRAM server-first-message). */
export interface AuthenticationSASLContinue { type: "AuthenticationSASLContinue"; data: Buffer }
/** 12: SASL outcome (e.g. SCRAM server-final-message). */
export interface AuthenticationSASLFinal { type: "AuthenticationSASLFinal"; data: Buffer }

export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

/** Untagged single byte answering SSLRequest: 'S' (go ahead with TLS) or 'N'. */
export interface SSLResponse { type: "SSLResponse"; accepted: boolean }
/** Untagged single byte answering GSSENCRequest: 'G' or 'N'. */
export interface GSSENCResponse { type: "GSSENCResponse"; accepted: boolean }
/** 'S': String name, String value. */
export interface ParameterStatus { type: "ParameterStatus"; name: string; value: string }
/** 'K': Int32 pid, Byte[n] secret key (n = 4 in 3.0, 4..256 in 3.2). */
export interface BackendKeyData { type: "BackendKeyData"; processId: number; secretKey: Buffer }
/** Idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = "I" | "T" | "E";
/** 'Z': Byte1 status. */
export interface ReadyForQuery { type: "ReadyForQuery"; status: TransactionStatus }
/** One column of 'T': String name, UInt32 table, Int16 attnum, UInt32 type, Int16 size, Int32 typmod, Int16 format. */
export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttrNumber: number;
  dataTypeOid: number;
  dataTypeSize: number;
  typeModifier: number;
  format: FormatCode;
}
/** 'T': Int16 n, FieldDescription[n]. */
export interface RowDescription { type: "RowDescription"; fields: FieldDescription[] }
/** 'D': Int16 n, (Int32 len | -1 for NULL, Byte[len])[n]. */
export interface DataRow { type: "DataRow"; values: (Buffer | null)[] }
/** 'C': String tag, e.g. "SELECT 1", "INSERT 0 5". */
export interface CommandComplete { type: "CommandComplete"; tag: string }
/** 'I' */
export interface EmptyQueryResponse { type: "EmptyQueryResponse" }
/**
 * Field code letter (see ErrorField) -> value, in wire order (JS would put digit keys first, but
 * servers only use letters).
 */
export type ErrorFields = Record<string, string>;
/** 'E': (Byte1 code, String value)*, Byte1 0. */
export interface ErrorResponse { type: "ErrorResponse"; fields: ErrorFields }
/** 'N': same layout as ErrorResponse. */
export interface NoticeResponse { type: "NoticeResponse"; fields: ErrorFields }
export interface ParseComplete { type: "ParseComplete" } // '1'
export interface BindComplete { type: "BindComplete" } // '2'
export interface CloseComplete { type: "CloseComplete" } // '3'
export interface NoData { type: "NoData" } // 'n'
export interface PortalSuspended { type: "PortalSuspended" } // 's'
/** 't': Int16 n, UInt32[n] type OIDs. */
export interface ParameterDescription { type: "ParameterDescription"; typeOids: number[] }
/** 'G' / 'H' / 'W': Int8 overall format, Int16 n, Int16[n] column formats. */
export interface CopyInResponse { type: "CopyInResponse"; format: FormatCode; columnFormats: FormatCode[] }
export interface CopyOutResponse { type: "CopyOutResponse"; format: FormatCode; columnFormats: FormatCode[] }
export interface CopyBothResponse { type: "CopyBothResponse"; format: FormatCode; columnFormats: FormatCode[] }
/** 'A': Int32 pid, String channel, String payload. */
export interface NotificationResponse { type: "NotificationResponse"; processId: number; channel: string; payload: string }
/** 'V': Int32 len (-1 = NULL), Byte[len]. */
export interface FunctionCallResponse { type: "FunctionCallResponse"; value: Buffer | null }
/**
 * 'v': Int32 newest minor version the server supports, Int32 n, String[n] startup options
 * (those starting with "_pq_.") it did not recognise.
 */
export interface NegotiateProtocolVersion {
  type: "NegotiateProtocolVersion";
  newestMinorVersion: number;
  unrecognizedOptions: string[];
}

export type BackendMessage =
  | AuthenticationMessage
  | SSLResponse
  | GSSENCResponse
  | ParameterStatus
  | BackendKeyData
  | ReadyForQuery
  | RowDescription
  | DataRow
  | CommandComplete
  | EmptyQueryResponse
  | ErrorResponse
  | NoticeResponse
  | ParseComplete
  | BindComplete
  | CloseComplete
  | NoData
  | PortalSuspended
  | ParameterDescription
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | CopyData
  | CopyDone
  | NotificationResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion;

/** Severities a server sends in ErrorResponse (S/V fields). */
export type ErrorSeverity = "ERROR" | "FATAL" | "PANIC";
/** Severities a server sends in NoticeResponse. */
export type NoticeSeverity = "WARNING" | "NOTICE" | "DEBUG" | "INFO" | "LOG";
