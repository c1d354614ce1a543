// Test data only (imported by the *.test.ts files beside it): one hand-assembled frame per message
// type, written from the spec tables rather than produced by writer.ts, so reader and writer are
// both checked against an independent source.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
import type { AuthResponseKind, BackendMessage, FrontendMessage } from "./types.js";

/** Hex with optional whitespace -> bytes. */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ""), "hex");
}

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
const str = (s: string): Buffer => Buffer.from(s, "latin1");

function params(entries: Record<string, string>): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, entries);
}

export interface FrontendFixture {
  name: string;
  bytes: Buffer;
  msg: FrontendMessage;
  /** Hint needed to decode a 'p' message as this type. */
  auth?: AuthResponseKind;
}

export interface BackendFixture {
  name: string;
  bytes: Buffer;
  msg: BackendMessage;
}

/** user=alice database=db, protocol 3.0: length 32. */
export const STARTUP: FrontendFixture = {
  name: "StartupMessage",
  bytes: hex("00000020 00030000 75736572 00 616c696365 00 6461746162617365 00 6462 00 00"),
  msg: { type: "StartupMessage", protocolVersion: 196608, params: params({ user: "alice", database: "db" }) },
};

const SCRAM = "5343 5241 4d2d 5348 412d 3235 36"; // "SCRAM-SHA-256"

