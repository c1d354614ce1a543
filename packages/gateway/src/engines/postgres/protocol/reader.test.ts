import { describe, expect, it } from "vitest";
import {
  BACKEND_FIXTURES,
  BACKEND_PIPELINE,
  BACKEND_SESSION,
  FRONTEND_FIXTURES,
  FRONTEND_PIPELINE,
  FRONTEND_SESSION,
  FRONTEND_STARTUP_FIXTURES,
  STARTUP,
  hex,
} from "./fixtures.js";
import { decodeAuthResponse } from "./decode-frontend.js";
import { BackendReader, FrontendReader } from "./reader.js";
import type { AuthResponseKind } from "./types.js";

type AnyReader = { push(chunk: Uint8Array): unknown[] };

/** Feeds `bytes` cut at the given offsets and returns all messages. */
function parseSplit(reader: AnyReader, bytes: Buffer, cuts: number[]): unknown[] {
  const out: unknown[] = [];
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...reader.push(bytes.subarray(prev, cut)));
    prev = cut;
  }
  return out;
}

/** Every single cut, one byte at a time, and (if short enough) every pair of cuts. */
function expectSplitsAgree(make: () => AnyReader, bytes: Buffer, expected: unknown[], pairs = false): void {
  expect(parseSplit(make(), bytes, [])).toEqual(expected);
  for (let i = 0; i <= bytes.length; i++) expect(parseSplit(make(), bytes, [i])).toEqual(expected);
  expect(parseSplit(make(), bytes, Array.from({ length: bytes.length }, (_, i) => i))).toEqual(expected);
  if (pairs) {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) expect(parseSplit(make(), bytes, [i, j])).toEqual(expected);
    }
  }
}

const frontend = (auth?: AuthResponseKind) => () => {
  const r = new FrontendReader();
  r.setAuthResponseKind(auth);
  return r;
};

describe("fixtures", () => {
  it("have length words matching their byte counts", () => {
    for (const f of FRONTEND_STARTUP_FIXTURES) expect(f.bytes.readInt32BE(0), f.name).toBe(f.bytes.length);
    for (const f of [...FRONTEND_FIXTURES, ...BACKEND_FIXTURES]) expect(f.bytes.readInt32BE(1), f.name).toBe(f.bytes.length - 1);
  });
});

describe("FrontendReader", () => {
  for (const f of FRONTEND_STARTUP_FIXTURES) {
    it(`parses ${f.name} at every split`, () => {
      expectSplitsAgree(frontend(), f.bytes, [f.msg], true);
    });
  }

  for (const f of FRONTEND_FIXTURES) {
    it(`parses ${f.name} at every split`, () => {
      expectSplitsAgree(frontend(f.auth), Buffer.concat([STARTUP.bytes, f.bytes]), [STARTUP.msg, f.msg]);
    });
  }

  it("parses a whole session (startup, raw SASL responses, query) at every split", () => {
    const r = new FrontendReader();
    const msgs = r.push(FRONTEND_SESSION);
    expect(msgs.map((m) => m.type)).toEqual(["StartupMessage", "AuthResponse", "AuthResponse", "Query", "Terminate"]);
    const [, first, second] = msgs;
    if (first?.type !== "AuthResponse" || second?.type !== "AuthResponse") throw new Error("unreachable");
    // The auth layer interprets raw 'p' bodies once it knows which request they answer.
    expect(decodeAuthResponse(first.data, "sasl-initial")).toEqual({
      type: "SASLInitialResponse",
      mechanism: "SCRAM-SHA-256",
      data: Buffer.from("n,,n=,r=abc"),
    });
    expect(decodeAuthResponse(second.data, "sasl")).toEqual({ type: "SASLResponse", data: Buffer.from("c=biws") });
    expect(r.phase).toBe("closed");
    expectSplitsAgree(frontend(), FRONTEND_SESSION, msgs);
  });

  it("parses an extended-protocol pipeline at every pair of splits", () => {
    const bytes = Buffer.concat([STARTUP.bytes, FRONTEND_PIPELINE]);
    const msgs = new FrontendReader().push(bytes);
    expect(msgs.map((m) => m.type)).toEqual([
      "StartupMessage", "Parse", "Bind", "Describe", "Execute", "Sync", "Bind", "Execute", "Sync", "Terminate",
    ]);
    expect(msgs[2]).toEqual({ type: "Bind", portal: "", statement: "s1", paramFormats: [], params: [Buffer.from("42")], resultFormats: [] });
    expectSplitsAgree(frontend(), bytes, msgs, true);
  });

  it("uses the auth hint for 'p' and can change it between messages", () => {
    const r = new FrontendReader();
    r.push(STARTUP.bytes);
    r.setAuthResponseKind("password");
    expect(r.push(hex("70 0000000b 736563726574 00"))).toEqual([{ type: "PasswordMessage", password: "secret" }]);
    r.setAuthResponseKind("gss");
    expect(r.push(hex("70 00000005 ff"))).toEqual([{ type: "GSSResponse", data: Buffer.from([0xff]) }]);
  });

  it("goes back to expecting a startup packet after SSLRequest and GSSENCRequest", () => {
    const r = new FrontendReader();
    expect(r.push(hex("00000008 04d2162f"))).toEqual([{ type: "SSLRequest" }]);
    expect(r.phase).toBe("startup");
    expect(r.push(hex("00000008 04d21630"))).toEqual([{ type: "GSSENCRequest" }]);
    expect(r.push(STARTUP.bytes)).toEqual([STARTUP.msg]);
    expect(r.phase).toBe("messages");
  });

  it("reports buffered bytes of an incomplete message", () => {
    const r = new FrontendReader();
    r.push(STARTUP.bytes.subarray(0, 10));
    expect(r.bufferedBytes).toBe(10);
    r.push(STARTUP.bytes.subarray(10));
    expect(r.bufferedBytes).toBe(0);
  });
});

