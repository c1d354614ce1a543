// Bounded, seeded fuzzing: deterministic (same seed, same inputs) so a failure reproduces.
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_STARTUP_PACKET_LENGTH } from "./constants.js";
import { PgProtocolError } from "./errors.js";
import {
  BACKEND_FIXTURES,
  BACKEND_PIPELINE,
  BACKEND_SESSION,
  FRONTEND_FIXTURES,
  FRONTEND_PIPELINE,
  FRONTEND_SESSION,
  FRONTEND_STARTUP_FIXTURES,
  STARTUP,
} from "./fixtures.js";
import { BackendReader, FrontendReader } from "./reader.js";
import type { AuthResponseKind, BackendMessage, FrontendMessage } from "./types.js";
import { writeBackend, writeFrontend } from "./writer.js";
import { mulberry32 } from "../../../test-prng.js";

const prng = mulberry32;

const rand = prng(0x5eed_c0de);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

const FRONTEND_CORPUS: Buffer[] = [
  ...FRONTEND_STARTUP_FIXTURES.map((f) => f.bytes),
  ...FRONTEND_FIXTURES.map((f) => Buffer.concat([STARTUP.bytes, f.bytes])),
  FRONTEND_SESSION,
  Buffer.concat([STARTUP.bytes, FRONTEND_PIPELINE]),
];
const BACKEND_CORPUS: Buffer[] = [...BACKEND_FIXTURES.map((f) => f.bytes), BACKEND_SESSION, BACKEND_PIPELINE];
const INTERESTING_INT32 = [0, 1, 3, 4, 5, 7, 8, 16, 0x7fff_ffff, -1, -2, -0x8000_0000, 10_000, 10_001, 65_535, 65_536];

function mutate(input: Buffer, corpus: Buffer[]): Buffer {
  let buf: Buffer = Buffer.from(input);
  // 10% untouched (exercises random chunking of valid streams), mostly one mutation, sometimes three.
  for (let rounds = rand() < 0.1 ? 0 : rand() < 0.7 ? 1 : 3; rounds > 0; rounds--) {
    const at = int(buf.length + 1);
    switch (int(8)) {
      case 0: buf = bytes(int(64)); break; // pure noise
      case 1: buf = buf.subarray(0, at); break; // truncation
      case 2: if (buf.length) buf[int(buf.length)]! ^= 1 << int(8); break; // bit flip
      case 3: if (buf.length) buf[int(buf.length)] = pick([0, 0xff, 0x7f, 0x80, int(256)]); break;
      case 4: buf = Buffer.concat([buf.subarray(0, at), bytes(1 + int(8)), buf.subarray(at)]); break;
      case 5: buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + int(8)))]); break;
      case 6: { const other = pick(corpus); buf = Buffer.concat([buf.subarray(0, at), other.subarray(int(other.length + 1))]); break; }
      case 7: if (buf.length >= 4) { buf = Buffer.from(buf); buf.writeInt32BE(pick(INTERESTING_INT32), int(buf.length - 3)); } break; // length words
    }
  }
  return buf;
}

function chunked(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = rand() < 0.3 ? 1 : 1 + int(buf.length);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

const AUTH_KIND: Record<string, AuthResponseKind | undefined> = {
  PasswordMessage: "password", SASLInitialResponse: "sasl-initial", SASLResponse: "sasl", GSSResponse: "gss",
};
const STARTUP_TYPES = new Set(["StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest"]);

/** Parses exactly one frame produced by the writer. */
function reparseFrontend(frame: Buffer, type: string): FrontendMessage {
  const r = new FrontendReader();
  r.setAuthResponseKind(AUTH_KIND[type]);
  if (!STARTUP_TYPES.has(type)) r.push(STARTUP.bytes);
  const msgs = r.push(frame);
  check(msgs.length === 1, `${type}: expected one message, got ${msgs.length}`);
  return msgs[0]!;
}

function reparseBackend(frame: Buffer, type: string): BackendMessage {
  const r = new BackendReader();
  if (type === "SSLResponse") r.expectEncryptionResponse("ssl");
  if (type === "GSSENCResponse") r.expectEncryptionResponse("gss");
  const msgs = r.push(frame);
  check(msgs.length === 1, `${type}: expected one message, got ${msgs.length}`);
  return msgs[0]!;
}

/** Plain assertion for the hot loop: expect() per iteration would dominate the run time. */
function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`fuzz input failed: ${message}`);
}

