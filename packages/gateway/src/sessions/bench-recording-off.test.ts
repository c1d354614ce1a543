// The benchmark-only switch that turns statement recording off: never on unless
// set to exactly "off", loud when it is, and refusing anything else.
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { BENCH_RECORDING_ENV, benchStatementSink } from "./bench-recording-off.js";
import type { StatementSink } from "../engines/postgres/session/state.js";

const real: StatementSink = { record: async () => ["real"], complete: () => undefined };

function capture() {
  const lines: string[] = [];
  return { log: pino({ level: "info" }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) })), lines };
}

describe("benchStatementSink", () => {
  it("keeps the real statement log unless the variable says off", () => {
    const { log, lines } = capture();
    for (const env of [{}, { [BENCH_RECORDING_ENV]: "" }, { [BENCH_RECORDING_ENV]: "on" }]) expect(benchStatementSink(real, log, env)).toBe(real);
    expect(lines).toEqual([]);
  });

  it("with off, records nothing, hands out ids, and logs an error saying so", async () => {
    const { log, lines } = capture();
    const sink = benchStatementSink(real, log, { [BENCH_RECORDING_ENV]: "off" });
    expect(sink).not.toBe(real);
    const ids = await sink.record([{ sessionId: "s", seq: 1, text: "SELECT 1", kind: "select", objects: [], decision: "allow" }, { sessionId: "s", seq: 2, text: "SELECT 2", kind: "select", objects: [], decision: "allow" }]);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 50, msg: expect.stringContaining("NOT recorded") });
  });

  it("refuses any other value instead of guessing", () => {
    expect(() => benchStatementSink(real, capture().log, { [BENCH_RECORDING_ENV]: "false" })).toThrow(/must be "off"/);
  });
});
