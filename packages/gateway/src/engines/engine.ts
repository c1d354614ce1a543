import type { Duplex } from "node:stream";
import type { AirlockError, Logger, RelayResult } from "@airlock/shared";
import type { Principal } from "../auth/principal.js";
import type { ConnectionView } from "../connections/service.js";

/** What an engine knows about the session it serves. */
export interface SessionContext {
  sessionId: string;
  principal: Principal;
  connection: ConnectionView & { agentId: string | null; secrets: Record<string, string> };
  clientAddr: string | null;
  /** The agent whose tunnel serves this session. */
  agentId?: string;
  log: Logger;
}

/** The client side of a session, in whatever protocol the client speaks. */
export interface ClientConn {
  stream: Duplex;
  /** Tells the client why, in its own protocol, then closes. */
  sendError(err: AirlockError): void;
  /** Tells the client the target is reached (protocols that need it). */
  sendReady?(sessionId: string): void;
}

/**
 * One per protocol (like Teleport's db Engine): the runner handles identity,
 * session records and dialling; the engine only speaks its protocol.
 * initialize → checkAccess → connect (runner dials) → handle (relay).
 */
export interface Engine {
  readonly protocol: string;
  /** True when the engine negotiates TLS to the target itself (inside its protocol). */
  readonly handlesTargetTls?: boolean;
  /** Reads what the protocol needs before access can be decided (startup message, …). */
  initialize?(client: ClientConn, ctx: SessionContext): Promise<void | "done">;
  /** Protocol-specific access checks beyond "may connect"; throws PERMISSION_DENIED. */
  checkAccess?(ctx: SessionContext): Promise<void>;
  /** Relays until both sides are done. */
  handle(client: ClientConn, upstream: Duplex, ctx: SessionContext): Promise<RelayResult>;
}
