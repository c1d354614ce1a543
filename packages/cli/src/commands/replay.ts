// `airlock sessions replay ID`: what happened in a session, in order.
//  - Sessions with statements (the Postgres front door): the timeline, one
//    line per statement: time since the session started, seq, decision,
//    status, duration, rows, masked values and the text on one line (denials
//    name their rule, failures their error). Printed page by page as fetched.
//  - Byte-stream sessions (raw TCP): the recorded bytes written to stdout,
//    paced as recorded divided by --speed (0: at once). --direction picks
//    what is written: down (target→client, default: what the client saw), up
//    (client→target: what was sent) or both (interleaved in recorded order).
//    Missing chunks are reported on stderr; a recording that cannot be read
//    to its end fails the command.
// With --json: NDJSON, one statement (with offsetMs) or one recording line
// (docs/recordings.md) per line, unpaced.
import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { apiFor, globals } from "../context.js";
import { oneLine } from "../output.js";
import { playRecording } from "./replay-bytes.js";
import type { StatementView } from "./user.js";

interface SessionHead {
  id: string;
  subject: string;
  connectionName: string;
  protocol: string;
  startedAt: string;
  endedAt: string | null;
  outcome: string;
  errorCode: string | null;
  statements?: StatementView[];
  statementsTruncated?: boolean;
  statementCounts?: { total: number; denied: number };
}

const COLS: Array<[string, number]> = [["OFFSET", 11], ["SEQ", 6], ["DECISION", 8], ["STATUS", 8], ["MS", 9], ["ROWS", 10], ["MASKED", 6]];

/** One timeline line: fixed-width columns (so pages print as they come), then the statement. */
export function timelineLine(s: StatementView, sessionStart: number, width = 120): string {
  const offset = `+${((Date.parse(s.startedAt) - sessionStart) / 1000).toFixed(3)}s`;
  const ms = s.durationMs === null ? "-" : s.durationMs.toFixed(s.durationMs < 10 ? 2 : 0);
  const cells = [offset, String(s.seq), s.decision === "deny" ? "DENY" : s.decision, s.status, ms, s.rows ?? "-", s.masked ? String(s.masked) : "-"];
  const head = cells.map((c, i) => c.padEnd(COLS[i]![1])).join(" ");
  const why = s.decision === "deny" ? ` [denied by ${s.rule ?? "policy"}]` : s.errorCode ? ` [${s.errorCode}${s.error ? `: ${oneLine(s.error, 60)}` : ""}]` : "";
  return `${head} ${oneLine(s.text, Math.max(20, width - head.length - 1 - why.length))}${why}`;
}

async function* allStatements(api: ApiClient, s: SessionHead): AsyncGenerator<StatementView[]> {
  yield s.statements ?? [];
  if (!s.statementsTruncated) return;
  for (let after = s.statements?.at(-1)?.seq ?? 0; ; ) {
    const page = await api.get<{ statements: StatementView[]; nextAfterSeq: number | null }>(`/api/v1/sessions/${encodeURIComponent(s.id)}/statements?limit=1000&afterSeq=${after}`);
    yield page.statements;
    if (page.nextAfterSeq === null) return;
    after = page.nextAfterSeq;
  }
}

async function printTimeline(api: ApiClient, s: SessionHead, json: boolean): Promise<void> {
  const start = Date.parse(s.startedAt);
  const out = (t: string) => process.stdout.write(t);
  if (!json) {
    out(`session ${s.id}: ${s.subject} on ${s.connectionName} (${s.protocol}), ${s.startedAt} – ${s.endedAt ?? "(active)"}, ${s.outcome}${s.errorCode ? ` (${s.errorCode})` : ""}\n`);
    out(`statements: ${s.statementCounts?.total ?? s.statements?.length ?? 0} (${s.statementCounts?.denied ?? 0} denied)\n\n`);
    out(`${COLS.map(([c, w]) => c.padEnd(w)).join(" ")} STATEMENT\n`);
  }
  const width = process.stdout.isTTY ? process.stdout.columns : 120;
  for await (const page of allStatements(api, s)) {
    for (const st of page) out(json ? `${JSON.stringify({ offsetMs: Date.parse(st.startedAt) - start, ...st })}\n` : `${timelineLine(st, start, width)}\n`);
  }
}

export function registerReplay(sessions: Command): void {
  sessions
    .command("replay <id>")
    .description("a session's timeline (statements), or its recorded bytes replayed to stdout (byte-stream sessions)")
    .option("--speed <n>", "byte streams: 1 = as recorded, 4 = four times faster, 0 = no delays", "1")
    .option("--direction <dir>", "byte streams: down (target→client), up (client→target) or both", "down")
    .action(async (id: string, o: { speed: string; direction: string }, cmd: Command) => {
      const speed = Number(o.speed);
      if (!Number.isFinite(speed) || speed < 0) throw new Error(`--speed must be a number ≥ 0, not ${o.speed}`);
      if (!["up", "down", "both"].includes(o.direction)) throw new Error(`--direction must be up, down or both, not ${o.direction}`);
      const api = await apiFor(cmd);
      const json = Boolean(globals(cmd).json);
      const s = await api.get<SessionHead>(`/api/v1/sessions/${encodeURIComponent(id)}`);
      if (s.protocol === "postgres" || (s.statements?.length ?? 0) > 0) return printTimeline(api, s, json);
      const end = await playRecording({
        api, sessionId: s.id, direction: o.direction as "up" | "down" | "both", speed, out: process.stdout, raw: json,
        note: (m) => process.stderr.write(`airlock: ${m}\n`),
      });
      if (end.gaps) process.exitCode = 1;
    });
}
