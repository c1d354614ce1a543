import type { Command } from "commander";
import { registerReplay } from "./replay.js";
import { addAuditFilters, auditFilterParams, nextPageHint, type AuditFilterOptions } from "./audit-export.js";
import { onShutdown } from "@airlock/shared";
import { ApiClient } from "../client.js";
import { apiFor, globals, print } from "../context.js";
import { ago, oneLine, table } from "../output.js";
import { resolveTarget } from "../profile.js";
import { listenAndForward } from "../tunnel-client.js";

type Session = {
  id: string;
  subject: string;
  connectionName: string;
  protocol: string;
  agent: string | null;
  clientAddr: string | null;
  startedAt: string;
  endedAt: string | null;
  bytesUp: number;
  bytesDown: number;
  outcome: string;
  errorCode: string | null;
  error: string | null;
};

/** One recorded SQL statement, as GET /api/v1/sessions/:id returns it. */
export type StatementView = {
  id: string;
  seq: number;
  text: string;
  kind: string;
  command: string | null;
  objects: string[];
  decision: string;
  rule: string | null;
  reason: string | null;
  status: string;
  startedAt: string;
  durationMs: number | null;
  rows: string | null;
  commandTag: string | null;
  masked: number;
  errorCode: string | null;
  error: string | null;
};

type SessionDetail = Session & {
  statements?: StatementView[];
  statementsTruncated?: boolean;
  statementCounts?: { total: number; denied: number };
};

/** Text budget when stdout is not a terminal (or a very narrow one). */
const DEFAULT_TEXT_WIDTH = 120;

/**
 * The statements table of `sessions show`: seq, time (UTC, like the session's
 * timestamps), decision (DENY in capitals, to stand out), status, kind, rows,
 * duration, the deciding rule of a denied statement, and the text on one line,
 * cut to fit `width` columns. With `full`, each row is followed by the whole
 * text, verbatim and indented, instead.
 */
export function statementsTable(statements: StatementView[], opts: { full?: boolean; width?: number } = {}): string {
  const cols = ["seq", "time", "decision", "status", "kind", "rows", "ms", "rule"];
  const rows = statements.map((s) => ({
    seq: String(s.seq),
    time: s.startedAt.slice(11, 23), // HH:MM:SS.mmm of the ISO timestamp
    decision: s.decision === "deny" ? "DENY" : s.decision,
    status: s.status,
    kind: s.kind,
    rows: s.rows ?? "-",
    ms: s.durationMs === null ? "-" : s.durationMs.toFixed(s.durationMs < 10 ? 2 : 0),
    rule: s.decision === "deny" ? (s.rule ?? "-") : "",
  }));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c as keyof typeof r].length)));
  const line = (cells: string[]) => cells.map((v, i) => v.padEnd(widths[i]!)).join("  ");
  const used = widths.reduce((a, w) => a + w + 2, 0);
  const textWidth = opts.width && opts.width - used >= 20 ? opts.width - used : DEFAULT_TEXT_WIDTH;
  const out = [`${line(cols.map((c) => c.toUpperCase()))}  STATEMENT`.trimEnd()];
  statements.forEach((s, i) => {
    const cells = line(cols.map((c) => rows[i]![c as keyof (typeof rows)[number]]));
    if (opts.full) out.push(cells.trimEnd(), ...s.text.split("\n").map((l) => `    ${l}`));
    else out.push(`${cells}  ${oneLine(s.text, textWidth)}`.trimEnd());
  });
  return out.join("\n") + "\n";
}