/** Untagged startup-phase packets: each must be the first thing on a connection. */
export const FRONTEND_STARTUP_FIXTURES: FrontendFixture[] = [
  STARTUP,
  {
    name: "StartupMessage 3.2, no params",
    bytes: hex("00000009 00030002 00"),
    msg: { type: "StartupMessage", protocolVersion: 196610, params: params({}) },
  },
  { name: "SSLRequest", bytes: hex("00000008 04d2162f"), msg: { type: "SSLRequest" } },
  { name: "GSSENCRequest", bytes: hex("00000008 04d21630"), msg: { type: "GSSENCRequest" } },
  {
    name: "CancelRequest 3.0",
    bytes: hex("00000010 04d2162e 00003039 deadbeef"),
    msg: { type: "CancelRequest", processId: 12345, secretKey: b(0xde, 0xad, 0xbe, 0xef) },
  },
  {
    name: "CancelRequest 3.2 (32-byte key)",
    bytes: hex("0000002c 04d2162e 00000007 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
    msg: { type: "CancelRequest", processId: 7, secretKey: Buffer.from(Array.from({ length: 32 }, (_, i) => i)) },
  },
];

/** Tagged frontend messages (valid after a StartupMessage). */
export const FRONTEND_FIXTURES: FrontendFixture[] = [
  { name: "Query", bytes: hex("51 0000000d 73656c6563742031 00"), msg: { type: "Query", query: "select 1" } },
  {
    name: "Parse",
    bytes: hex("50 00000017 7331 00 73656c65637420 2431 00 0001 00000017"),
    msg: { type: "Parse", name: "s1", query: "select $1", paramTypes: [23] },
  },
  {
    name: "Bind",
    bytes: hex("42 00000020 00 7331 00 0001 0001 0002 00000004 0000002a ffffffff 0002 0000 0001"),
    msg: {
      type: "Bind",
      portal: "",
      statement: "s1",
      paramFormats: [1],
      params: [b(0, 0, 0, 42), null],
      resultFormats: [0, 1],
    },
  },
  { name: "Describe statement", bytes: hex("44 00000008 53 7331 00"), msg: { type: "Describe", kind: "S", name: "s1" } },
  { name: "Describe portal", bytes: hex("44 00000006 50 00"), msg: { type: "Describe", kind: "P", name: "" } },
  { name: "Execute", bytes: hex("45 00000009 00 00000000"), msg: { type: "Execute", portal: "", maxRows: 0 } },
  { name: "Sync", bytes: hex("53 00000004"), msg: { type: "Sync" } },
  { name: "Flush", bytes: hex("48 00000004"), msg: { type: "Flush" } },
  { name: "Close portal", bytes: hex("43 00000008 50 7031 00"), msg: { type: "Close", kind: "P", name: "p1" } },
  { name: "CopyData", bytes: hex("64 00000008 6109620a"), msg: { type: "CopyData", data: str("a\tb\n") } },
  { name: "CopyDone", bytes: hex("63 00000004"), msg: { type: "CopyDone" } },
  { name: "CopyFail", bytes: hex("66 00000009 6f6f7073 00"), msg: { type: "CopyFail", message: "oops" } },
  {
    name: "FunctionCall",
    bytes: hex("46 00000019 0000063e 0001 0000 0002 00000001 78 ffffffff 0001"),
    msg: { type: "FunctionCall", functionOid: 1598, argFormats: [0], args: [str("x"), null], resultFormat: 1 },
  },
  {
    name: "PasswordMessage",
    bytes: hex("70 0000000b 736563726574 00"),
    msg: { type: "PasswordMessage", password: "secret" },
    auth: "password",
  },
  {
    name: "SASLInitialResponse",
    bytes: hex(`70 00000021 ${SCRAM} 00 0000000b 6e2c2c6e3d2c723d616263`),
    msg: { type: "SASLInitialResponse", mechanism: "SCRAM-SHA-256", data: str("n,,n=,r=abc") },
    auth: "sasl-initial",
  },
  {
    name: "SASLInitialResponse without data",
    bytes: hex(`70 00000016 ${SCRAM} 00 ffffffff`),
    msg: { type: "SASLInitialResponse", mechanism: "SCRAM-SHA-256", data: null },
    auth: "sasl-initial",
  },
  {
    name: "SASLResponse",
    bytes: hex("70 0000000a 633d62697773"),
    msg: { type: "SASLResponse", data: str("c=biws") },
    auth: "sasl",
  },
  { name: "GSSResponse", bytes: hex("70 00000007 010203"), msg: { type: "GSSResponse", data: b(1, 2, 3) }, auth: "gss" },
  { name: "AuthResponse (no hint)", bytes: hex("70 00000007 010203"), msg: { type: "AuthResponse", data: b(1, 2, 3) } },
  { name: "Terminate", bytes: hex("58 00000004"), msg: { type: "Terminate" } },
];

/** The Authentication requests that are just the Int32 code. */
const authFixture = (name: string, code: string, msg: BackendMessage): BackendFixture => ({ name, bytes: hex(`52 00000008 ${code}`), msg });

/** Tagged backend messages. */
export const BACKEND_FIXTURES: BackendFixture[] = [
  authFixture("AuthenticationOk", "00000000", { type: "AuthenticationOk" }),
  authFixture("AuthenticationKerberosV5", "00000002", { type: "AuthenticationKerberosV5" }),
  authFixture("AuthenticationCleartextPassword", "00000003", { type: "AuthenticationCleartextPassword" }),
  {
    name: "AuthenticationMD5Password",
    bytes: hex("52 0000000c 00000005 01020304"),
    msg: { type: "AuthenticationMD5Password", salt: b(1, 2, 3, 4) },
  },
  authFixture("AuthenticationGSS", "00000007", { type: "AuthenticationGSS" }),
  {
    name: "AuthenticationGSSContinue",
    bytes: hex("52 0000000b 00000008 aabbcc"),
    msg: { type: "AuthenticationGSSContinue", data: b(0xaa, 0xbb, 0xcc) },
  },
  authFixture("AuthenticationSSPI", "00000009", { type: "AuthenticationSSPI" }),
  {
    name: "AuthenticationSASL",
    bytes: hex(`52 0000002a 0000000a ${SCRAM} 2d504c5553 00 ${SCRAM} 00 00`),
    msg: { type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] },
  },
  {
    name: "AuthenticationSASLContinue",
    bytes: hex("52 0000000d 0000000b 723d616263"),
    msg: { type: "AuthenticationSASLContinue", data: str("r=abc") },
  },
  {
    name: "AuthenticationSASLFinal",
    bytes: hex("52 0000000d 0000000c 763d78797a"),
    msg: { type: "AuthenticationSASLFinal", data: str("v=xyz") },
  },
  {
    name: "ParameterStatus",
    bytes: hex("53 00000019 636c69656e745f656e636f64696e67 00 55544638 00"),
    msg: { type: "ParameterStatus", name: "client_encoding", value: "UTF8" },
  },
  {
    name: "BackendKeyData",
    bytes: hex("4b 0000000c 00003039 deadbeef"),
    msg: { type: "BackendKeyData", processId: 12345, secretKey: b(0xde, 0xad, 0xbe, 0xef) },
  },
  { name: "ReadyForQuery idle", bytes: hex("5a 00000005 49"), msg: { type: "ReadyForQuery", status: "I" } },
  { name: "ReadyForQuery in transaction", bytes: hex("5a 00000005 54"), msg: { type: "ReadyForQuery", status: "T" } },
  { name: "ReadyForQuery failed", bytes: hex("5a 00000005 45"), msg: { type: "ReadyForQuery", status: "E" } },
  {
    name: "RowDescription",
    bytes: hex(`54 00000030 0002
      6e 00 00000000 0000 00000017 0004 ffffffff 0000
      626967 00 80000001 0002 00000019 ffff ffffffff 0001`),
    msg: {
      type: "RowDescription",
      fields: [
        { name: "n", tableOid: 0, columnAttrNumber: 0, dataTypeOid: 23, dataTypeSize: 4, typeModifier: -1, format: 0 },
        { name: "big", tableOid: 0x80000001, columnAttrNumber: 2, dataTypeOid: 25, dataTypeSize: -1, typeModifier: -1, format: 1 },
      ],
    },
  },
  {
    name: "DataRow",
    bytes: hex("44 00000013 0003 00000001 31 ffffffff 00000000"),
    msg: { type: "DataRow", values: [str("1"), null, Buffer.alloc(0)] },
  },
  { name: "CommandComplete", bytes: hex("43 0000000d 53454c4543542031 00"), msg: { type: "CommandComplete", tag: "SELECT 1" } },
  { name: "EmptyQueryResponse", bytes: hex("49 00000004"), msg: { type: "EmptyQueryResponse" } },
  {
    name: "ErrorResponse",
    bytes: hex("45 00000024 53 4552524f52 00 56 4552524f52 00 43 3432503031 00 4d 6e6f2074 00 50 3135 00 00"),
    msg: { type: "ErrorResponse", fields: { S: "ERROR", V: "ERROR", C: "42P01", M: "no t", P: "15" } },
  },
  {
    name: "NoticeResponse",
    bytes: hex("4e 00000018 53 4e4f54494345 00 43 3030303030 00 4d 6869 00 00"),
    msg: { type: "NoticeResponse", fields: { S: "NOTICE", C: "00000", M: "hi" } },
  },
  { name: "ParseComplete", bytes: hex("31 00000004"), msg: { type: "ParseComplete" } },
  { name: "BindComplete", bytes: hex("32 00000004"), msg: { type: "BindComplete" } },
  { name: "CloseComplete", bytes: hex("33 00000004"), msg: { type: "CloseComplete" } },
  { name: "NoData", bytes: hex("6e 00000004"), msg: { type: "NoData" } },
  { name: "PortalSuspended", bytes: hex("73 00000004"), msg: { type: "PortalSuspended" } },
  {
    name: "ParameterDescription",
    bytes: hex("74 0000000e 0002 00000017 ffffffff"),
    msg: { type: "ParameterDescription", typeOids: [23, 0xffffffff] },
  },
  {
    name: "CopyInResponse",
    bytes: hex("47 0000000b 00 0002 0000 0000"),
    msg: { type: "CopyInResponse", format: 0, columnFormats: [0, 0] },
  },
  {
    name: "CopyOutResponse",
    bytes: hex("48 00000009 01 0001 0001"),
    msg: { type: "CopyOutResponse", format: 1, columnFormats: [1] },
  },
  { name: "CopyBothResponse", bytes: hex("57 00000007 00 0000"), msg: { type: "CopyBothResponse", format: 0, columnFormats: [] } },
  { name: "CopyData", bytes: hex("64 00000006 780a"), msg: { type: "CopyData", data: str("x\n") } },
  { name: "CopyDone", bytes: hex("63 00000004"), msg: { type: "CopyDone" } },
  {
    name: "NotificationResponse",
    bytes: hex("41 00000011 0000002a 6368 00 68656c6c6f 00"),
    msg: { type: "NotificationResponse", processId: 42, channel: "ch", payload: "hello" },
  },
  { name: "FunctionCallResponse", bytes: hex("56 0000000a 00000002 6f6b"), msg: { type: "FunctionCallResponse", value: str("ok") } },
  { name: "FunctionCallResponse NULL", bytes: hex("56 00000008 ffffffff"), msg: { type: "FunctionCallResponse", value: null } },
  {
    name: "NegotiateProtocolVersion",
    bytes: hex("76 00000015 00000000 00000001 5f70715f2e666f6f 00"),
    msg: { type: "NegotiateProtocolVersion", newestMinorVersion: 0, unrecognizedOptions: ["_pq_.foo"] },
  },
];

