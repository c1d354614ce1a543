// `airlock audit verify|keys|recover` (this file), `sinks` (audit-sinks.ts),
// `export` and `search` (audit-export.ts).
//
// verify runs on the auditor's machine: it fetches each session's records
// as stored and recomputes every hash and signature itself (the verifier in
// @airlock/shared/audit), so a gateway or database that lies is caught as
// long as the signing keys are trusted. --key pins public keys from a file
// instead of trusting the gateway's /audit/keys.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { verifySession, verifyStreams, type CheckpointMaterial, type Finding, type SessionMaterial } from "@airlock/shared/audit/index";
import { ApiError, type ApiClient } from "../client.js";
import { apiFor, globals, print } from "../context.js";
import { table } from "../output.js";
import { registerAuditExport } from "./audit-export.js";
import { registerAuditSinks } from "./audit-sinks.js";

type MaterialLine = { t: "session"; v: SessionMaterial["session"] } | { t: "statement"; v: SessionMaterial["statements"][number] } | { t: "chunk"; v: SessionMaterial["chunks"][number] } | { t: "checkpoint"; v: CheckpointMaterial } | { t: "tombstone"; v: SessionMaterial["tombstones"][number] };
type PublicKey = { id: string; publicKey: string; createdAt: string; retiredAt: string | null };

export function registerAudit(program: Command): Command {
  const audit = program.command("audit").description("tamper evidence, search, export and SIEM delivery of the audit record");
  audit
    .command("verify")
    .description("check sessions' hash chains and signed checkpoints; names every altered, removed or reordered record (exit 1 when any)")
    .option("--session <id>", "one session")
    .option("--since <time>", "every session started since (ISO 8601, or a duration such as 24h)")
    .option("--until <time>", "with --since: up to (ISO 8601)")
    .option("--key <file>", "trust only the public keys in this file (PEM blocks, or the JSON of GET /api/v1/audit/keys)")
    .option("--quiet", "print only problems")
    .action(async (o: { session?: string; since?: string; until?: string; key?: string; quiet?: boolean }, cmd: Command) => {
      if (!o.session === !o.since) throw new Error("give --session ID or --since TIME");
      const api = await apiFor(cmd);
      const keys = o.key ? await keysFromFile(o.key) : new Map((await api.get<{ keys: PublicKey[] }>("/api/v1/audit/keys")).keys.map((k) => [k.id, k.publicKey]));
      const ids: string[] = [];
      const checkpoints: CheckpointMaterial[] = [];
      const gaps: Finding[] = [];
      /** The checkpoint just before the range of each stream: only to check the first one follows it. */
      const anchors: CheckpointMaterial[] = [];
      if (o.session) ids.push(o.session);
      else {
        const q = new URLSearchParams({ since: when(o.since!), ...(o.until ? { until: when(o.until) } : {}) });
        for await (const l of api.lines<{ t: string; id?: string; v?: CheckpointMaterial; stream?: string; seq?: number; sessionId?: string }>(`/api/v1/audit/range?${q}`)) {
          if (l.t === "session") ids.push(l.id!);
          else if (l.t === "checkpoint") checkpoints.push(l.v!);
          else if (l.t === "anchor") anchors.push(l.v!);
          else if (l.t === "gap") gaps.push({ severity: "error", code: "REMOVED", sessionId: l.sessionId!, record: `checkpoint stream ${l.stream}`, message: `checkpoint #${l.seq} of signer stream ${l.stream} is missing (removed with its session?)` });
        }
      }
      const findings: Finding[] = [...gaps];
      let links = 0;
      let bad = 0;
      // Sessions a checkpoint of the range names are checked too: editing a session's start time
      // must not move it out of the range unnoticed.
      const seen = new Set(ids);
      for (const c of checkpoints) if (!seen.has(c.sessionId)) (seen.add(c.sessionId), ids.push(c.sessionId));
      for (const id of ids) {
        const m = await material(api, id).catch((err: Error & { status?: number }) => {
          if (err instanceof ApiError && err.status === 404 && o.since) return null;
          throw err;
        });
        if (!m) {
          bad++;
          findings.push({ severity: "error", code: "REMOVED", sessionId: id, record: `session ${id}`, message: `session ${id}, which a checkpoint in the range seals, is not in the store (removed)` });
          continue;
        }
        const r = verifySession(m, keys);
        links += r.links;
        if (!r.ok) bad++;
        findings.push(...r.findings);
      }
      findings.push(...verifyStreams([...anchors, ...checkpoints], keys, new Set(anchors.map((a) => a.id))));
      const errors = findings.filter((f) => f.severity === "error");
      const summary = { sessions: ids.length, links, sessionsWithErrors: bad, errors: errors.length, ok: errors.length === 0, findings };
      print(cmd, summary, () => {
        const shown = o.quiet ? errors : findings;
        const trust = o.key ? "" : "(keys as the gateway publishes them; pin them with --key FILE for a check independent of the gateway)\n";
        const head = trust + (errors.length ? `FAILED: ${errors.length} problem(s) in ${bad} of ${ids.length} session(s) (${links} links checked)\n` : `OK: ${ids.length} session(s), ${links} links, every record matches its signed chain\n`);
        return head + (shown.length ? table(shown.map((f) => ({ severity: f.severity, code: f.code, session: f.sessionId, record: f.record ?? "-", message: f.message })), ["severity", "code", "session", "record", "message"]) : "");
      });
      if (errors.length) process.exitCode = 1;
    });

  const keys = audit.command("keys").description("the public keys that sign checkpoints");
  keys
    .command("list", { isDefault: true })
    .action(async (_o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ keys: PublicKey[] }>("/api/v1/audit/keys");
      print(cmd, r, () => table(r.keys.map((k) => ({ ...k, state: k.retiredAt ? `retired ${k.retiredAt}` : "active" })), ["id", "state", "createdAt"]));
    });
  keys
    .command("rotate")
    .description("sign with a new key from now on (the old one stays published for old checkpoints); admins")
    .action(async (_o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<PublicKey>("/api/v1/audit/keys/rotate");
      print(cmd, r, () => `New signing key ${r.id}; earlier keys stay published.\n${r.publicKey}`);
    });
  keys
    .command("export")
    .description("print every public key as PEM, to pin with `audit verify --key FILE`")
    .action(async (_o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ keys: PublicKey[] }>("/api/v1/audit/keys");
      process.stdout.write(globals(cmd).json ? `${JSON.stringify(r, null, 2)}\n` : r.keys.map((k) => `# ${k.id}\n${k.publicKey}`).join(""));
    });

  audit
    .command("recover <session-id>")
    .description("close a session whose gateway process died (end record + signed 'recovered' checkpoint); admins")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ id: string }>(`/api/v1/audit/sessions/${encodeURIComponent(id)}/recover`);
      print(cmd, r, () => `Session ${r.id} closed as recovered.\n`);
    });

  registerAuditSinks(audit);
  registerAuditExport(audit);
  return audit;
}

