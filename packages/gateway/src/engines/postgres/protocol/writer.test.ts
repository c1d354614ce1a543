import { describe, expect, it } from "vitest";
import { PgProtocolError, buildErrorResponse, errorResponseFor, protocolViolation } from "./errors.js";
import { BACKEND_FIXTURES, FRONTEND_FIXTURES, FRONTEND_STARTUP_FIXTURES, STARTUP, hex } from "./fixtures.js";
import { BackendReader, FrontendReader } from "./reader.js";
import type { AuthResponseKind, BackendMessage, FrontendMessage } from "./types.js";
import { writeBackend, writeFrontend } from "./writer.js";

/** Parses one frontend frame (tagged frames get a StartupMessage in front of them). */
function parseFrontend(bytes: Buffer, tagged: boolean, auth?: AuthResponseKind): FrontendMessage {
  const r = new FrontendReader();
  r.setAuthResponseKind(auth);
  const msgs = r.push(tagged ? Buffer.concat([STARTUP.bytes, bytes]) : bytes);
  expect(msgs).toHaveLength(tagged ? 2 : 1);
  return msgs.at(-1)!;
}

function parseBackend(bytes: Buffer): BackendMessage {
  const msgs = new BackendReader().push(bytes);
  expect(msgs).toHaveLength(1);
  return msgs[0]!;
}

const ALL_FRONTEND_TYPES: FrontendMessage["type"][] = [
  "StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest", "Query", "Parse", "Bind", "Describe", "Execute",
  "Sync", "Flush", "Close", "CopyData", "CopyDone", "CopyFail", "FunctionCall", "Terminate", "PasswordMessage",
  "SASLInitialResponse", "SASLResponse", "GSSResponse", "AuthResponse",
];
// SSLResponse/GSSENCResponse are untagged single bytes, covered separately below.
const ALL_BACKEND_TYPES: BackendMessage["type"][] = [
  "AuthenticationOk", "AuthenticationKerberosV5", "AuthenticationCleartextPassword", "AuthenticationMD5Password",
  "AuthenticationGSS", "AuthenticationGSSContinue", "AuthenticationSSPI", "AuthenticationSASL",
  "AuthenticationSASLContinue", "AuthenticationSASLFinal", "ParameterStatus", "BackendKeyData", "ReadyForQuery",
  "RowDescription", "DataRow", "CommandComplete", "EmptyQueryResponse", "ErrorResponse", "NoticeResponse",
  "ParseComplete", "BindComplete", "CloseComplete", "NoData", "PortalSuspended", "ParameterDescription",
  "CopyInResponse", "CopyOutResponse", "CopyBothResponse", "CopyData", "CopyDone", "NotificationResponse",
  "FunctionCallResponse", "NegotiateProtocolVersion",
];

describe("fixture coverage", () => {
  it("has a hand-written frame for every message type", () => {
    const fe = new Set([...FRONTEND_STARTUP_FIXTURES, ...FRONTEND_FIXTURES].map((f) => f.msg.type));
    expect([...fe].sort()).toEqual([...ALL_FRONTEND_TYPES].sort());
    const be = new Set(BACKEND_FIXTURES.map((f) => f.msg.type));
    expect([...be].sort()).toEqual([...ALL_BACKEND_TYPES].sort());
  });
});

describe("writeFrontend", () => {
  for (const f of FRONTEND_STARTUP_FIXTURES) {
    it(`${f.name}: matches the hand-written bytes and round-trips`, () => {
      expect(writeFrontend(f.msg)).toEqual(f.bytes);
      expect(writeFrontend(parseFrontend(f.bytes, false))).toEqual(f.bytes);
      expect(parseFrontend(writeFrontend(f.msg), false)).toEqual(f.msg);
    });
  }
  for (const f of FRONTEND_FIXTURES) {
    it(`${f.name}: matches the hand-written bytes and round-trips`, () => {
      expect(writeFrontend(f.msg)).toEqual(f.bytes);
      expect(writeFrontend(parseFrontend(f.bytes, true, f.auth))).toEqual(f.bytes);
      expect(parseFrontend(writeFrontend(f.msg), true, f.auth)).toEqual(f.msg);
    });
  }

  it("rejects values the wire cannot carry", () => {
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(PgProtocolError);
        return (err as PgProtocolError).code;
      }
      return "no error";
    };
    expect(code(() => writeFrontend({ type: "Query", query: "select 1\0; drop table t" }))).toBe("INVALID_STRING");
    expect(code(() => writeFrontend({ type: "StartupMessage", protocolVersion: 196608, params: { "": "x" } }))).toBe("INVALID_STRING");
    const tooMany = new Array<number>(65536).fill(0);
    expect(code(() => writeFrontend({ type: "Parse", name: "", query: "", paramTypes: tooMany }))).toBe("VALUE_OUT_OF_RANGE");
    expect(code(() => writeFrontend({ type: "Parse", name: "", query: "", paramTypes: [-1] }))).toBe("VALUE_OUT_OF_RANGE");
    expect(code(() => writeFrontend({ type: "Execute", portal: "", maxRows: 2 ** 31 }))).toBe("VALUE_OUT_OF_RANGE");
    expect(code(() => writeFrontend({ type: "CancelRequest", processId: 1, secretKey: Buffer.alloc(3) }))).toBe("VALUE_OUT_OF_RANGE");
    expect(code(() => writeBackend({ type: "AuthenticationMD5Password", salt: Buffer.alloc(5) }))).toBe("VALUE_OUT_OF_RANGE");
    expect(code(() => writeBackend({ type: "ErrorResponse", fields: { MM: "x" } }))).toBe("INVALID_STRING");
    expect(code(() => writeBackend({ type: "AuthenticationSASL", mechanisms: [""] }))).toBe("INVALID_STRING");
    expect(code(() => writeBackend({ type: "ReadyForQuery", status: "X" as "I" }))).toBe("VALUE_OUT_OF_RANGE");
  });

  it("writes 65535 Bind parameters (counts are unsigned on the wire)", () => {
    const params = new Array<Buffer | null>(65535).fill(null);
    const msg: FrontendMessage = { type: "Bind", portal: "", statement: "", paramFormats: [], params, resultFormats: [] };
    expect(parseFrontend(writeFrontend(msg), true)).toEqual(msg);
  });
});

