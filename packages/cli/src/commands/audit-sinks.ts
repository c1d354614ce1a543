import type { Command } from "commander";
import { apiFor, print } from "../context.js";
import { ago, table } from "../output.js";

type SinkStatus = {
  name: string;
  type: "webhook" | "syslog" | null;
  target: string | null;
  configured: boolean;
  enabled: boolean;
  pending: number;
  oldestPendingSeconds: number | null;
  lastError: string | null;
  lastErrorAt: string | null;
  deadLettered: number;
  deadLetterError: string | null;
  delivered: number;
  lastDeliveredAt: string | null;
};

/** 95 -> "1m35s": how far behind a sink is. */
function age(seconds: number | null): string {
  if (seconds === null) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

const oneLine = (s: string | null, n = 60) => (s ? (s.length > n ? `${s.slice(0, n - 1)}…` : s) : "-");

/** on/off is the store's (every gateway); "(not here)": this gateway does not deliver it. */
const state = (s: SinkStatus) => `${s.enabled ? "on" : "off"}${s.configured ? "" : " (not here)"}`;

function lastError(s: SinkStatus): string {
  if (s.lastError) return `${oneLine(s.lastError)}${s.lastErrorAt ? ` (${ago(s.lastErrorAt)})` : ""}`;
  return s.deadLetterError ? oneLine(s.deadLetterError) : "-";
}

/** `airlock audit sinks [retry|enable|disable NAME]`: SIEM delivery per sink. */
export function registerAuditSinks(audit: Command): void {
  const sinks = audit
    .command("sinks")
    .description("SIEM sinks: events waiting in the outbox, the oldest one's age, the last error, dead letters, delivered since the gateway started")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ sinks: SinkStatus[] }>("/api/v1/audit/sinks");
      print(cmd, r, () => {
        if (!r.sinks.length) return "no SIEM sinks are configured (see docs/siem.md)\n";
        const out = table(
          r.sinks.map((s) => ({
            name: s.name,
            type: s.type ?? "-",
            target: s.target,
            state: state(s),
            pending: s.pending,
            dead: s.deadLettered,
            oldest: age(s.oldestPendingSeconds),
            delivered: s.delivered,
            "last delivery": s.lastDeliveredAt ? ago(s.lastDeliveredAt) : "-",
            "last error": lastError(s),
          })),
          ["name", "type", "target", "state", "pending", "dead", "oldest", "delivered", "last delivery", "last error"],
        );
        const dead = r.sinks.filter((s) => s.deadLettered > 0).map((s) => s.name);
        const orphans = r.sinks.filter((s) => s.enabled && !s.configured).map((s) => s.name);
        return (
          out +
          (dead.length ? `\nDead letters are events the receiver kept refusing; they are not sent again until \`airlock audit sinks retry NAME\` (${dead.join(", ")}).\n` : "") +
          (orphans.length ? `\n${orphans.join(", ")}: enabled, but this gateway does not deliver it; if no gateway does, \`airlock audit sinks disable NAME\`.\n` : "")
        );
      });
    });

  sinks
    .command("retry <name>")
    .description("send a sink's dead-lettered events again (after fixing what the receiver refused them for); admins")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ name: string; requeued: number }>(`/api/v1/audit/sinks/${encodeURIComponent(name)}/retry`);
      print(cmd, r, () => (r.requeued ? `${r.requeued} dead-lettered event(s) of ${r.name} are due again.\n` : `${r.name} has no dead-lettered events.\n`));
    });

  sinks
    .command("disable <name>")
    .description("stop queueing events for a sink, on every gateway (what is queued is still delivered); admins")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<SinkStatus>(`/api/v1/audit/sinks/${encodeURIComponent(name)}/disable`);
      print(cmd, r, () => `${r.name} disabled: no new events are queued for it (${r.pending} still waiting).\n`);
    });

  sinks
    .command("enable <name>")
    .description("queue events for a sink again, on every gateway; admins")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<SinkStatus>(`/api/v1/audit/sinks/${encodeURIComponent(name)}/enable`);
      print(cmd, r, () => `${r.name} enabled: events are queued for it again.${r.configured ? "" : " This gateway does not deliver it; another gateway must have it configured."}\n`);
    });
}