describe("BackendReader", () => {
  for (const f of BACKEND_FIXTURES) {
    it(`parses ${f.name} at every split`, () => {
      expectSplitsAgree(() => new BackendReader(), f.bytes, [f.msg], f.bytes.length <= 24);
    });
  }

  it("parses a whole session (auth, params, key, rows) at every split", () => {
    const msgs = new BackendReader().push(BACKEND_SESSION);
    expect(msgs.map((m) => m.type)).toEqual([
      "AuthenticationSASL", "AuthenticationSASLContinue", "AuthenticationSASLFinal", "AuthenticationOk",
      "ParameterStatus", "ParameterStatus", "BackendKeyData", "ReadyForQuery", "RowDescription",
      "DataRow", "DataRow", "DataRow", "CommandComplete", "ReadyForQuery",
    ]);
    expect(msgs[11]).toEqual({ type: "DataRow", values: [null] });
    expectSplitsAgree(() => new BackendReader(), BACKEND_SESSION, msgs);
  });

  it("parses the pipeline responses at every pair of splits", () => {
    const msgs = new BackendReader().push(BACKEND_PIPELINE);
    expect(msgs).toHaveLength(10);
    expectSplitsAgree(() => new BackendReader(), BACKEND_PIPELINE, msgs, true);
  });

  it("reads the one-byte answers to SSLRequest and GSSENCRequest when told to", () => {
    const r = new BackendReader();
    r.expectEncryptionResponse("ssl");
    expect(r.push(hex("4e"))).toEqual([{ type: "SSLResponse", accepted: false }]);
    r.expectEncryptionResponse("gss");
    expect(r.push(hex("47"))).toEqual([{ type: "GSSENCResponse", accepted: true }]);
    r.expectEncryptionResponse("ssl");
    expect(r.push(hex("53"))).toEqual([{ type: "SSLResponse", accepted: true }]);
    // Without the announcement, 'S' is the tag of ParameterStatus.
    expect(r.push(BACKEND_FIXTURES.find((f) => f.name === "ParameterStatus")!.bytes)).toHaveLength(1);
  });

  it("accepts an ErrorResponse instead of the encryption answer", () => {
    const r = new BackendReader();
    r.expectEncryptionResponse("ssl");
    const err = BACKEND_FIXTURES.find((f) => f.name === "ErrorResponse")!;
    expect(parseSplit(r, err.bytes, [1, 3])).toEqual([err.msg]);
  });

  it("returns zero-copy views for messages inside one chunk", () => {
    const chunk = hex("44 0000000e 0001 00000004 deadbeef");
    const [row] = new BackendReader().push(chunk);
    if (row?.type !== "DataRow") throw new Error("expected DataRow");
    expect(row.values[0]!.buffer).toBe(chunk.buffer);
  });

  it("copies a message spanning chunks, so it survives reuse of the chunks", () => {
    const a = hex("44 0000000e 0001 0000");
    const b = hex("0004 deadbeef");
    const r = new BackendReader();
    expect(r.push(a)).toEqual([]);
    const [row] = r.push(b);
    a.fill(0);
    b.fill(0);
    expect(row).toEqual({ type: "DataRow", values: [hex("deadbeef")] });
  });

  it("reassembles a large DataRow from many small chunks in linear time", () => {
    const value = Buffer.alloc(8 * 1024 * 1024, 0x61);
    const frame = Buffer.concat([hex("44"), Buffer.alloc(4), hex("0001"), Buffer.alloc(4), value]);
    frame.writeInt32BE(frame.length - 1, 1);
    frame.writeInt32BE(value.length, 7);
    const r = new BackendReader();
    const out = [];
    const started = performance.now();
    for (let i = 0; i < frame.length; i += 1024) out.push(...r.push(frame.subarray(i, i + 1024)));
    const ms = performance.now() - started;
    expect(out).toHaveLength(1);
    expect((out[0] as { values: Buffer[] }).values[0]!.equals(value)).toBe(true);
    expect(ms).toBeLessThan(2000); // 8192 pushes; quadratic re-concatenation would take far longer
  });

  it("parses many small messages from one chunk", () => {
    const n = 100_000;
    const chunk = Buffer.concat(Array.from({ length: n }, () => hex("5a 00000005 49")));
    expect(new BackendReader().push(chunk)).toHaveLength(n);
  });
});
