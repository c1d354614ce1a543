import { describe, expect, it } from "vitest";
import type { SiemEvent } from "./events.js";
import { asciiJson, escapeParamValue, formatMessage, frame, headerField, parseFrames, structuredData } from "./syslog-format.js";

const statement: SiemEvent = {
  id: "statement:7f0c",
  type: "statement",
  time: "2030-01-02T03:04:05.678Z",
  data: { id: "7f0c", session_id: "s-1", subject: 'eve"]\\admin', decision: "allow", text: "select 'ünïcødé 🎉'" },
};

describe("RFC 5424 formatting", () => {
  it("escapes exactly \", \\ and ] in SD-PARAM values", () => {
    expect(escapeParamValue('a"b\\c]d[e=f')).toBe('a\\"b\\\\c\\]d[e=f');
    expect(structuredData(statement)).toBe('[airlock@32473 event_id="statement:7f0c" session="s-1" subject="eve\\"\\]\\\\admin"]');
  });

  it("leaves out SD params it does not know and uses the session's own id for session events", () => {
    const e: SiemEvent = { id: "session.start:s-2", type: "session.start", time: statement.time, data: { id: "s-2" } };
    expect(structuredData(e)).toBe('[airlock@32473 event_id="session.start:s-2" session="s-2"]');
  });

  it("builds PRI, version, timestamp, host, app, procid, msgid, SD and an ASCII JSON MSG", () => {
    const m = formatMessage(statement, { hostname: "gw 1\u00e9", procId: "4242" });
    expect(m.startsWith('<110>1 2030-01-02T03:04:05.678Z gw_1_ airlock 4242 statement [airlock@32473 event_id="statement:7f0c"')).toBe(true);
    const msg = m.slice(m.indexOf("] {") + 2);
    expect(/^[\x20-\x7e]*$/.test(msg)).toBe(true);
    expect(JSON.parse(msg)).toEqual(statement.data);
    // Denials are notices (facility 13, severity 5).
    expect(formatMessage({ ...statement, data: { ...statement.data, decision: "deny" } }, { hostname: "h", procId: "1" })).toMatch(/^<109>1 /);
  });

  it("header fields are printable ASCII within their length, NILVALUE when empty", () => {
    expect(headerField("", 32)).toBe("-");
    expect(headerField(null, 32)).toBe("-");
    expect(headerField("a".repeat(40), 32)).toBe("a".repeat(32));
    expect(headerField("tab\there", 32)).toBe("tab_here");
  });

  it("asciiJson is the same JSON, with lone surrogates and astral characters escaped", () => {
    const v = { s: "😀 \ud800 ü \u007f", n: [1, null] };
    const out = asciiJson(v);
    expect(/^[\x20-\x7e]*$/.test(out)).toBe(true);
    expect(JSON.parse(out)).toEqual(v);
  });
});

describe("RFC 6587 octet counting", () => {
  it("counts bytes, not characters, and parses back across chunk boundaries", () => {
    const a = "<110>1 - - airlock - x - ä";
    const b = "<110>1 - - airlock - y - plain";
    const f = frame(a);
    expect(f.toString("utf8")).toBe(`${Buffer.byteLength(a)} ${a}`);
    const all = Buffer.concat([f, frame(b)]);
    const cut = f.length + 3;
    const first = parseFrames(all.subarray(0, cut));
    expect(first.messages).toEqual([a]);
    const second = parseFrames(Buffer.concat([first.rest, all.subarray(cut)]));
    expect(second).toEqual({ messages: [b], rest: Buffer.alloc(0) });
  });

  it("rejects a frame that does not start with a length", () => {
    expect(() => parseFrames(Buffer.from("<13>1 no length here"))).toThrow(/octet count/);
  });
});
