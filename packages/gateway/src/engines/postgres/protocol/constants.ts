// Wire constants of the PostgreSQL frontend/backend protocol v3.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
//       https://www.postgresql.org/docs/current/protocol-flow.html

/** Protocol version words sent in StartupMessage: major in the high 16 bits, minor in the low 16. */
export const PROTOCOL_3_0 = (3 << 16) | 0; // 196608
/** 3.2 (PostgreSQL 18) changed only the cancel key: variable length, 4..256 bytes. 3.1 was never used. */
export const PROTOCOL_3_2 = (3 << 16) | 2;

/**
 * The untagged pre-startup requests reuse the version word with the reserved major 1234,
 * so that old servers reject them as "unsupported protocol" instead of misparsing them.
 */
export const CANCEL_REQUEST_CODE = (1234 << 16) | 5678; // 80877102
export const SSL_REQUEST_CODE = (1234 << 16) | 5679; // 80877103
export const GSSENC_REQUEST_CODE = (1234 << 16) | 5680; // 80877104

/** PostgreSQL refuses startup packets larger than this (MAX_STARTUP_PACKET_LENGTH in pqcomm.h). */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/**
 * The server caps fixed-shape frontend messages (Sync, Flush, Terminate, Describe, Close, Execute,
 * CopyDone) at PQ_SMALL_MESSAGE_LIMIT, so a desynchronised stream fails fast instead of making us
 * buffer a "length" that is really garbage.
 */
export const SMALL_MESSAGE_LIMIT = 10_000;
/** Authentication responses ('p') are capped at PG_MAX_AUTH_TOKEN_LENGTH by the server. */
export const AUTH_MESSAGE_LIMIT = 65_535;
/**
 * Default cap on the length word (which counts itself but not the tag byte). PostgreSQL allows
 * up to 1 GiB - 1 (PQ_LARGE_MESSAGE_LIMIT); a gateway holding many sessions should not buffer
 * that much per connection by default, so 64 MiB is ours. Raise it per reader if needed.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/** The largest value a length word can carry (signed Int32). */
export const MAX_LENGTH_WORD = 0x7fff_ffff;

/** Cancel keys: exactly 4 bytes in protocol 3.0, 4..256 bytes in 3.2. */
export const MIN_CANCEL_KEY_LENGTH = 4;
export const MAX_CANCEL_KEY_LENGTH = 256;

/** Int32 code at the start of every 'R' (Authentication*) message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Tag bytes of messages sent by the client after startup. */
export const FrontendTag = {
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  AuthResponse: 0x70, // p: PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse
  Parse: 0x50, // P
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;

/** Tag bytes of messages sent by the server. Several letters collide with frontend tags on purpose. */
export const BackendTag = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/**
 * Field type codes inside ErrorResponse/NoticeResponse
 * (https://www.postgresql.org/docs/current/protocol-error-fields.html).
 * Clients must ignore codes they do not know; we keep them so a relay loses nothing.
 */
export const ErrorField = {
  Severity: "S", // localized
  SeverityNonLocalized: "V", // 9.6+, never translated
  Code: "C", // SQLSTATE
  Message: "M",
  Detail: "D",
  Hint: "H",
  Position: "P",
  InternalPosition: "p",
  InternalQuery: "q",
  Where: "W",
  Schema: "s",
  Table: "t",
  Column: "c",
  DataType: "d",
  Constraint: "n",
  File: "F",
  Line: "L",
  Routine: "R",
} as const;