export function registerUser(program: Command): void {
  program
    .command("connect <connection>")
    .description("open a local port that tunnels to a connection through the gateway")
    .option("-p, --port <port>", "local port (0 picks one)", "0")
    .option("--host <host>", "local address to listen on", "127.0.0.1")
    .action(async (connection: string, o: { port: string; host: string }, cmd: Command) => {
      const t = await resolveTarget(globals(cmd));
      if (!t.gateway || !t.token) throw new Error("no gateway or token: pass --gateway/--token, set AIRLOCK_URL/AIRLOCK_TOKEN or run `airlock login`");
      // Fail fast on a bad token or unknown connection instead of at the first client.
      await new ApiClient(t.gateway, t.token).get(`/api/v1/connections/${encodeURIComponent(connection)}`);
      const server = await listenAndForward({ gateway: t.gateway, token: t.token, connection, host: o.host, port: Number(o.port) }, (m) =>
        process.stderr.write(`${m}\n`),
      );
      const addr = server.address() as import("node:net").AddressInfo;
      process.stdout.write(`Listening on ${o.host}:${addr.port} for ${connection}; press Ctrl-C to stop.\n`);
      // On Ctrl-C stop listening, give closing sessions a moment to finish
      // cleanly (so they are recorded as ended, not cut), then exit.
      await new Promise<void>((resolve) => onShutdown(() => resolve()));
      server.close();
      await server.settled(2_000);
      process.exit(0);
    });

  const sessions = program.command("sessions").description("inspect recorded sessions");
  registerReplay(sessions);
  addAuditFilters(
    sessions
      .command("list")
      .description("sessions you may see, newest first; --search and --decision pick sessions by their statements")
      .option("--limit <n>", "how many", "50")
      .option("--cursor <cursor>", "the next page of an earlier listing (same filters)"),
  ).action(async (o: AuditFilterOptions & { limit: string; cursor?: string }, cmd: Command) => {
    const q = auditFilterParams(o);
    q.set("limit", o.limit);
    if (o.cursor) q.set("cursor", o.cursor);
    const r = await (await apiFor(cmd)).get<{ sessions: Session[]; nextCursor: string | null }>(`/api/v1/sessions?${q}`);
    print(
      cmd,
      r,
      () =>
        table(
          r.sessions.map((s) => ({ ...s, started: ago(s.startedAt), up: s.bytesUp, down: s.bytesDown, connection: s.connectionName, user: s.subject })),
          ["id", "user", "connection", "agent", "started", "outcome", "up", "down"],
        ) + nextPageHint(r.nextCursor),
    );
  });
  sessions
    .command("show <id>")
    .description("a session and its statements (--json prints all of them)")
    .option("--full", "print whole statement texts, not one cut line each")
    .action(async (id: string, o: { full?: boolean }, cmd: Command) => {
      const api = await apiFor(cmd);
      const path = `/api/v1/sessions/${encodeURIComponent(id)}`;
      const s = await api.get<SessionDetail>(path);
      if (globals(cmd).json && s.statements && s.statementsTruncated) {
        // JSON means everything: page through the statements the detail leaves out.
        for (let after = s.statements.at(-1)?.seq ?? 0; ; ) {
          const page = await api.get<{ statements: StatementView[]; nextAfterSeq: number | null }>(`${path}/statements?limit=1000&afterSeq=${after}`);
          s.statements.push(...page.statements);
          if (page.nextAfterSeq === null) break;
          after = page.nextAfterSeq;
        }
        s.statementsTruncated = false;
      }
      print(cmd, s, () => {
        const head = [
          `id:          ${s.id}`,
          `user:        ${s.subject}`,
          `connection:  ${s.connectionName} (${s.protocol})`,
          `agent:       ${s.agent ?? "-"}`,
          `client:      ${s.clientAddr ?? "-"}`,
          `started:     ${s.startedAt}`,
          `ended:       ${s.endedAt ?? "(active)"}`,
          `bytes:       ${s.bytesUp} up, ${s.bytesDown} down`,
          `outcome:     ${s.outcome}${s.errorCode ? ` (${s.errorCode}: ${s.error})` : ""}`,
          "",
        ].join("\n");
        if (!s.statements) return head;
        const counts = s.statementCounts ? `statements:  ${s.statementCounts.total} (${s.statementCounts.denied} denied)\n` : "";
        if (s.statements.length === 0) return head + counts;
        const more = s.statementsTruncated ? `(the first ${s.statements.length}; --json prints all)\n` : "";
        return `${head}${counts}\n${statementsTable(s.statements, { full: o.full, width: process.stdout.isTTY ? process.stdout.columns : undefined })}${more}`;
      });
    });
}
