// Every way the readers refuse input, with the code and SQLSTATE a server would use.
import { describe, expect, it } from "vitest";
import { PgProtocolError } from "./errors.js";
import { FRONTEND_STARTUP_FIXTURES, STARTUP, hex } from "./fixtures.js";
import { BackendReader, FrontendReader } from "./reader.js";

function protocolError(fn: () => unknown): PgProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PgProtocolError);
    return err as PgProtocolError;
  }
  throw new Error("expected a PgProtocolError");
}

describe("FrontendReader rejects", () => {
  it("rejects data pipelined behind an SSLRequest (sent before encryption)", () => {
    const err = protocolError(() => new FrontendReader().push(Buffer.concat([hex("00000008 04d2162f"), STARTUP.bytes])));
    expect(err.code).toBe("UNENCRYPTED_DATA_AFTER_NEGOTIATION");
    expect(err.sqlstate).toBe("08P01");
  });

  it("rejects a second SSLRequest", () => {
    const r = new FrontendReader();
    r.push(hex("00000008 04d2162f"));
    expect(protocolError(() => r.push(hex("00000008 04d2162f"))).code).toBe("UNEXPECTED_MESSAGE");
  });

  it("rejects anything after CancelRequest or Terminate", () => {
    const c = new FrontendReader();
    expect(c.push(FRONTEND_STARTUP_FIXTURES[4]!.bytes)).toHaveLength(1);
    expect(protocolError(() => c.push(hex("00"))).code).toBe("UNEXPECTED_MESSAGE");
    const t = new FrontendReader();
    t.push(Buffer.concat([STARTUP.bytes, hex("58 00000004")]));
    expect(protocolError(() => t.push(hex("53 00000004"))).code).toBe("UNEXPECTED_MESSAGE");
  });

  it("rejects unsupported protocol versions with 0A000", () => {
    for (const version of ["00020000", "04d204d2", "00040000"]) {
      const err = protocolError(() => new FrontendReader().push(hex(`00000009 ${version} 00`)));
      expect(err.code).toBe("UNSUPPORTED_PROTOCOL_VERSION");
      expect(err.sqlstate).toBe("0A000");
    }
  });

  it("names a TLS ClientHello sent instead of a startup packet", () => {
    expect(protocolError(() => new FrontendReader().push(hex("16 0301 00f1 01"))).code).toBe("DIRECT_TLS_HANDSHAKE");
  });

  it("rejects an unknown tag as soon as its byte arrives (08P01)", () => {
    const r = new FrontendReader();
    r.push(STARTUP.bytes);
    const err = protocolError(() => r.push(hex("5a")));
    expect([err.code, err.sqlstate]).toEqual(["UNKNOWN_MESSAGE_TYPE", "08P01"]);
  });

  it("rejects length words below the minimum (08P01)", () => {
    const r = new FrontendReader();
    r.push(STARTUP.bytes);
    expect([protocolError(() => r.push(hex("51 00000003"))).code, r.error?.sqlstate]).toEqual(["INVALID_MESSAGE_LENGTH", "08P01"]);
    const neg = new FrontendReader();
    neg.push(STARTUP.bytes);
    expect(protocolError(() => neg.push(hex("51 ffffffff"))).code).toBe("INVALID_MESSAGE_LENGTH");
    expect(protocolError(() => new FrontendReader().push(hex("00000007"))).code).toBe("INVALID_MESSAGE_LENGTH");
  });

  it("rejects oversize lengths (54000) from the header alone, before buffering the body", () => {
    const r = new FrontendReader({ maxMessageSize: 1024 });
    r.push(STARTUP.bytes);
    expect(r.push(hex("51 0000"))).toEqual([]);
    const err = protocolError(() => r.push(hex("0401")));
    expect([err.code, err.sqlstate]).toEqual(["MESSAGE_TOO_LARGE", "54000"]);
    // Default limit (64 MiB) and the server's small-message and startup caps.
    const big = new FrontendReader();
    big.push(STARTUP.bytes);
    expect(protocolError(() => big.push(hex("51 04000001"))).sqlstate).toBe("54000");
    const sync = new FrontendReader();
    sync.push(STARTUP.bytes);
    expect(protocolError(() => sync.push(hex("53 00002711"))).code).toBe("MESSAGE_TOO_LARGE");
    expect(protocolError(() => new FrontendReader().push(hex("00002711"))).code).toBe("MESSAGE_TOO_LARGE");
  });

  it("accepts a message exactly at the limit", () => {
    const r = new FrontendReader({ maxMessageSize: 16 });
    r.push(STARTUP.bytes);
    expect(r.push(hex("64 00000010 000102030405060708090a0b"))).toHaveLength(1);
  });

  it("rejects malformed bodies (08P01)", () => {
    const cases = [
      "51 00000008 61626364", // Query without terminator
      "51 00000007 6100 62", // Query with trailing bytes
      "53 00000005 00", // Sync with a body
      "44 00000006 58 00", // Describe of kind 'X'
      "42 0000000e 00 00 0000 0005 00000000", // Bind claiming 5 params, holding 1
      "42 00000010 00 00 0000 0001 fffffffe 0000", // Bind param length -2
      "45 00000006 00 00", // Execute with a truncated Int32
      "00000008 00030000", // StartupMessage without terminator (after the real startup it is an unknown tag)
    ];
    for (const c of cases.slice(0, -1)) {
      const r = new FrontendReader();
      r.push(STARTUP.bytes);
      const err = protocolError(() => r.push(hex(c)));
      expect([err.code, err.sqlstate], c).toEqual(["MALFORMED_MESSAGE", "08P01"]);
    }
    expect(protocolError(() => new FrontendReader().push(hex(cases.at(-1)!))).code).toBe("MALFORMED_MESSAGE");
    expect(protocolError(() => new FrontendReader().push(hex("0000000e 04d2162e 00000001 ffff"))).code).toBe("MALFORMED_MESSAGE");
  });

  it("stays failed: every later push rethrows the first error", () => {
    const r = new FrontendReader();
    r.push(STARTUP.bytes);
    const first = protocolError(() => r.push(hex("5a")));
    expect(() => r.push(hex("53 00000004"))).toThrow(first);
    expect(() => r.push(Buffer.alloc(0))).toThrow(first);
    expect(r.error).toBe(first);
  });

  it("feed() delivers the messages that preceded an error", () => {
    const r = new FrontendReader();
    const seen: string[] = [];
    expect(() => r.feed(Buffer.concat([STARTUP.bytes, hex("53 00000004 ff")]), (m) => seen.push(m.type))).toThrow(PgProtocolError);
    expect(seen).toEqual(["StartupMessage", "Sync"]);
  });

  it("an exception in the feed() callback does not fail the reader", () => {
    const r = new FrontendReader();
    expect(() =>
      r.feed(Buffer.concat([STARTUP.bytes, hex("53 00000004")]), () => {
        throw new Error("consumer bug");
      }),
    ).toThrow("consumer bug");
    expect(r.error).toBeUndefined();
    expect(r.push(Buffer.alloc(0))).toEqual([{ type: "Sync" }]);
  });
});

