// The Postgres engine: the client's startup has been read (front door) or is
// read here (`airlock connect` WebSocket path); the runner has authorised the
// principal and opened a tunnel stream to the target. We log in to the target
// with the stored credentials, introduce the client to the session under a
// gateway-made cancel key, then relay with guardrails, masking and recording.
import type { Duplex } from "node:stream";
import { AirlockError, type RelayResult } from "@airlock/shared";
import { connectTarget, type TargetTlsOptions } from "./backend/index.js";
import type { CancelRegistry } from "./cancel.js";
import { CatalogCache } from "./catalog.js";
import { readClientStartup } from "./client-startup.js";
import type { ClientConn, Engine, SessionContext } from "../engine.js";
import { policyPrincipal, type GuardScope } from "./guard.js";
import { PgFatal } from "./errors.js";
import { writeBackend, type FrontendReader, type StartupMessage } from "./protocol/index.js";
import { runRelay } from "./session/relay.js";
import { SessionState, type PolicySource, type StatementSink } from "./session/state.js";
import type { ReviewService } from "../../reviews/service.js";

export interface PostgresEngineDeps {
  policy: PolicySource;
  statements: StatementSink;
  cancels: CancelRegistry;
  /** Opens another tunnel stream to the session's target (catalog lookups for masking). */
  dial?: (t: { connection: SessionContext["connection"]; agentId: string | null }, sessionId: string) => Promise<Duplex>;
  /** Holds statements a policy sends to review until a reviewer decides (absent: such statements are refused). */
  reviews?: ReviewService;
}

/** Startup parameters passed on to the target; everything else (notably `options`, which can set any GUC) is dropped. */
const FORWARDED_PARAMS = new Set([
  "application_name", "DateStyle", "TimeZone", "IntervalStyle", "extra_float_digits", "search_path",
  "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "datestyle", "timezone", "intervalstyle",
]);

/**
 * The one thing the gateway reads from the startup `options` (which it never
 * forwards): `-c airlock.review=async` asks for "review required" answers
 * instead of holding.
 */
export function reviewModeOf(options: string | undefined): "hold" | "async" {
  return options && /(?:^|\s)(?:-c\s*|--)airlock\.review=async(?:\s|$)/.test(options) ? "async" : "hold";
}

export interface ClientHello {
  reader: FrontendReader;
  startup: StartupMessage;
  /** The database the target should open (null: the connection's default). */
  database: string | null;
  /** True when the client already received AuthenticationOk (never, today: we send it after the target accepted). */
}

export class PostgresEngine implements Engine {
  readonly protocol = "postgres";
  readonly handlesTargetTls = true;
  private hello: ClientHello | null;

  constructor(
    private readonly deps: PostgresEngineDeps,
    hello: ClientHello | null,
  ) {
    this.hello = hello;
  }

  /** WebSocket path: the client speaks from the first byte (already authenticated by the upgrade). */
  async initialize(client: ClientConn, ctx: SessionContext): Promise<"done" | void> {
    if (this.hello) return;
    // `airlock connect` holds the client's bytes until the session is ready: say so now, since
    // the startup message we need next is among those bytes.
    client.sendReady?.(ctx.sessionId);
    const r = await readClientStartup(client.stream, { tls: null });
    if (r.kind === "cancel") {
      await this.deps.cancels.cancel(r.request);
      client.stream.end();
      return "done";
    }
    const db = r.startup.params.database;
    this.hello = { reader: r.reader, startup: r.startup, database: db && db !== r.startup.params.user ? db : null };
  }

  async checkAccess(ctx: SessionContext): Promise<void> {
    if (ctx.connection.type !== "postgres") {
      throw new AirlockError("INVALID_ARGUMENT", `connection ${ctx.connection.name} is of type ${ctx.connection.type}, not postgres; use \`airlock connect\` for it`);
    }
    const scope = this.scope(ctx);
    const policy = this.deps.policy.current();
    const r = policy.engine.decide({
      principal: policyPrincipal(ctx.principal),
      action: "connect",
      resource: { connection: scope.connection.name, connectionType: scope.connection.type, labels: scope.connection.labels },
      context: ctx.clientAddr ? { clientAddr: ctx.clientAddr } : {},
    });
    if (r.decision !== "allow") {
      const rule = r.policyIds.length ? ` (${r.policyIds.join(", ")})` : "";
      throw new AirlockError("PERMISSION_DENIED", `policy does not allow ${ctx.principal.subject} to connect to ${scope.connection.name}/${scope.database}${rule}: ${[...r.reasons, ...r.errors].join("; ")}`);
    }
  }

