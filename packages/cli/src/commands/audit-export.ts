import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Command } from "commander";
import { apiFor, print } from "../context.js";
import { oneLine, parseDuration, table } from "../output.js";

/** The search filters every audit listing takes (GET /sessions, /audit/statements, /audit/export). */
export interface AuditFilterOptions {
  user?: string;
  group?: string;
  connection?: string;
  agent?: string;
  from?: string;
  to?: string;
  outcome?: string;
  decision?: string;
  search?: string;
}

export function addAuditFilters(cmd: Command, opts: { search?: boolean } = {}): Command {
  cmd
    .option("--user <subject>", "whose sessions (auditors and admins; others always see their own)")
    .option("--group <group>", "a group the identity had when the session started")
    .option("--connection <name>")
    .option("--agent <name>")
    .option("--from <time>", "started at or after: ISO 8601 (2024-05-01, 2024-05-01T12:00Z) or an age (30m, 12h, 7d)")
    .option("--to <time>", "started before: ISO 8601 or an age")
    .option("--outcome <outcome>", "active, ok, failed or denied")
    .option("--decision <decision>", "denied, masked or reviewed: a statement was refused, had values masked, or was held for review");
  if (opts.search !== false) cmd.option("-q, --search <text>", 'full text over statements: words, "a phrase", OR, -word');
  return cmd;
}

/** A time flag as ISO 8601: an age like 7d counts back from now. */
export function timeArg(v: string, now = Date.now()): string {
  if (/^\d+[smhd]?$/.test(v.trim())) return new Date(now - parseDuration(v) * 1000).toISOString();
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new Error(`invalid time ${v}: use ISO 8601 (2024-05-01T12:00:00Z) or an age (30m, 12h, 7d)`);
  return d.toISOString();
}

export function auditFilterParams(o: AuditFilterOptions): URLSearchParams {
  const q = new URLSearchParams();
  for (const k of ["user", "group", "connection", "agent", "outcome", "decision"] as const) if (o[k] !== undefined) q.set(k, o[k]);
  if (o.from !== undefined) q.set("from", timeArg(o.from));
  if (o.to !== undefined) q.set("to", timeArg(o.to));
  if (o.search !== undefined) q.set("q", o.search);
  return q;
}

/** The line after a page that has a next one. */
export const nextPageHint = (cursor: string | null): string => (cursor ? `\nmore: repeat with --cursor ${cursor}\n` : "");

type StatementHit = { id: string; sessionId: string; seq: number; subject: string; connectionName: string; startedAt: string; text: string; decision: string; status: string; masked: number };

/**
 * Streams GET `path` to `out` (a file, written as FILE.partial and renamed
 * once complete, so a cut download never looks whole) or stdout. Returns bytes.
 */
async function download(cmd: Command, path: string, out?: string): Promise<number> {
  const res = await (await apiFor(cmd)).stream(path);
  let bytes = 0;
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>).on("data", (c: Buffer) => (bytes += c.length));
  const cut = (err: unknown) => new Error(`the export was cut short after ${bytes} bytes: ${(err as Error).message}`);
  if (!out) {
    await pipeline(body, process.stdout, { end: false }).catch((err) => {
      throw cut(err);
    });
    return bytes;
  }
  const partial = `${out}.partial`;
  try {
    await pipeline(body, createWriteStream(partial, { mode: 0o600 }));
  } catch (err) {
    await rm(partial, { force: true });
    throw cut(err);
  }
  await rename(partial, out);
  return bytes;
}

/** `airlock audit export` and `airlock audit search`. */
export function registerAuditExport(audit: Command): void {
  addAuditFilters(
    audit
      .command("export")
      .description("export sessions or statements you may see as JSON Lines or CSV, oldest first, streamed (no size limit)")
      .requiredOption("--kind <kind>", "sessions or statements")
      .option("--format <format>", "jsonl or csv", "jsonl")
      .option("-o, --output <file>", "write to a file (FILE.partial until complete) instead of stdout"),
  ).action(async (o: AuditFilterOptions & { kind: string; format: string; output?: string }, cmd: Command) => {
    const q = auditFilterParams(o);
    q.set("kind", o.kind);
    q.set("format", o.format);
    const bytes = await download(cmd, `/api/v1/audit/export?${q}`, o.output);
    if (o.output) process.stderr.write(`wrote ${bytes} bytes to ${o.output}\n`);
  });

  addAuditFilters(
    audit
      .command("search <text...>")
      .description('statements matching a full-text query, newest first: words, "a phrase", OR, -word')
      .option("--limit <n>", "how many", "50")
      .option("--cursor <cursor>", "the next page of an earlier search (same filters)"),
    { search: false },
  ).action(async (text: string[], o: AuditFilterOptions & { limit: string; cursor?: string }, cmd: Command) => {
    const q = auditFilterParams({ ...o, search: text.join(" ") });
    q.set("limit", o.limit);
    if (o.cursor) q.set("cursor", o.cursor);
    const r = await (await apiFor(cmd)).get<{ statements: StatementHit[]; nextCursor: string | null }>(`/api/v1/audit/statements?${q}`);
    print(cmd, r, () => {
      const width = process.stdout.isTTY ? Math.max(40, process.stdout.columns - 130) : 100;
      const rows = r.statements.map((s) => ({
        time: s.startedAt.replace("T", " ").slice(0, 23),
        user: s.subject,
        connection: s.connectionName,
        decision: s.decision === "deny" ? "DENY" : s.decision,
        masked: s.masked || "",
        session: s.sessionId,
        seq: s.seq,
        statement: oneLine(s.text, width),
      }));
      if (!rows.length) return "no statements match\n";
      return table(rows, ["time", "user", "connection", "decision", "masked", "session", "seq", "statement"]) + nextPageHint(r.nextCursor);
    });
  });
}