/** Client side of a simple-protocol session with SCRAM: 'p' messages are left raw (no hint). */
export const FRONTEND_SESSION: Buffer = Buffer.concat([
  STARTUP.bytes,
  hex(`70 00000021 ${SCRAM} 00 0000000b 6e2c2c6e3d2c723d616263`),
  hex("70 0000000a 633d62697773"),
  hex("51 0000000d 73656c6563742031 00"),
  hex("58 00000004"),
]);

/** Server side of the same session: auth, parameters, key, one query returning three rows. */
export const BACKEND_SESSION: Buffer = Buffer.concat([
  hex(`52 0000002a 0000000a ${SCRAM} 2d504c5553 00 ${SCRAM} 00 00`),
  hex("52 0000000d 0000000b 723d616263"),
  hex("52 0000000d 0000000c 763d78797a"),
  hex("52 00000008 00000000"),
  hex("53 00000019 636c69656e745f656e636f64696e67 00 55544638 00"),
  hex("53 00000016 7365727665725f76657273696f6e 00 3137 00"), // server_version=17
  hex("4b 0000000c 00003039 deadbeef"),
  hex("5a 00000005 49"),
  hex("54 0000001a 0001 6e 00 00000000 0000 00000017 0004 ffffffff 0000"),
  hex("44 0000000b 0001 00000001 31"),
  hex("44 0000000b 0001 00000001 32"),
  hex("44 0000000a 0001 ffffffff"),
  hex("43 0000000d 53454c4543542033 00"), // SELECT 3
  hex("5a 00000005 49"),
]);

