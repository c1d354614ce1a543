// Body decoders for server -> client messages. The reader has already framed the message and
// checked the tag and length word; these check the layout inside.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
import { AuthCode as A, BackendTag as T, MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH } from "./constants.js";
import { Cursor } from "./cursor.js";
import { protocolViolation } from "./errors.js";
import type { AuthenticationMessage, BackendMessage, ErrorFields, FieldDescription } from "./types.js";

/** Tags a server may send; anything else means we lost sync or are not talking to PostgreSQL. */
export function isBackendTag(tag: number): boolean {
  switch (tag) {
    case T.Authentication: case T.BackendKeyData: case T.BindComplete: case T.CloseComplete:
    case T.CommandComplete: case T.CopyData: case T.CopyDone: case T.CopyInResponse: case T.CopyOutResponse:
    case T.CopyBothResponse: case T.DataRow: case T.EmptyQueryResponse: case T.ErrorResponse:
    case T.FunctionCallResponse: case T.NegotiateProtocolVersion: case T.NoData: case T.NoticeResponse:
    case T.NotificationResponse: case T.ParameterDescription: case T.ParameterStatus: case T.ParseComplete:
    case T.PortalSuspended: case T.ReadyForQuery: case T.RowDescription:
      return true;
    default:
      return false;
  }
}

export function decodeBackend(tag: number, body: Buffer): BackendMessage {
  switch (tag) {
    case T.DataRow: {
      const c = new Cursor(body, "DataRow");
      const values = c.nullableBytesArray();
      c.end();
      return { type: "DataRow", values };
    }
    case T.CommandComplete: {
      const c = new Cursor(body, "CommandComplete");
      const tagText = c.cstring();
      c.end();
      return { type: "CommandComplete", tag: tagText };
    }
    case T.ReadyForQuery: {
      const c = new Cursor(body, "ReadyForQuery");
      const s = c.uint8();
      c.end();
      if (s !== 0x49 && s !== 0x54 && s !== 0x45) c.fail(`invalid transaction status ${s}`);
      return { type: "ReadyForQuery", status: s === 0x49 ? "I" : s === 0x54 ? "T" : "E" };
    }
    case T.RowDescription:
      return { type: "RowDescription", fields: rowDescription(new Cursor(body, "RowDescription")) };
    case T.ErrorResponse:
      return { type: "ErrorResponse", fields: errorFields(new Cursor(body, "ErrorResponse")) };
    case T.NoticeResponse:
      return { type: "NoticeResponse", fields: errorFields(new Cursor(body, "NoticeResponse")) };
    case T.Authentication:
      return authentication(new Cursor(body, "Authentication"));
    case T.ParameterStatus: {
      const c = new Cursor(body, "ParameterStatus");
      const name = c.cstring();
      const value = c.cstring();
      c.end();
      return { type: "ParameterStatus", name, value };
    }
    case T.BackendKeyData: {
      const c = new Cursor(body, "BackendKeyData");
      const processId = c.int32();
      if (c.remaining < MIN_CANCEL_KEY_LENGTH || c.remaining > MAX_CANCEL_KEY_LENGTH) {
        c.fail(`cancel key length ${c.remaining}`);
      }
      return { type: "BackendKeyData", processId, secretKey: c.rest() };
    }
    case T.ParameterDescription: {
      const c = new Cursor(body, "ParameterDescription");
      const typeOids = c.oidArray();
      c.end();
      return { type: "ParameterDescription", typeOids };
    }
    case T.CopyInResponse:
    case T.CopyOutResponse:
    case T.CopyBothResponse: {
      const type = tag === T.CopyInResponse ? "CopyInResponse" : tag === T.CopyOutResponse ? "CopyOutResponse" : "CopyBothResponse";
      const c = new Cursor(body, type);
      const format = c.int8();
      const columnFormats = c.int16Array();
      c.end();
      return { type, format, columnFormats };
    }
    case T.NotificationResponse: {
      const c = new Cursor(body, "NotificationResponse");
      const processId = c.int32();
      const channel = c.cstring();
      const payload = c.cstring();
      c.end();
      return { type: "NotificationResponse", processId, channel, payload };
    }
    case T.FunctionCallResponse: {
      const c = new Cursor(body, "FunctionCallResponse");
      const value = c.nullableBytes();
      c.end();
      return { type: "FunctionCallResponse", value };
    }
    case T.NegotiateProtocolVersion: {
      const c = new Cursor(body, "NegotiateProtocolVersion");
      const newestMinorVersion = c.int32();
      const n = c.int32();
      if (n < 0) c.fail(`negative option count ${n}`);
      c.expectAtLeast(n, 1); // each name is at least its terminator
      const unrecognizedOptions: string[] = [];
      for (let i = 0; i < n; i++) unrecognizedOptions.push(c.cstring());
      c.end();
      return { type: "NegotiateProtocolVersion", newestMinorVersion, unrecognizedOptions };
    }
    case T.CopyData:
      return { type: "CopyData", data: body };
    case T.CopyDone:
      return empty(body, { type: "CopyDone" });
    case T.EmptyQueryResponse:
      return empty(body, { type: "EmptyQueryResponse" });
    case T.ParseComplete:
      return empty(body, { type: "ParseComplete" });
    case T.BindComplete:
      return empty(body, { type: "BindComplete" });
    case T.CloseComplete:
      return empty(body, { type: "CloseComplete" });
    case T.NoData:
      return empty(body, { type: "NoData" });
    case T.PortalSuspended:
      return empty(body, { type: "PortalSuspended" });
  }
  throw protocolViolation("UNKNOWN_MESSAGE_TYPE", `invalid backend message type ${tag}`);
}

