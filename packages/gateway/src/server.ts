import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import websocket from "@fastify/websocket";
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance } from "fastify";
import { AirlockError, AIRLOCK_VERSION, WS_SUBPROTOCOL, type Logger } from "@airlock/shared";
import { AgentService } from "./agents/service.js";
import { authPlugin } from "./api/auth.js";
import { connectRoutes } from "./api/connect.js";
import { installProblemHandler } from "./api/problem.js";
import { agentRoutes } from "./api/routes-agents.js";
import { connectionRoutes } from "./api/routes-connections.js";
import { metaRoutes } from "./api/routes-meta.js";
import { sessionRoutes } from "./api/routes-sessions.js";
import { auditSearchRoutes } from "./api/routes-audit-search.js";
import { auditExportRoutes } from "./api/routes-audit-export.js";
import { policyRoutes } from "./api/routes-policies.js";
import { tokenRoutes } from "./api/routes-tokens.js";
import { authRoutes } from "./api/routes-auth.js";
import { identityRoutes } from "./api/routes-identity.js";
import { AuthEventLog } from "./identity/events.js";
import { LoginService } from "./identity/logins.js";
import { OidcClient } from "./identity/oidc/client.js";
import { ServiceAccountService } from "./identity/service-accounts.js";
import { UserService } from "./identity/users.js";
import { IdentityService } from "./identity/verify.js";
import { startRevocationSweep } from "./sessions/sweep.js";
import { reviewRoutes } from "./api/routes-reviews.js";
import { execRoutes } from "./api/routes-exec.js";
import { reviewCallbackRoutes } from "./api/routes-review-callback.js";
import { rolesForGroups } from "./identity/roles.js";
import { ReviewService } from "./reviews/service.js";
import { ReviewNotifier } from "./reviews/notify/index.js";
import { reviewSummary } from "./reviews/view.js";
import { AccessTokenService } from "./auth/access-tokens.js";
import type { GatewayConfig } from "./config.js";
import { ConnectionService, type ConnectionView } from "./connections/service.js";
import { loadOrCreateGatewayTls, loadOrCreateKeyring } from "./crypto/index.js";
import { SessionRecorder } from "./sessions/recorder.js";
import { Recordings } from "./recordings/service.js";
import { RecordingRetention } from "./recordings/retention.js";
import { recordingRoutes } from "./api/routes-recordings.js";
import { AuditChains } from "./audit/chains.js";
import { AuditKeys } from "./audit/keys.js";
import { SiemForwarding } from "./audit/siem/index.js";
import { auditSinkRoutes } from "./api/routes-audit-sinks.js";
import { auditRoutes } from "./api/routes-audit.js";
import { StatementLog } from "./sessions/statements.js";
import { benchStatementSink } from "./sessions/bench-recording-off.js";
import { PolicyService } from "./policy/service.js";
import { initAnalyzer } from "./engines/postgres/analysis/analyzer.js";
import { CancelRegistry } from "./engines/postgres/cancel.js";
import { PostgresFrontDoor } from "./engines/postgres/frontdoor.js";
import { createSecureContext } from "node:tls";
import { openStore, type Store } from "./store/index.js";
import { AgentRegistry, TunnelServer } from "./tunnel/index.js";

export interface Gateway {
  config: GatewayConfig;
  apiUrl: string;
  agentAddress: string;
  /** CA certificate agents must trust (null when the tunnel is plaintext). */
  caPem: string | null;
  caPin: string | null;
  /** Port of the Postgres front door (null when disabled). */
  postgresPort: number | null;
  policies: PolicyService;
  statements: StatementLog;
  /** Set only on the first start of a fresh store: also written to dataDir/admin-token. */
  bootstrapToken: string | null;
  store: Store;
  registry: AgentRegistry;
  agents: AgentService;
  connections: ConnectionService;
  tokens: AccessTokenService;
  identity: IdentityService;
  logins: LoginService;
  serviceAccounts: ServiceAccountService;
  users: UserService;
  reviews: ReviewService;
  authEvents: AuthEventLog;
  sessions: SessionRecorder;
  auditKeys: AuditKeys;
  chains: AuditChains;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pino logger, TypeBox provider
  app: FastifyInstance<any, any, any, any, any>;
  stop(): Promise<void>;
}