describe("BackendReader rejects", () => {
  it("rejects bytes behind the encryption answer, or an invalid answer", () => {
    const r = new BackendReader();
    r.expectEncryptionResponse("ssl");
    expect(protocolError(() => r.push(hex("53 5a"))).code).toBe("UNENCRYPTED_DATA_AFTER_NEGOTIATION");
    const g = new BackendReader();
    g.expectEncryptionResponse("gss");
    expect(protocolError(() => g.push(hex("53"))).code).toBe("UNEXPECTED_MESSAGE");
  });

  it("rejects unknown tags, bad lengths and malformed bodies", () => {
    const cases: [string, string, string][] = [
      ["78", "UNKNOWN_MESSAGE_TYPE", "08P01"],
      ["44 00000002", "INVALID_MESSAGE_LENGTH", "08P01"],
      ["44 7fffffff", "MESSAGE_TOO_LARGE", "54000"],
      ["5a 00000005 58", "MALFORMED_MESSAGE", "08P01"], // ReadyForQuery 'X'
      ["52 00000008 00000004", "MALFORMED_MESSAGE", "08P01"], // unknown auth request
      ["52 0000000c 00000000 00000000", "MALFORMED_MESSAGE", "08P01"], // AuthenticationOk with a tail
      ["4b 0000000b 00000001 aabbcc", "MALFORMED_MESSAGE", "08P01"], // 3-byte cancel key
      ["44 0000000a 0001 fffffffe", "MALFORMED_MESSAGE", "08P01"], // DataRow length -2
      ["44 0000000a ffff 00000000", "MALFORMED_MESSAGE", "08P01"], // 65535 columns in 6 bytes
      ["45 00000007 4d 6100", "MALFORMED_MESSAGE", "08P01"], // ErrorResponse without final zero
      ["76 0000000c 00000000 7fffffff", "MALFORMED_MESSAGE", "08P01"], // option count beyond body
    ];
    for (const [bytes, code, sqlstate] of cases) {
      const err = protocolError(() => new BackendReader().push(hex(bytes)));
      expect([err.code, err.sqlstate], bytes).toEqual([code, sqlstate]);
    }
  });

  it("validates maxMessageSize", () => {
    expect(() => new BackendReader({ maxMessageSize: 0 })).toThrow(RangeError);
    expect(() => new BackendReader({ maxMessageSize: 2 ** 31 })).toThrow(RangeError);
  });
});