function throws(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

const SQLSTATES = new Set(["08P01", "54000", "0A000"]);
const CODES = new Set([
  "INVALID_MESSAGE_LENGTH", "MESSAGE_TOO_LARGE", "UNKNOWN_MESSAGE_TYPE", "MALFORMED_MESSAGE",
  "UNSUPPORTED_PROTOCOL_VERSION", "UNENCRYPTED_DATA_AFTER_NEGOTIATION", "UNEXPECTED_MESSAGE", "DIRECT_TLS_HANDSHAKE",
]);

describe("fuzzing the readers", () => {
  afterEach(() => vi.restoreAllMocks());

  it("20k mutated inputs: messages or PgProtocolError, bounded allocation, canonical re-encoding", () => {
    let largestAlloc = 0;
    let inPush = false;
    const realAllocUnsafe = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, "allocUnsafe").mockImplementation((size: number) => {
      if (inPush) largestAlloc = Math.max(largestAlloc, size);
      return realAllocUnsafe(size);
    });
    const stats = { messages: 0, errors: 0, byCode: {} as Record<string, number> };
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const isFrontend = i % 2 === 0;
      const max = pick([8, 64, 1024, 65_536, 65_536]);
      const input = mutate(pick(isFrontend ? FRONTEND_CORPUS : BACKEND_CORPUS), isFrontend ? FRONTEND_CORPUS : BACKEND_CORPUS);
      const reader = isFrontend ? new FrontendReader({ maxMessageSize: max }) : new BackendReader({ maxMessageSize: max });
      if (reader instanceof FrontendReader) reader.setAuthResponseKind(pick([undefined, "password", "sasl-initial", "sasl", "gss"]));
      else if (rand() < 0.1) reader.expectEncryptionResponse(pick(["ssl", "gss"]));
      const messages: (FrontendMessage | BackendMessage)[] = [];
      largestAlloc = 0;
      try {
        for (const chunk of chunked(input)) {
          inPush = true;
          messages.push(...reader.push(chunk));
          inPush = false;
        }
      } catch (err) {
        inPush = false;
        if (!(err instanceof PgProtocolError)) throw err;
        check(CODES.has(err.code), `unexpected code ${err.code}`);
        check(SQLSTATES.has(err.sqlstate), `unexpected SQLSTATE ${err.sqlstate}`);
        check(err.cause === undefined, `wrapped exception: ${String(err.cause)}`); // a decoder bug, not bad input
        check(throws(() => reader.push(Buffer.from([0x53]))) === err, "reader did not stay failed");
        stats.errors++;
        stats.byCode[err.code] = (stats.byCode[err.code] ?? 0) + 1;
      }
      check(largestAlloc <= Math.max(max + 1, MAX_STARTUP_PACKET_LENGTH), `allocated ${largestAlloc} with limit ${max}`);
      check(reader.bufferedBytes <= input.length, "buffered more than was fed");
      // Whatever decoded must re-encode, and that encoding must be a fixed point.
      for (const m of messages) {
        const frame = isFrontend ? writeFrontend(m as FrontendMessage) : writeBackend(m as BackendMessage);
        const again = isFrontend ? writeFrontend(reparseFrontend(frame, m.type)) : writeBackend(reparseBackend(frame, m.type));
        check(again.equals(frame), `${m.type} re-encodes differently`);
      }
      stats.messages += messages.length;
    }
    const ms = performance.now() - started;
    console.info(`fuzz: 20000 inputs in ${ms.toFixed(0)} ms, ${stats.messages} messages, errors ${JSON.stringify(stats.byCode)}`);
    // Every failure mode is reached, and plenty of inputs still decode.
    expect(Object.keys(stats.byCode).sort()).toEqual(expect.arrayContaining(["INVALID_MESSAGE_LENGTH", "MALFORMED_MESSAGE", "MESSAGE_TOO_LARGE", "UNKNOWN_MESSAGE_TYPE"]));
    expect(stats.messages).toBeGreaterThan(5_000);
  });
});

// ------------------------------------------------------------ random well-formed messages

const ALPHABET = [..."abcXYZ019 _-$'\"\\,.;é€漢字🐘\n\t"];
const text = (): string => Array.from({ length: int(12) }, () => pick(ALPHABET)).join("");
const name = (): string => "n" + text();
const maybe = (): Buffer | null => (rand() < 0.2 ? null : bytes(int(16)));
const list = <T>(f: () => T, n = 5): T[] => Array.from({ length: int(n + 1) }, f);
const i16 = (): number => int(65_536) - 32_768;
const i32 = (): number => (int(2 ** 32) | 0);
const u32 = (): number => int(2 ** 32);
const fmt = (): number => int(2);
const kind = (): "S" | "P" => pick(["S", "P"] as const);
const key = (): Buffer => bytes(4 + int(253));
const fields = (): Record<string, string> => Object.fromEntries(list(() => [pick([..."SVCMDHPpqWstcdnFLR"]), text()] as const, 6));

