import { AirlockError, type Logger, type RelayResult } from "@airlock/shared";
import { isRole, requireConnection, requireRole, type Principal } from "../auth/principal.js";

/** The principal with granted roles (Airlock roles) and groups (anything else) added. */
function withGrants(p: Principal, roles: string[]): Principal {
  // Only "user" is ever granted as a role: the gateway-wide ones (admin, auditor, reviewer) are refused at request time too.
  return { ...p, roles: [...new Set([...p.roles, ...roles.filter((r) => r === "user")])], groups: [...new Set([...p.groups, ...roles.filter((r) => !isRole(r))])] };
}
import type { ConnectionService } from "../connections/service.js";
import type { SessionRecorder } from "../sessions/recorder.js";
import type { AgentRegistry } from "../tunnel/registry.js";
import type { ClientConn, Engine, SessionContext } from "./engine.js";

export interface RunDeps {
  /** Approved, unexpired access requests of a subject for a connection (JIT grants). */
  grants?: (subject: string, connection: string) => Promise<Array<{ id: string; role: string }>>;
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
export async function runSession(
  deps: RunDeps,
  engineOf: Engine | ((connectionType: string) => Engine),
  client: ClientConn,
  req: SessionRequest,
): Promise<RelayResult & { sessionId?: string }> {
  const { sessions } = deps;
  // The engine may depend on the connection's type (the WebSocket path serves every type).
  let engine = typeof engineOf === "function" ? null : engineOf;
  const base = { subject: req.principal.subject, subjectKind: req.principal.kind, authMethod: req.principal.method, tokenId: req.principal.tokenId, connectionName: req.connectionName, protocol: engine?.protocol ?? "unknown", clientAddr: req.clientAddr };
  let sessionId: string | null = null;
  let result: RelayResult = { bytesUp: 0, bytesDown: 0 };
  let log = deps.log.child({ subject: req.principal.subject, connection: req.connectionName });
  try {
    // Decide everything that needs no target first, so the record is one write.
    let principal = req.principal;
    requireConnection(principal, req.connectionName);
    const connection = await deps.connections.resolve(req.connectionName);
    // The scope is checked on the resolved name too (a connection may be asked for by id).
    requireConnection(principal, connection.name);
    // Approved access requests add their role (an Airlock role, or a group policies see) for this connection only.
    const grants = deps.grants ? await deps.grants(principal.subject, connection.name) : [];
    if (grants.length) principal = withGrants(principal, grants.map((g) => g.role));
    requireRole(principal, "user");
    if (!engine) engine = (engineOf as (t: string) => Engine)(connection.type);
    base.protocol = engine.protocol;
    const link = deps.registry.pick({ agentId: connection.agentId, group: connection.agentGroup });
    if (!link) {
      const who = connection.agent ? `agent ${connection.agent}` : `agent group ${connection.agentGroup}`;
      throw new AirlockError("AGENT_UNAVAILABLE", `no agent is online for connection ${connection.name} (${who})`);
    }
    // The record is written before the stream opens: no record, no session.
    sessionId = await sessions.start({ ...base, connectionId: connection.id, agentId: link.identity!.agentId, groups: principal.groups, recordMode: connection.recordMode });
    log = log.child({ session: sessionId });
    const ctx: SessionContext = { sessionId, principal, connection, clientAddr: req.clientAddr, agentId: link.identity!.agentId, log };
    if ((await engine.initialize?.(client, ctx)) === "done") {
      await sessions.finish(sessionId, { ...result, outcome: "ok" });
      return { ...result, sessionId };
    }
    await engine.checkAccess?.(ctx);
    const upstream = await link.open({
      host: connection.host,
      port: connection.port,
      // Engines that speak TLS inside their protocol (Postgres' SSLRequest) do it themselves.
      tls: connection.tls.enabled && !engine.handlesTargetTls ? connection.tls : undefined,
      sessionId,
      connectionName: connection.name,
      connectTimeoutMs: deps.connectTimeoutMs,
    });
    sessions.track(sessionId, {
      tokenId: req.principal.tokenId,
      subject: req.principal.subject,
      grants: grants.map((g) => g.id),
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
  const outcome = !e ? "ok" : DENIED.has(e.code) ? "denied" : "failed";
  if (!sessionId) {
    // Refused before it started: still one record of the attempt, unless the store itself failed.
    if (e?.code === "STORE_UNAVAILABLE") return result;
    sessionId = await sessions.start({ ...base, connectionId: null, agentId: null, groups: req.principal.groups }).catch(() => null);
    if (!sessionId) return result;
  }
  await sessions.finish(sessionId, { ...result, outcome, error: e });
  log.info({ up: result.bytesUp, down: result.bytesDown, code: e?.code, err: e?.message }, "session ended");
  return { ...result, sessionId };
}