function rowDescription(c: Cursor): FieldDescription[] {
  const n = c.uint16();
  c.expectAtLeast(n, 19); // empty name (1) + 18 bytes of fixed fields
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: c.cstring(),
      tableOid: c.uint32(),
      columnAttrNumber: c.int16(),
      dataTypeOid: c.uint32(),
      dataTypeSize: c.int16(),
      typeModifier: c.int32(),
      format: c.int16(),
    };
  }
  c.end();
  return fields;
}

/** (Byte1 code, String value)* then a zero byte. Unknown codes are kept; duplicates: last wins. */
function errorFields(c: Cursor): ErrorFields {
  const fields: ErrorFields = {};
  for (;;) {
    const code = c.uint8();
    if (code === 0) break;
    fields[String.fromCharCode(code)] = c.cstring();
  }
  c.end();
  return fields;
}

function authentication(c: Cursor): AuthenticationMessage {
  const code = c.int32();
  let msg: AuthenticationMessage;
  switch (code) {
    case A.Ok: msg = { type: "AuthenticationOk" }; break;
    case A.KerberosV5: msg = { type: "AuthenticationKerberosV5" }; break;
    case A.CleartextPassword: msg = { type: "AuthenticationCleartextPassword" }; break;
    case A.GSS: msg = { type: "AuthenticationGSS" }; break;
    case A.SSPI: msg = { type: "AuthenticationSSPI" }; break;
    case A.MD5Password: msg = { type: "AuthenticationMD5Password", salt: c.bytes(4) }; break;
    case A.GSSContinue: msg = { type: "AuthenticationGSSContinue", data: c.rest() }; break;
    case A.SASLContinue: msg = { type: "AuthenticationSASLContinue", data: c.rest() }; break;
    case A.SASLFinal: msg = { type: "AuthenticationSASLFinal", data: c.rest() }; break;
    case A.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = c.cstring();
        if (m === "") break;
        mechanisms.push(m);
      }
      msg = { type: "AuthenticationSASL", mechanisms };
      break;
    }
    default:
      return c.fail(`unknown authentication request ${code}`);
  }
  c.end();
  return msg;
}

function empty<M extends BackendMessage>(body: Buffer, msg: M): M {
  if (body.length !== 0) new Cursor(body, msg.type).end();
  return msg;
}
