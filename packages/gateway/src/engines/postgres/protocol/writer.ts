// Serializers for every protocol v3 message, both directions: the gateway plays server to its
// clients and client to its upstreams. Each call returns one complete frame.
// Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
import { Builder, payloadSize } from "./builder.js";
import {
  AuthCode as A,
  BackendTag as B,
  CANCEL_REQUEST_CODE,
  FrontendTag as F,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  SSL_REQUEST_CODE,
} from "./constants.js";
import { PgProtocolError, SqlState } from "./errors.js";
import type { BackendMessage, ErrorFields, FrontendMessage } from "./types.js";

/** Encodes a client -> server message. */
export function writeFrontend(msg: FrontendMessage): Buffer {
  switch (msg.type) {
    case "StartupMessage": {
      const b = new Builder(null).u32(msg.protocolVersion);
      for (const [name, value] of Object.entries(msg.params)) b.cstr(name, true).cstr(value);
      return b.u8(0).finish();
    }
    case "SSLRequest":
      return new Builder(null).i32(SSL_REQUEST_CODE).finish();
    case "GSSENCRequest":
      return new Builder(null).i32(GSSENC_REQUEST_CODE).finish();
    case "CancelRequest":
      return new Builder(null).i32(CANCEL_REQUEST_CODE).i32(msg.processId).bytes(cancelKey(msg.secretKey)).finish();
    case "Query":
      return new Builder(F.Query, msg.query.length).cstr(msg.query).finish();
    case "Parse": {
      const b = new Builder(F.Parse, msg.query.length).cstr(msg.name).cstr(msg.query).count(msg.paramTypes.length);
      for (const oid of msg.paramTypes) b.u32(oid);
      return b.finish();
    }
    case "Bind": {
      const b = new Builder(F.Bind, payloadSize(msg.params)).cstr(msg.portal).cstr(msg.statement);
      formats(b, msg.paramFormats);
      b.count(msg.params.length);
      for (const p of msg.params) b.nullable(p);
      return formats(b, msg.resultFormats).finish();
    }
    case "Describe":
      return new Builder(F.Describe).u8(targetKind(msg.kind)).cstr(msg.name).finish();
    case "Close":
      return new Builder(F.Close).u8(targetKind(msg.kind)).cstr(msg.name).finish();
    case "Execute":
      return new Builder(F.Execute).cstr(msg.portal).i32(msg.maxRows).finish();
    case "Sync":
      return new Builder(F.Sync).finish();
    case "Flush":
      return new Builder(F.Flush).finish();
    case "Terminate":
      return new Builder(F.Terminate).finish();
    case "CopyData":
      return new Builder(F.CopyData, msg.data.length).bytes(msg.data).finish();
    case "CopyDone":
      return new Builder(F.CopyDone).finish();
    case "CopyFail":
      return new Builder(F.CopyFail).cstr(msg.message).finish();
    case "FunctionCall": {
      const b = new Builder(F.FunctionCall, payloadSize(msg.args)).u32(msg.functionOid);
      formats(b, msg.argFormats);
      b.count(msg.args.length);
      for (const a of msg.args) b.nullable(a);
      return b.i16(msg.resultFormat).finish();
    }
    case "PasswordMessage":
      return new Builder(F.AuthResponse).cstr(msg.password).finish();
    case "SASLInitialResponse":
      return new Builder(F.AuthResponse, msg.data?.length ?? 0).cstr(msg.mechanism, true).nullable(msg.data).finish();
    case "SASLResponse":
    case "GSSResponse":
    case "AuthResponse":
      return new Builder(F.AuthResponse, msg.data.length).bytes(msg.data).finish();
  }
}