/** Extended-protocol pipeline: Parse/Bind/Describe/Execute/Sync twice, then Terminate (after startup). */
export const FRONTEND_PIPELINE: Buffer = Buffer.concat([
  hex("50 00000017 7331 00 73656c65637420 2431 00 0001 00000017"),
  hex("42 00000014 00 7331 00 0000 0001 00000002 3432 0000"), // Bind s1 ('42'), text
  hex("44 00000006 50 00"),
  hex("45 00000009 00 00000000"),
  hex("53 00000004"),
  hex("42 00000012 00 7331 00 0000 0001 ffffffff 0000"), // Bind s1 (NULL)
  hex("45 00000009 00 00000001"), // Execute, max 1 row
  hex("53 00000004"),
  hex("58 00000004"),
]);

/** Server answers to FRONTEND_PIPELINE. */
export const BACKEND_PIPELINE: Buffer = Buffer.concat([
  hex("31 00000004"),
  hex("32 00000004"),
  hex("54 0000001a 0001 6e 00 00000000 0000 00000017 0004 ffffffff 0000"),
  hex("44 0000000c 0001 00000002 3432"),
  hex("43 0000000d 53454c4543542031 00"),
  hex("5a 00000005 49"),
  hex("32 00000004"),
  hex("44 0000000a 0001 ffffffff"),
  hex("73 00000004"),
  hex("5a 00000005 49"),
]);