const fmtHost = (h: string) => (h.includes(":") ? `[${h}]` : h);
const reachable = (h: string) => (h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h);

/** Starts the whole gateway: store, tunnel port, REST API and front doors. */
export async function startGateway(config: GatewayConfig, logger: Logger): Promise<Gateway> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const keyring = await loadOrCreateKeyring({ dataDir: config.dataDir, masterKey: config.masterKey });
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, recordSyncCommit: config.recordSyncCommit });
  const cleanup: Array<() => Promise<unknown>> = [() => store.close()];
  try {
    // The same certificate serves the agent port and the Postgres front door's SSLRequest.
    const gatewayTls = await loadOrCreateGatewayTls({ dataDir: config.dataDir, extraNames: config.agents.tlsNames, certFile: config.agents.certFile, keyFile: config.agents.keyFile });
    const tls = config.agents.insecure ? null : gatewayTls;

    const registry = new AgentRegistry();
    const agents = new AgentService(store, registry, logger.child({ component: "agents" }), config.tokens.enrollmentTtlSeconds);
    const connections = new ConnectionService(store, keyring);
    const tokens = new AccessTokenService(store, { ...config.tokens, apiKeys: config.identity.apiKeys });
    const auditKeys = new AuditKeys(store, keyring, logger.child({ component: "audit" }));
    // Fail closed: without a signing key nothing could be sealed, so the gateway does not start.
    await auditKeys.current();
    const chains = new AuditChains(store, auditKeys, logger.child({ component: "audit" }), { checkpointIntervalMs: config.audit.checkpointSeconds * 1000 });
    // Before any session can start: the sink rows decide which events the triggers queue.
    const siem = await SiemForwarding.start({
      sinks: config.audit.sinks,
      delivery: config.audit.delivery,
      sql: (text, params) => store.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(text, ...params),
      log: logger.child({ component: "siem" }),
    });
    cleanup.unshift(() => siem.stop());
    const sessions = new SessionRecorder(store, logger.child({ component: "sessions" }), chains);
    // Byte recordings of stream sessions and their retention (docs/recordings.md).
    const recordings = new Recordings({ store, chains, config: config.audit.recordings, dataDir: config.dataDir, log: logger.child({ component: "recordings" }) });
    const retention = new RecordingRetention({ store, recordings, keys: auditKeys, rules: config.audit.retention, log: logger.child({ component: "recordings" }) });
    const stopRetention = retention.start(config.audit.retentionSweepSeconds * 1000);
    cleanup.unshift(async () => stopRetention());
    const authEvents = new AuthEventLog(store, logger.child({ component: "identity" }));
    cleanup.unshift(() => authEvents.flush());
    const users = new UserService(store, tokens);
    const serviceAccounts = new ServiceAccountService(store, tokens, config.tokens);
    const identity = new IdentityService({ tokens, serviceAccounts, events: authEvents, config: config.identity, log: logger.child({ component: "identity" }) });
    // Known once the API listens (port 0 in tests); sign-in needs it for redirect URIs.
    let publicUrl = config.api.publicUrl ?? "";
    const oidcClients = new Map(config.identity.oidc.map((p) => [p.name, new OidcClient(p, () => `${publicUrl}/api/v1/auth/oidc/callback`)]));
    const logins = new LoginService({
      store,
      keyring,
      tokens,
      users,
      events: authEvents,
      config: config.identity,
      defaultTtlSeconds: config.tokens.defaultTtlSeconds,
      oidc: oidcClients,
      saml: config.identity.saml,
      publicUrl: () => publicUrl,
      log: logger.child({ component: "identity" }),
    });
    const notifier = config.reviews.webhooks.length ? new ReviewNotifier(config.reviews.webhooks, { log: logger.child({ component: "reviews" }) }) : null;
    if (notifier) cleanup.unshift(() => notifier.flush());
    const reviews = new ReviewService(store, logger.child({ component: "reviews" }), notifier && {
      notify: (type, r) => notifier.notify(type, reviewSummary(r, publicUrl)),
    });
    if (config.databaseUrl) await reviews.listen(config.databaseUrl);
    cleanup.unshift(() => reviews.close());
    // Pending reviews expire on their own: waiters are woken and notifications go out.
    const expiry = setInterval(() => void reviews.expireDue().catch((err: Error) => logger.warn({ err: err.message }, "review expiry failed")), 1_000);
    expiry.unref();
    cleanup.unshift(async () => clearInterval(expiry));
    const stopSweep = startRevocationSweep({ tokens, sessions, store, endedGrants: (ids) => reviews.endedGrants(ids), intervalMs: 2_000, log: logger.child({ component: "sessions" }) });
    cleanup.unshift(async () => stopSweep());
    const statements = new StatementLog(store, logger.child({ component: "statements" }), { sql: store.sql, chains });
    // Unshifted first, run last: checkpoints once every statement write is done.
    cleanup.unshift(() => chains.close());
    cleanup.unshift(() => statements.close());
    const [policies] = await Promise.all([
      PolicyService.start({ store, dir: config.policy.dir, pollMs: config.policy.pollMs, log: logger.child({ component: "policy" }) }),
      initAnalyzer(),
    ]);
    cleanup.unshift(() => policies.close());
    if (store.kind === "pglite") {
      // The embedded store serves one process: anything still open was cut by a crash.
      const n = await sessions.closeOrphans();
      if (n) logger.warn({ sessions: n }, "closed sessions left open by an earlier run");
    }

    const bootstrapToken = await tokens.bootstrapAdmin(config.tokens.maxTtlSeconds);
    if (bootstrapToken) {
      const file = join(config.dataDir, "admin-token");
      await writeFile(file, `${bootstrapToken}\n`, { mode: 0o600 });
      logger.info({ file }, "fresh store: wrote a bootstrap admin token");
    }

    const tunnel = new TunnelServer({
      listen: `${fmtHost(config.agents.host)}:${config.agents.port}`,
      tls: tls ? { certPem: tls.certPem + tls.caPem, keyPem: tls.keyPem } : null,
      authenticate: (hello, peer) => agents.authenticate(hello, peer),
      registry,
      logger: logger.child({ component: "tunnel" }),
      mux: config.tunnel,
    });
    const agentPort = await tunnel.start();
    cleanup.unshift(() => tunnel.stop());
    const agentAddress = config.agents.publicAddress ?? `${fmtHost(reachable(config.agents.host))}:${agentPort}`;

    let ready = false;
    const app = Fastify({ loggerInstance: logger.child({ component: "api" }), disableRequestLogging: true, bodyLimit: 1024 * 1024, ajv: { customOptions: { removeAdditional: false } } }).withTypeProvider<TypeBoxTypeProvider>();
    cleanup.unshift(() => app.close());
    installProblemHandler(app);
    await app.register(swagger, {
      openapi: {
        openapi: "3.1.0",
        info: { title: "Airlock gateway API", version: AIRLOCK_VERSION },
        components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
        security: [{ bearer: [] }],
      },
    });
    await app.register(websocket, {
      options: {
        maxPayload: 1024 * 1024,
        handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
      },
    });
    await app.register(authPlugin, { identity });
    await app.register(metaRoutes, {
      caPem: tls?.caPem ?? null,
      ready: () => ready,
      postgres: () => (postgresPort ? { host: config.postgres.publicHost ?? new URL(publicUrl || "http://127.0.0.1").hostname, port: postgresPort, caPem: gatewayTls.caPem } : null),
    });
    app.get("/openapi.json", { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
    const runDeps = { connections, sessions, registry, grants: (subject: string, connection: string) => reviews.activeGrants(subject, connection), log: logger.child({ component: "sessions" }) };
    // Extra streams to a session's target through the agent that serves it: cancel requests, catalog lookups.
    const dialTarget = async (t: { connection: ConnectionView; agentId: string | null }, sessionId: string) => {
      const link = registry.pick({ agentId: t.agentId, group: t.connection.agentGroup });
      if (!link) throw new AirlockError("AGENT_UNAVAILABLE", `no agent is online for connection ${t.connection.name}`);
      return link.open({ host: t.connection.host, port: t.connection.port, sessionId, connectionName: t.connection.name });
    };
    const cancels = new CancelRegistry(dialTarget, logger.child({ component: "postgres" }));
    // benchStatementSink: the real log unless the benchmark-only AIRLOCK_BENCH_RECORD_STATEMENTS=off is set (logs an error).
    const postgresDeps = { policy: policies, statements: benchStatementSink(statements, logger.child({ component: "statements" })), cancels, dial: dialTarget, reviews };
    await app.register(
      async (v1) => {
        await v1.register(agentRoutes, { agents, agentEndpoint: () => ({ address: agentAddress, caPin: tls?.caFingerprint ?? null }) });
        await v1.register(connectionRoutes, { connections });
        await v1.register(tokenRoutes, { tokens, sessions, events: authEvents, serviceAccounts });
        await v1.register(authRoutes, { logins, events: authEvents, serviceAccounts, sessions });
        await v1.register(reviewRoutes, { reviews, sessions, connections, access: config.reviews.access });
        await v1.register(execRoutes, { frontDoor: () => (postgresPort ? { host: reachable(config.postgres.host), port: postgresPort, caPem: gatewayTls.caPem } : null) });
        await v1.register(reviewCallbackRoutes, { reviews, store, secrets: config.reviews.callbackSecrets, rolesFor: (groups) => rolesForGroups(config.identity, groups) });
        await v1.register(identityRoutes, { tokens, users, serviceAccounts, events: authEvents, identity, sessions });
        await v1.register(sessionRoutes, { sessions, statements, store });
        await v1.register(auditSearchRoutes, { store });
        await v1.register(auditExportRoutes, { store });
        await v1.register(recordingRoutes, { store, sessions, recordings });
        await v1.register(auditSinkRoutes, { siem });
        await v1.register(policyRoutes, { policies });
        await v1.register(auditRoutes, { store, keys: auditKeys, sessions });
        await v1.register(connectRoutes, { deps: runDeps, postgres: postgresDeps, clientStallTimeoutMs: config.connect.clientStallTimeoutMs, recordings });
      },
      { prefix: "/api/v1" },
    );
    let postgresPort: number | null = null;
    if (config.postgres.enabled) {
      const frontDoor = new PostgresFrontDoor({
        host: config.postgres.host,
        port: config.postgres.port,
        tls: createSecureContext({ cert: gatewayTls.certPem + gatewayTls.caPem, key: gatewayTls.keyPem }),
        allowPlaintext: config.postgres.allowPlaintext,
        identity,
        run: runDeps,
        engine: postgresDeps,
        cancels,
        log: logger.child({ component: "postgres" }),
      });
      postgresPort = await frontDoor.start();
      cleanup.unshift(() => frontDoor.stop());
    }
    await app.listen({ host: config.api.host, port: config.api.port });
    const addr = app.server.address();
    const apiPort = typeof addr === "object" && addr ? addr.port : config.api.port;
    const apiUrl = config.api.publicUrl ?? `http://${fmtHost(reachable(config.api.host))}:${apiPort}`;
    publicUrl = apiUrl.replace(/\/$/, "");
    ready = true;
    logger.info({ api: apiUrl, agents: agentAddress, postgres: postgresPort, store: store.kind, version: AIRLOCK_VERSION }, "gateway ready");

    return {
      config,
      apiUrl,
      agentAddress,
      caPem: tls?.caPem ?? null,
      caPin: tls?.caFingerprint ?? null,
      bootstrapToken,
      postgresPort,
      policies,
      statements,
      store,
      registry,
      agents,
      connections,
      tokens,
      identity,
      logins,
      serviceAccounts,
      users,
      reviews,
      authEvents,
      sessions,
      auditKeys,
      chains,
      app,
      async stop() {
        ready = false;
        for (const fn of cleanup) await fn().catch((err: Error) => logger.warn({ err: err.message }, "shutdown step failed"));
      },
    };
  } catch (err) {
    for (const fn of cleanup) await fn().catch(() => {});
    throw AirlockError.from(err, "CONFIG_INVALID");
  }
}
