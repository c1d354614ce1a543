import type { AgentFrame, GatewayFrame } from "@airlock/proto";

/** Frame kinds both ends of a link exchange once the link is up. */
export type CommonCase = "data" | "halfClose" | "close" | "windowUpdate" | "ping" | "pong" | "error";

/**
 * The oneof value of a frame the multiplexer itself sends or handles. Both
 * AgentFrame and GatewayFrame use the same message types for these cases, so
 * one union serves both directions.
 */
export type CommonFrame = Extract<AgentFrame["frame"], { case: CommonCase }> &
  Extract<GatewayFrame["frame"], { case: CommonCase }>;

export function isCommonCase(c: string | undefined): c is CommonCase {
  return c === "data" || c === "halfClose" || c === "close" || c === "windowUpdate" || c === "ping" || c === "pong" || c === "error";
}

export interface MuxOptions {
  /** Receive window this side grants each stream (bytes). */
  initialWindow: number;
  /** Largest Data payload this side sends. */
  maxFrame: number;
  /** Data bytes we may hand the transport beyond its own buffer before waiting for a drain. */
  linkBuffer: number;
  /** Send a Ping this often (ms); 0 disables keepalive. */
  keepaliveIntervalMs: number;
  /** Declare the link dead when nothing was received for this long (ms). */
  keepaliveTimeoutMs: number;
}

export const DEFAULT_MUX_OPTIONS: MuxOptions = {
  initialWindow: 4 << 20,
  maxFrame: 256 * 1024,
  linkBuffer: 4 * 1024 * 1024,
  keepaliveIntervalMs: 1_000,
  keepaliveTimeoutMs: 5_000,
};

/** Upper bound on any window a peer may announce; larger is a protocol error. */
export const MAX_WINDOW = 64 * 1024 * 1024;
