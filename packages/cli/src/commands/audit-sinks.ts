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

/** `airlock audit sinks`: SIEM delivery per sink (admins and auditors). */
export function registerAuditSinks(audit: Command): void {
  audit
    .command("sinks")
    .description("SIEM sinks: events waiting in the outbox, the oldest one's age, the last error, delivered since the gateway started")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ sinks: SinkStatus[] }>("/api/v1/audit/sinks");
      print(cmd, r, () =>
        r.sinks.length
          ? table(
              r.sinks.map((s) => ({
                name: s.name,
                type: s.type ?? "(removed)",
                target: s.target,
                state: s.configured ? (s.enabled ? "on" : "off") : "not configured",
                pending: s.pending,
                oldest: age(s.oldestPendingSeconds),
                delivered: s.delivered,
                "last delivery": s.lastDeliveredAt ? ago(s.lastDeliveredAt) : "-",
                "last error": s.lastError ? `${oneLine(s.lastError)}${s.lastErrorAt ? ` (${ago(s.lastErrorAt)})` : ""}` : "-",
              })),
              ["name", "type", "target", "state", "pending", "oldest", "delivered", "last delivery", "last error"],
            )
          : "no SIEM sinks are configured (see docs/siem.md)\n",
      );
    });
}
