import { AirlockError, type Logger, type RelayResult } from "@airlock/shared";
import { requireRole, type Principal } from "../auth/principal.js";
import type { ConnectionService } from "../connections/service.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import type { AgentRegistry } from "../tunnel/registry.js";
import type { ClientConn, Engine, SessionContext } from "./engine.js";

export interface RunDeps {
  connections: ConnectionService;
  sessions: SessionRecorder;
  registry: AgentRegistry;
  log: Logger;
  connectTimeoutMs?: number;
}

export interface SessionRequest {
  principal: Principal;
  connectionName: string;
  clientAddr: string | null;
}

const DENIED = new Set(["PERMISSION_DENIED", "UNAUTHENTICATED", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_REVOKED", "NOT_FOUND"]);

/**
 * Runs one client session through an engine. The cross-cutting parts live
 * here, once for every protocol: the session record (written before any byte
 * flows; no record, no session), authorization, agent selection, dialling
 * through the tunnel, revocation hooks and the final outcome.
 */
export async function runSession(deps: RunDeps, engine: Engine, client: ClientConn, req: SessionRequest): Promise<RelayResult & { sessionId?: string }> {
  const { sessions } = deps;
  let sessionId: string;
  try {
    sessionId = await sessions.start({
      subject: req.principal.subject,
      tokenId: req.principal.tokenId,
      connectionId: null,
      connectionName: req.connectionName,
      protocol: engine.protocol,
      clientAddr: req.clientAddr,
    });
  } catch (err) {
    const e = AirlockError.from(err, "STORE_UNAVAILABLE");
    client.sendError(e);
    return { bytesUp: 0, bytesDown: 0, error: e };
  }
  const log = deps.log.child({ session: sessionId, subject: req.principal.subject, connection: req.connectionName });
  let result: RelayResult = { bytesUp: 0, bytesDown: 0 };
  try {
    requireRole(req.principal, "user");
    const connection = await deps.connections.resolve(req.connectionName);
    await deps.sessions.update(sessionId, { connectionId: connection.id });
    const ctx: SessionContext = { sessionId, principal: req.principal, connection, clientAddr: req.clientAddr, log };
    await engine.initialize?.(client, ctx);
    await engine.checkAccess?.(ctx);
    const link = deps.registry.pick({ agentId: connection.agentId, group: connection.agentGroup });
    if (!link) {
      const who = connection.agent ? `agent ${connection.agent}` : `agent group ${connection.agentGroup}`;
      throw new AirlockError("AGENT_UNAVAILABLE", `no agent is online for connection ${connection.name} (${who})`);
    }
    await deps.sessions.update(sessionId, { agentId: link.identity!.agentId });
    const upstream = await link.open({
      host: connection.host,
      port: connection.port,
      tls: connection.tls.enabled ? connection.tls : undefined,
      sessionId,
      connectionName: connection.name,
      connectTimeoutMs: deps.connectTimeoutMs,
    });
    sessions.track(sessionId, {
      tokenId: req.principal.tokenId,
      abort: (err) => {
        client.sendError(err);
        upstream.destroy(err);
      },
    });
    log.info({ agent: link.identity!.agentName }, "session started");
    result = await engine.handle(client, upstream, ctx);
    if (result.error) client.sendError(result.error);
  } catch (err) {
    result = { ...result, error: AirlockError.from(err) };
    client.sendError(result.error!);
  }
  const e = result.error;
  await sessions.finish(sessionId, { ...result, outcome: !e ? "ok" : DENIED.has(e.code) ? "denied" : "failed", error: e });
  log.info({ up: result.bytesUp, down: result.bytesDown, code: e?.code, err: e?.message }, "session ended");
  return { ...result, sessionId };
}