const FRONTEND_GEN: (() => FrontendMessage)[] = [
  () => ({ type: "StartupMessage", protocolVersion: pick([196608, 196610]), params: Object.fromEntries(list(() => [name(), text()] as const)) }),
  () => ({ type: "SSLRequest" }),
  () => ({ type: "GSSENCRequest" }),
  () => ({ type: "CancelRequest", processId: i32(), secretKey: key() }),
  () => ({ type: "Query", query: text() }),
  () => ({ type: "Parse", name: text(), query: text(), paramTypes: list(u32) }),
  () => ({ type: "Bind", portal: text(), statement: text(), paramFormats: list(fmt), params: list(maybe), resultFormats: list(i16) }),
  () => ({ type: "Describe", kind: kind(), name: text() }),
  () => ({ type: "Execute", portal: text(), maxRows: i32() }),
  () => ({ type: "Sync" }),
  () => ({ type: "Flush" }),
  () => ({ type: "Close", kind: kind(), name: text() }),
  () => ({ type: "CopyData", data: bytes(int(64)) }),
  () => ({ type: "CopyDone" }),
  () => ({ type: "CopyFail", message: text() }),
  () => ({ type: "FunctionCall", functionOid: u32(), argFormats: list(fmt), args: list(maybe), resultFormat: fmt() }),
  () => ({ type: "Terminate" }),
  () => ({ type: "PasswordMessage", password: text() }),
  () => ({ type: "SASLInitialResponse", mechanism: name(), data: maybe() }),
  () => ({ type: "SASLResponse", data: bytes(int(32)) }),
  () => ({ type: "GSSResponse", data: bytes(int(32)) }),
  () => ({ type: "AuthResponse", data: bytes(int(32)) }),
];

const BACKEND_GEN: (() => BackendMessage)[] = [
  () => ({ type: "AuthenticationOk" }),
  () => ({ type: "AuthenticationKerberosV5" }),
  () => ({ type: "AuthenticationCleartextPassword" }),
  () => ({ type: "AuthenticationMD5Password", salt: bytes(4) }),
  () => ({ type: "AuthenticationGSS" }),
  () => ({ type: "AuthenticationGSSContinue", data: bytes(int(32)) }),
  () => ({ type: "AuthenticationSSPI" }),
  () => ({ type: "AuthenticationSASL", mechanisms: list(name) }),
  () => ({ type: "AuthenticationSASLContinue", data: bytes(int(32)) }),
  () => ({ type: "AuthenticationSASLFinal", data: bytes(int(32)) }),
  () => ({ type: "SSLResponse", accepted: rand() < 0.5 }),
  () => ({ type: "GSSENCResponse", accepted: rand() < 0.5 }),
  () => ({ type: "ParameterStatus", name: text(), value: text() }),
  () => ({ type: "BackendKeyData", processId: i32(), secretKey: key() }),
  () => ({ type: "ReadyForQuery", status: pick(["I", "T", "E"] as const) }),
  () => ({
    type: "RowDescription",
    fields: list(() => ({ name: text(), tableOid: u32(), columnAttrNumber: i16(), dataTypeOid: u32(), dataTypeSize: i16(), typeModifier: i32(), format: fmt() })),
  }),
  () => ({ type: "DataRow", values: list(maybe, 8) }),
  () => ({ type: "CommandComplete", tag: text() }),
  () => ({ type: "EmptyQueryResponse" }),
  () => ({ type: "ErrorResponse", fields: fields() }),
  () => ({ type: "NoticeResponse", fields: fields() }),
  () => ({ type: "ParseComplete" }),
  () => ({ type: "BindComplete" }),
  () => ({ type: "CloseComplete" }),
  () => ({ type: "NoData" }),
  () => ({ type: "PortalSuspended" }),
  () => ({ type: "ParameterDescription", typeOids: list(u32) }),
  () => ({ type: "CopyInResponse", format: fmt(), columnFormats: list(fmt) }),
  () => ({ type: "CopyOutResponse", format: fmt(), columnFormats: list(fmt) }),
  () => ({ type: "CopyBothResponse", format: fmt(), columnFormats: list(fmt) }),
  () => ({ type: "CopyData", data: bytes(int(64)) }),
  () => ({ type: "CopyDone" }),
  () => ({ type: "NotificationResponse", processId: i32(), channel: text(), payload: text() }),
  () => ({ type: "FunctionCallResponse", value: maybe() }),
  () => ({ type: "NegotiateProtocolVersion", newestMinorVersion: int(3), unrecognizedOptions: list(() => "_pq_." + text()) }),
];

describe("random well-formed messages", () => {
  it("parse(write(m)) deep-equals m for 100 random instances of every type", () => {
    for (const gen of FRONTEND_GEN) {
      for (let i = 0; i < 100; i++) {
        const m = gen();
        expect(reparseFrontend(writeFrontend(m), m.type)).toEqual(m);
      }
    }
    for (const gen of BACKEND_GEN) {
      for (let i = 0; i < 100; i++) {
        const m = gen();
        expect(reparseBackend(writeBackend(m), m.type)).toEqual(m);
      }
    }
  });
});