  async handle(client: ClientConn, upstream: Duplex, ctx: SessionContext): Promise<RelayResult> {
    const hello = this.hello!;
    const { secrets } = ctx.connection;
    const params: Record<string, string> = { client_encoding: "UTF8" };
    for (const [k, v] of Object.entries(hello.startup.params)) if (FORWARDED_PARAMS.has(k)) params[k] = v;
    const t = ctx.connection.tls;
    const tls: TargetTlsOptions = !t.enabled ? { mode: "disable" } : { mode: t.verify ? "verify-full" : "require", caPem: t.caPem, serverName: t.serverName ?? ctx.connection.host };
    const target = await connectTarget(upstream, {
      user: secrets.username ?? "",
      password: secrets.password ?? "",
      database: this.database(ctx),
      params,
      tls,
    });
    const key = this.deps.cancels.register(ctx.sessionId, { connection: ctx.connection, agentId: ctx.agentId ?? null, key: target.backendKey, tls });
    try {
      const hi: Buffer[] = [writeBackend({ type: "AuthenticationOk" })];
      for (const p of target.parameters) hi.push(writeBackend({ type: "ParameterStatus", name: p.name, value: p.value }));
      for (const n of target.notices) hi.push(writeBackend(n));
      hi.push(writeBackend({ type: "BackendKeyData", processId: key.processId, secretKey: key.secretKey }));
      hi.push(writeBackend({ type: "ReadyForQuery", status: target.status }));
      client.stream.write(Buffer.concat(hi));
      // best_effort connections: a statement the store cannot record still runs (counted, and explained in the chain).
      const sink: StatementSink = ctx.connection.recordMode === "best_effort" ? { record: (rows) => this.deps.statements.record(rows, { bestEffort: true }), complete: (id, end, sid) => this.deps.statements.complete(id, end, sid) } : this.deps.statements;
      const state = new SessionState(this.scope(ctx), this.deps.policy, sink, ctx.sessionId, ctx.log, target.status);
      state.reviews = this.deps.reviews ?? null;
      state.reviewMode = reviewModeOf(this.hello?.startup.params.options);
      const dial = this.deps.dial;
      if (dial) {
        const login = { user: secrets.username ?? "", password: secrets.password ?? "", database: this.database(ctx), params: { client_encoding: "UTF8", application_name: "airlock-catalog" }, tls };
        state.catalog = new CatalogCache(async () => connectTarget(await dial({ connection: ctx.connection, agentId: ctx.agentId ?? null }, ctx.sessionId), login), ctx.log);
      }
      try {
        return await runRelay({ client: client.stream, server: target.socket, clientReader: hello.reader, serverReader: target.reader, state });
      } finally {
        state.catalog?.close();
      }
    } finally {
      this.deps.cancels.unregister(key);
    }
  }

  private database(ctx: SessionContext): string {
    return this.hello?.database ?? ctx.connection.database ?? ctx.connection.secrets.username ?? "postgres";
  }

  private scope(ctx: SessionContext): GuardScope {
    return {
      principal: ctx.principal,
      connection: { name: ctx.connection.name, type: ctx.connection.type, labels: ctx.connection.labels },
      database: this.database(ctx),
      clientAddr: ctx.clientAddr,
    };
  }
}

/** Checks what a client asks for at startup that we do not serve. */
export function validateStartup(startup: StartupMessage): void {
  const p = startup.params;
  if (p.replication !== undefined && p.replication !== "false" && p.replication !== "0") {
    throw new PgFatal("0A000", "replication connections are not supported through Airlock");
  }
  const enc = p.client_encoding;
  if (enc !== undefined && !/^(utf-?8|unicode)$/i.test(enc.replace(/'/g, ""))) {
    throw new PgFatal("0A000", `client_encoding ${enc} is not supported: Airlock inspects statements as UTF8`, "Use client_encoding=UTF8.");
  }
}
