// Body decoders for client -> server messages. The reader has already framed the message and
// checked the tag and length word; these check the layout inside.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
import {
  CANCEL_REQUEST_CODE,
  FrontendTag as T,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  SSL_REQUEST_CODE,
} from "./constants.js";
import { Cursor } from "./cursor.js";
import { PgProtocolError, SqlState, protocolViolation } from "./errors.js";
import type { AuthResponseKind, AuthResponseMessage, FrontendMessage, StartupPhaseMessage, TargetKind } from "./types.js";

/**
 * An untagged first packet, `frame` including its Int32 length (>= 8, checked by the reader).
 * The version word tells the four kinds apart.
 */
export function decodeStartupPacket(frame: Buffer): StartupPhaseMessage {
  const code = frame.readInt32BE(4);
  const c = new Cursor(frame.subarray(8), "startup packet");
  switch (code) {
    case SSL_REQUEST_CODE:
      c.end();
      return { type: "SSLRequest" };
    case GSSENC_REQUEST_CODE:
      c.end();
      return { type: "GSSENCRequest" };
    case CANCEL_REQUEST_CODE: {
      const processId = c.int32();
      // 3.0 keys are 4 bytes (length 16); 3.2 keys are up to 256 and the length word says how many.
      const keyLen = c.remaining;
      if (keyLen < MIN_CANCEL_KEY_LENGTH || keyLen > MAX_CANCEL_KEY_LENGTH) c.fail(`cancel key length ${keyLen}`);
      return { type: "CancelRequest", processId, secretKey: c.rest() };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  // Any 3.x is framed the same way; the server answers a newer minor with NegotiateProtocolVersion.
  if (major !== 3) {
    throw new PgProtocolError(
      "UNSUPPORTED_PROTOCOL_VERSION",
      SqlState.FeatureNotSupported,
      `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.2`,
    );
  }
  // Keys come from the client: a null prototype makes "__proto__" an ordinary key.
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    if (c.remaining === 0) c.fail("expected terminator as last byte");
    const name = c.cstring();
    if (name === "") break;
    params[name] = c.cstring(); // a repeated name overrides, as in the server
  }
  c.end();
  return { type: "StartupMessage", protocolVersion: code, params };
}

/** Tags valid after startup; anything else is "invalid frontend message type" (08P01). */
export function isFrontendTag(tag: number): boolean {
  switch (tag) {
    case T.Bind: case T.Close: case T.CopyData: case T.CopyDone: case T.CopyFail: case T.Describe:
    case T.Execute: case T.Flush: case T.FunctionCall: case T.AuthResponse: case T.Parse: case T.Query:
    case T.Sync: case T.Terminate:
      return true;
    default:
      return false;
  }
}

/** Decodes a tagged frontend body. `auth` disambiguates 'p' (see decodeAuthResponse). */
export function decodeFrontend(tag: number, body: Buffer, auth: AuthResponseKind | undefined): FrontendMessage {
  switch (tag) {
    case T.Query: {
      const c = new Cursor(body, "Query");
      const query = c.cstring();
      c.end();
      return { type: "Query", query };
    }
    case T.Parse: {
      const c = new Cursor(body, "Parse");
      const name = c.cstring();
      const query = c.cstring();
      const paramTypes = c.oidArray();
      c.end();
      return { type: "Parse", name, query, paramTypes };
    }
    case T.Bind: {
      const c = new Cursor(body, "Bind");
      const portal = c.cstring();
      const statement = c.cstring();
      const paramFormats = c.int16Array();
      const params = c.nullableBytesArray();
      const resultFormats = c.int16Array();
      c.end();
      return { type: "Bind", portal, statement, paramFormats, params, resultFormats };
    }
    case T.Describe:
    case T.Close: {
      const what = tag === T.Describe ? "Describe" : "Close";
      const c = new Cursor(body, what);
      const kind = targetKind(c);
      const name = c.cstring();
      c.end();
      return { type: what, kind, name };
    }
    case T.Execute: {
      const c = new Cursor(body, "Execute");
      const portal = c.cstring();
      const maxRows = c.int32();
      c.end();
      return { type: "Execute", portal, maxRows };
    }
    case T.Sync:
      return empty(body, { type: "Sync" });
    case T.Flush:
      return empty(body, { type: "Flush" });
    case T.Terminate:
      return empty(body, { type: "Terminate" });
    case T.CopyDone:
      return empty(body, { type: "CopyDone" });
    case T.CopyData:
      return { type: "CopyData", data: body };
    case T.CopyFail: {
      const c = new Cursor(body, "CopyFail");
      const message = c.cstring();
      c.end();
      return { type: "CopyFail", message };
    }
    case T.FunctionCall: {
      const c = new Cursor(body, "FunctionCall");
      const functionOid = c.uint32();
      const argFormats = c.int16Array();
      const args = c.nullableBytesArray();
      const resultFormat = c.int16();
      c.end();
      return { type: "FunctionCall", functionOid, argFormats, args, resultFormat };
    }
    case T.AuthResponse:
      return decodeAuthResponse(body, auth);
  }
  throw protocolViolation("UNKNOWN_MESSAGE_TYPE", `invalid frontend message type ${tag}`);
}

/**
 * 'p' is PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse depending on which
 * Authentication request the server sent last; the bytes alone cannot tell. Without a kind the
 * raw body is returned as AuthResponse so the auth layer can call this again once it knows.
 */
export function decodeAuthResponse(body: Buffer, kind: AuthResponseKind | undefined): AuthResponseMessage {
  switch (kind) {
    case undefined:
      return { type: "AuthResponse", data: body };
    case "password": {
      const c = new Cursor(body, "PasswordMessage");
      const password = c.cstring();
      c.end();
      return { type: "PasswordMessage", password };
    }
    case "sasl-initial": {
      const c = new Cursor(body, "SASLInitialResponse");
      const mechanism = c.cstring();
      const data = c.nullableBytes();
      c.end();
      return { type: "SASLInitialResponse", mechanism, data };
    }
    case "sasl":
      return { type: "SASLResponse", data: body };
    case "gss":
      return { type: "GSSResponse", data: body };
  }
}

function targetKind(c: Cursor): TargetKind {
  const k = c.uint8();
  if (k === 0x53) return "S";
  if (k === 0x50) return "P";
  return c.fail(`invalid target type ${k}`);
}

function empty<M extends FrontendMessage>(body: Buffer, msg: M): M {
  if (body.length !== 0) new Cursor(body, msg.type).end();
  return msg;
}