/** Encodes a server -> client message. */
export function writeBackend(msg: BackendMessage): Buffer {
  switch (msg.type) {
    case "AuthenticationOk":
      return auth(A.Ok).finish();
    case "AuthenticationKerberosV5":
      return auth(A.KerberosV5).finish();
    case "AuthenticationCleartextPassword":
      return auth(A.CleartextPassword).finish();
    case "AuthenticationMD5Password":
      if (msg.salt.length !== 4) throw outOfRange(`MD5 salt must be 4 bytes, got ${msg.salt.length}`);
      return auth(A.MD5Password).bytes(msg.salt).finish();
    case "AuthenticationGSS":
      return auth(A.GSS).finish();
    case "AuthenticationGSSContinue":
      return auth(A.GSSContinue, msg.data.length).bytes(msg.data).finish();
    case "AuthenticationSSPI":
      return auth(A.SSPI).finish();
    case "AuthenticationSASL": {
      const b = auth(A.SASL);
      for (const m of msg.mechanisms) b.cstr(m, true);
      return b.u8(0).finish();
    }
    case "AuthenticationSASLContinue":
      return auth(A.SASLContinue, msg.data.length).bytes(msg.data).finish();
    case "AuthenticationSASLFinal":
      return auth(A.SASLFinal, msg.data.length).bytes(msg.data).finish();
    case "SSLResponse":
      return Buffer.from([msg.accepted ? 0x53 : 0x4e]); // 'S' / 'N', untagged
    case "GSSENCResponse":
      return Buffer.from([msg.accepted ? 0x47 : 0x4e]); // 'G' / 'N', untagged
    case "ParameterStatus":
      return new Builder(B.ParameterStatus).cstr(msg.name).cstr(msg.value).finish();
    case "BackendKeyData":
      return new Builder(B.BackendKeyData).i32(msg.processId).bytes(cancelKey(msg.secretKey)).finish();
    case "ReadyForQuery": {
      const s = msg.status as string;
      if (s !== "I" && s !== "T" && s !== "E") throw outOfRange(`transaction status ${JSON.stringify(s)}`);
      return new Builder(B.ReadyForQuery).u8(s.charCodeAt(0)).finish();
    }
    case "RowDescription": {
      const b = new Builder(B.RowDescription, msg.fields.length * 32).count(msg.fields.length);
      for (const f of msg.fields) {
        b.cstr(f.name).u32(f.tableOid).i16(f.columnAttrNumber).u32(f.dataTypeOid);
        b.i16(f.dataTypeSize).i32(f.typeModifier).i16(f.format);
      }
      return b.finish();
    }
    case "DataRow": {
      const b = new Builder(B.DataRow, payloadSize(msg.values) + 2).count(msg.values.length);
      for (const v of msg.values) b.nullable(v);
      return b.finish();
    }
    case "CommandComplete":
      return new Builder(B.CommandComplete).cstr(msg.tag).finish();
    case "EmptyQueryResponse":
      return new Builder(B.EmptyQueryResponse).finish();
    case "ErrorResponse":
      return errorFields(B.ErrorResponse, msg.fields);
    case "NoticeResponse":
      return errorFields(B.NoticeResponse, msg.fields);
    case "ParseComplete":
      return new Builder(B.ParseComplete).finish();
    case "BindComplete":
      return new Builder(B.BindComplete).finish();
    case "CloseComplete":
      return new Builder(B.CloseComplete).finish();
    case "NoData":
      return new Builder(B.NoData).finish();
    case "PortalSuspended":
      return new Builder(B.PortalSuspended).finish();
    case "ParameterDescription": {
      const b = new Builder(B.ParameterDescription, msg.typeOids.length * 4).count(msg.typeOids.length);
      for (const oid of msg.typeOids) b.u32(oid);
      return b.finish();
    }
    case "CopyInResponse":
      return formats(new Builder(B.CopyInResponse).i8(msg.format), msg.columnFormats).finish();
    case "CopyOutResponse":
      return formats(new Builder(B.CopyOutResponse).i8(msg.format), msg.columnFormats).finish();
    case "CopyBothResponse":
      return formats(new Builder(B.CopyBothResponse).i8(msg.format), msg.columnFormats).finish();
    case "CopyData":
      return new Builder(B.CopyData, msg.data.length).bytes(msg.data).finish();
    case "CopyDone":
      return new Builder(B.CopyDone).finish();
    case "NotificationResponse":
      return new Builder(B.NotificationResponse).i32(msg.processId).cstr(msg.channel).cstr(msg.payload).finish();
    case "FunctionCallResponse":
      return new Builder(B.FunctionCallResponse, msg.value?.length ?? 0).nullable(msg.value).finish();
    case "NegotiateProtocolVersion": {
      const b = new Builder(B.NegotiateProtocolVersion).i32(msg.newestMinorVersion).i32(msg.unrecognizedOptions.length);
      for (const o of msg.unrecognizedOptions) b.cstr(o);
      return b.finish();
    }
  }
}

function auth(code: number, estimate = 0): Builder {
  return new Builder(B.Authentication, estimate).i32(code);
}

/** Int16 count followed by that many Int16 format codes. */
function formats(b: Builder, codes: readonly number[]): Builder {
  b.count(codes.length);
  for (const c of codes) b.i16(c);
  return b;
}

function targetKind(kind: string): number {
  if (kind !== "S" && kind !== "P") throw outOfRange(`describe/close target ${JSON.stringify(kind)}`);
  return kind.charCodeAt(0);
}

function cancelKey(key: Buffer): Buffer {
  if (key.length < MIN_CANCEL_KEY_LENGTH || key.length > MAX_CANCEL_KEY_LENGTH) throw outOfRange(`cancel key of ${key.length} bytes`);
  return key;
}

/** (Byte1 code, String value)* then a zero byte; codes are single characters U+0001..U+00FF. */
function errorFields(tag: number, fields: ErrorFields): Buffer {
  const b = new Builder(tag);
  for (const [code, value] of Object.entries(fields)) {
    const c = code.charCodeAt(0);
    if (code.length !== 1 || c === 0 || c > 0xff) {
      throw new PgProtocolError("INVALID_STRING", SqlState.CharacterNotInRepertoire, `invalid error field code ${JSON.stringify(code)}`);
    }
    b.u8(c).cstr(value);
  }
  return b.u8(0).finish();
}

function outOfRange(message: string): PgProtocolError {
  return new PgProtocolError("VALUE_OUT_OF_RANGE", SqlState.NumericValueOutOfRange, message);
}