async function material(api: ApiClient, id: string): Promise<SessionMaterial> {
  let m: SessionMaterial | null = null;
  for await (const l of api.lines<MaterialLine>(`/api/v1/audit/sessions/${encodeURIComponent(id)}/material`)) {
    if (l.t === "session") m = { session: l.v, statements: [], chunks: [], checkpoints: [], tombstones: [] };
    else if (!m) continue;
    else if (l.t === "statement") m.statements.push(l.v);
    else if (l.t === "chunk") m.chunks.push(l.v);
    else if (l.t === "checkpoint") m.checkpoints.push(l.v);
    else if (l.t === "tombstone") m.tombstones.push(l.v);
  }
  if (!m) throw new ApiError(404, "NOT_FOUND", `no session ${id}`);
  return m;
}

/** PEM blocks each preceded by `# KEY_ID` (as `audit keys export` prints), or the JSON of GET /audit/keys. */
async function keysFromFile(file: string): Promise<Map<string, string>> {
  const text = await readFile(file, "utf8");
  if (text.trimStart().startsWith("{")) return new Map((JSON.parse(text) as { keys: PublicKey[] }).keys.map((k) => [k.id, k.publicKey]));
  const out = new Map<string, string>();
  for (const m of text.matchAll(/#\s*(\S+)\s*\n(-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----)/g)) out.set(m[1]!, `${m[2]!}\n`);
  if (!out.size) throw new Error(`${file} holds no "# KEY_ID" + PEM public key blocks`);
  return out;
}

function when(v: string): string {
  const d = /^(\d+)([smhd])$/.exec(v);
  if (d) return new Date(Date.now() - Number(d[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[d[2] as "s"]).toISOString();
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw new Error(`${v} is not a time (ISO 8601) or a duration (30m, 24h, 7d)`);
  return t.toISOString();
}
