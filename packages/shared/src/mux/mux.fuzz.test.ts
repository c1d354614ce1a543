// Bounded fuzzing of the link's receive path: random bytes through the real
// protobuf decoder, and random (well-typed but hostile) frame sequences into
// the multiplexer. Nothing may throw out of `receive`; every violation must
// end as a `fatal` link error with a stable code, and no stream may be left
// half-alive after the link died.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AgentFrameSchema, create, decodeAgentFrame, encodeAgentFrame } from "@airlock/proto";
import { AirlockError } from "../errors.js";
import type { CommonFrame } from "./frames.js";
import { Mux } from "./mux.js";

/** Small deterministic PRNG so a failure can be replayed from its seed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomFrame(r: () => number): CommonFrame {
  const streamId = Math.floor(r() * 6); // 0..5: includes never-opened and id 0
  switch (Math.floor(r() * 7)) {
    case 0:
      return { case: "data", value: { $typeName: "airlock.tunnel.v1.Data", streamId, payload: new Uint8Array(Math.floor(r() * 3000)) } };
    case 1:
      return { case: "windowUpdate", value: { $typeName: "airlock.tunnel.v1.WindowUpdate", streamId, increment: Math.floor(r() * 2 ** 32) >>> Math.floor(r() * 32) } };
    case 2:
      return { case: "halfClose", value: { $typeName: "airlock.tunnel.v1.HalfClose", streamId } };
    case 3:
      return { case: "close", value: { $typeName: "airlock.tunnel.v1.Close", streamId, errorCode: r() < 0.5 ? "" : "NOT_A_CODE", errorMessage: "x" } };
    case 4:
      return { case: "ping", value: { $typeName: "airlock.tunnel.v1.Ping", nonce: BigInt(Math.floor(r() * 1e9)) } };
    case 5:
      return { case: "pong", value: { $typeName: "airlock.tunnel.v1.Pong", nonce: 1n } };
    default:
      return { case: "error", value: { $typeName: "airlock.tunnel.v1.LinkError", code: "X", message: "y" } };
  }
}

describe("link receive path fuzzing", () => {
  it("random bytes either decode to a frame or throw a decode error, and never hang", () => {
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(1 + (i % 200));
      try {
        decodeAgentFrame(bytes);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
        rejected++;
      }
    }
    expect(decoded + rejected).toBe(20_000);
    expect(rejected).toBeGreaterThan(0);
  });

  it("every truncation of a valid frame is handled by the decoder", () => {
    const full = encodeAgentFrame(
      create(AgentFrameSchema, { frame: { case: "hello", value: { protocolVersion: 1, agentVersion: "1.2.3", hostname: "h", credential: { case: "agentKey", value: "alk_ak_x" } } } }),
    );
    for (let cut = 0; cut < full.length; cut++) {
      try {
        const f = decodeAgentFrame(full.subarray(0, cut));
        expect(f.$typeName).toBe("airlock.tunnel.v1.AgentFrame");
      } catch (err) {
        expect((err as Error).message).toMatch(/premature|invalid|cannot|out of range|EOF|wire type|illegal|too/i);
      }
    }
  });

  it("hostile frame sequences end in a fatal link error or leave a consistent mux", () => {
    const codes = new Set<string>();
    for (let seed = 1; seed <= 400; seed++) {
      const r = prng(seed);
      const sent: CommonFrame[] = [];
      const mux = new Mux((f) => (sent.push(f), true), { initialWindow: 4096, keepaliveIntervalMs: 0 });
      let fatal: AirlockError | null = null;
      mux.on("fatal", (e) => (fatal = e));
      const streams = [mux.acceptStream(1), mux.acceptStream(2), mux.acceptStream(3)];
      for (const s of streams) s?.on("error", () => {});
      for (let i = 0; i < 60 && !fatal; i++) {
        expect(() => mux.receive(randomFrame(r))).not.toThrow();
      }
      if (fatal) {
        codes.add((fatal as AirlockError).code);
        expect(mux.size).toBe(0);
        expect(streams.every((s) => s!.destroyed)).toBe(true);
      } else {
        expect(mux.size).toBeLessThanOrEqual(3);
      }
    }
    // The fuzzer reached the interesting failures, not just one of them.
    expect([...codes].sort()).toEqual(expect.arrayContaining(["FLOW_CONTROL_VIOLATION", "LINK_LOST", "LINK_PROTOCOL_ERROR"]));
  });
});