describe("writeBackend", () => {
  for (const f of BACKEND_FIXTURES) {
    it(`${f.name}: matches the hand-written bytes and round-trips`, () => {
      expect(writeBackend(f.msg)).toEqual(f.bytes);
      expect(writeBackend(parseBackend(f.bytes))).toEqual(f.bytes);
      expect(parseBackend(writeBackend(f.msg))).toEqual(f.msg);
    });
  }

  it("writes the untagged encryption answers", () => {
    expect(writeBackend({ type: "SSLResponse", accepted: true })).toEqual(hex("53"));
    expect(writeBackend({ type: "SSLResponse", accepted: false })).toEqual(hex("4e"));
    expect(writeBackend({ type: "GSSENCResponse", accepted: true })).toEqual(hex("47"));
    expect(writeBackend({ type: "GSSENCResponse", accepted: false })).toEqual(hex("4e"));
    const r = new BackendReader();
    r.expectEncryptionResponse("gss");
    expect(r.push(writeBackend({ type: "GSSENCResponse", accepted: false }))).toEqual([{ type: "GSSENCResponse", accepted: false }]);
  });

  it("writes large DataRows exactly", () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const msg: BackendMessage = { type: "DataRow", values: [big, null, Buffer.from("x")] };
    const bytes = writeBackend(msg);
    expect(bytes.length).toBe(1 + 4 + 2 + (4 + big.length) + 4 + (4 + 1));
    const back = parseBackend(bytes);
    if (back.type !== "DataRow") throw new Error("expected DataRow");
    // Buffer.equals: vitest's generic deep equality walks megabytes element by element.
    expect(back.values[0]!.equals(big)).toBe(true);
    expect(back.values.slice(1)).toEqual([null, Buffer.from("x")]);
  });

  it("encodes multi-byte UTF-8 with byte-accurate lengths", () => {
    const msg: BackendMessage = { type: "CommandComplete", tag: "héllo 漢字 🐘" };
    const bytes = writeBackend(msg);
    expect(bytes.readInt32BE(1)).toBe(4 + Buffer.byteLength(msg.tag) + 1);
    expect(parseBackend(bytes)).toEqual(msg);
  });
});

describe("buildErrorResponse", () => {
  it("produces the fields a server would, in server order", () => {
    const msg = buildErrorResponse("FATAL", "08P01", "bad", "d", "h");
    // 'E', len 37, S FATAL, V FATAL, C 08P01, M bad, D d, H h, terminator
    expect(writeBackend(msg)).toEqual(
      hex("45 00000025 53 464154414c 00 56 464154414c 00 43 3038503031 00 4d 626164 00 44 64 00 48 68 00 00"),
    );
    expect(Object.keys(msg.fields)).toEqual(["S", "V", "C", "M", "D", "H"]);
  });

  it("omits absent detail/hint, strips NULs and validates the SQLSTATE", () => {
    expect(buildErrorResponse("ERROR", "42501", "no\0pe").fields).toEqual({ S: "ERROR", V: "ERROR", C: "42501", M: "nope" });
    expect(() => buildErrorResponse("ERROR", "4250", "x")).toThrow(RangeError);
    expect(() => buildErrorResponse("ERROR", "42p01", "x")).toThrow(RangeError);
  });

  it("turns a PgProtocolError into a FATAL response with its SQLSTATE", () => {
    const err = protocolViolation("UNKNOWN_MESSAGE_TYPE", "invalid frontend message type 90");
    expect(errorResponseFor(err).fields).toEqual({ S: "FATAL", V: "FATAL", C: "08P01", M: "invalid frontend message type 90" });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("PgProtocolError");
    const cause = new Error("inner");
    expect(new PgProtocolError("MALFORMED_MESSAGE", "08P01", "x", { cause }).cause).toBe(cause);
  });
});
