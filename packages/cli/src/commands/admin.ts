import type { Command } from "commander";
import { apiFor, print } from "../context.js";
import { ago, parseDuration, table } from "../output.js";

type Agent = { name: string; group: string | null; status: string; version: string | null; hostname: string | null; lastSeenAt: string | null; streams: number };
type Connection = { name: string; type: string; host: string; port: number; agent: string | null; agentGroup: string | null; labels: Record<string, string>; hasSecrets: boolean; database?: string | null; tls: { enabled: boolean } };
type Token = { id: string; subject: string; kind: string; roles: string[]; groups?: string[]; expiresAt: string; lastUsedAt: string | null; revokedAt: string | null };

const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(",") || "-";

export function registerAdmin(program: Command): void {
  const agents = program.command("agents").description("manage agents");
  agents
    .command("create <name>")
    .description("create an agent and print its one-time enrollment token")
    .option("--group <group>", "agent group (agents in a group serve the same connections)")
    .option("--ttl <duration>", "how long the enrollment token stays valid", "24h")
    .action(async (name: string, o: { group?: string; ttl: string }, cmd: Command) => {
      const api = await apiFor(cmd);
      const r = await api.post<{ agent: Agent; enrollmentToken: string; expiresAt: string; command: string; caPin: string | null }>("/api/v1/agents", {
        name,
        group: o.group,
        enrollmentTtlSeconds: parseDuration(o.ttl),
      });
      print(cmd, r, () => `Agent ${name} created. Its enrollment token is shown once and works once, until ${r.expiresAt}.\nRun on a host in the target network:\n\n  ${r.command}\n`);
    });
  agents
    .command("list")
    .description("list agents with online/offline status and last seen")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ agents: Agent[] }>("/api/v1/agents");
      print(cmd, r, () => table(r.agents.map((a) => ({ ...a, group: a.group, lastSeen: a.status === "online" ? "now" : ago(a.lastSeenAt) })), ["name", "group", "status", "version", "hostname", "lastSeen", "streams"]));
    });
  agents
    .command("revoke <name>")
    .description("revoke an agent: its links are cut at once")
    .action(async (name: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<Agent>(`/api/v1/agents/${encodeURIComponent(name)}/revoke`);
      print(cmd, r, () => `Agent ${name} revoked.\n`);
    });
  agents
    .command("delete <name>")
    .action(async (name: string, _o, cmd: Command) => {
      await (await apiFor(cmd)).delete(`/api/v1/agents/${encodeURIComponent(name)}`);
      print(cmd, { deleted: name }, () => `Agent ${name} deleted.\n`);
    });

  const conns = program.command("connections").description("manage connections");
  conns
    .command("create <name>")
    .description("register a target reachable through an agent")
    .requiredOption("--target <host:port>", "target address as the agent sees it")
    .option("--type <type>", "tcp or postgres (mysql, ssh, kubernetes, http later)", "tcp")
    .option("--database <name>", "default database on the target (postgres)")
    .option("--agent <name>", "agent that reaches the target")
    .option("--agent-group <group>", "agent group that reaches the target")
    .option("--label <k=v...>", "labels, e.g. env=prod", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--tls", "TLS from the agent to the target")
    .option("--tls-insecure", "TLS without verifying the target certificate")
    .option("--tls-server-name <name>")
    .option("--secret <k=v...>", "secrets for the connection type (write-only)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--record-mode <mode>", "closed (default: a statement that cannot be recorded is refused) or best_effort (it runs, counted as unrecorded)")
    .action(async (name: string, o: { target: string; type: string; agent?: string; agentGroup?: string; label: string[]; tls?: boolean; tlsInsecure?: boolean; tlsServerName?: string; secret: string[]; database?: string; recordMode?: string }, cmd: Command) => {
      const i = o.target.lastIndexOf(":");
      const kv = (xs: string[]) => Object.fromEntries(xs.map((x) => [x.slice(0, x.indexOf("=")), x.slice(x.indexOf("=") + 1)]));
      const body = {
        name,
        type: o.type,
        host: o.target.slice(0, i).replace(/^\[|\]$/g, ""),
        port: Number(o.target.slice(i + 1)),
        agent: o.agent,
        agentGroup: o.agentGroup,
        labels: kv(o.label),
        database: o.database,
        tls: o.tls || o.tlsInsecure ? { enabled: true, verify: !o.tlsInsecure, serverName: o.tlsServerName } : undefined,
        secrets: o.secret.length ? kv(o.secret) : undefined,
        recordMode: o.recordMode,
      };
      const r = await (await apiFor(cmd)).post<Connection>("/api/v1/connections", body);
      print(cmd, r, () => `Connection ${r.name} created (${r.type} ${r.host}:${r.port} via ${r.agent ?? `group ${r.agentGroup}`}).\n`);
    });
  conns
    .command("list")
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).get<{ connections: Connection[] }>("/api/v1/connections");
      print(cmd, r, () => table(r.connections.map((c) => ({ ...c, target: `${c.host}:${c.port}`, via: c.agent ?? `group:${c.agentGroup}`, labels: labels(c.labels) })), ["name", "type", "target", "via", "labels"]));
    });
  conns
    .command("show <name>")
    .action(async (name: string, _o, cmd: Command) => {
      const c = await (await apiFor(cmd)).get<Connection>(`/api/v1/connections/${encodeURIComponent(name)}`);
      print(cmd, c, () => `name:     ${c.name}\ntype:     ${c.type}\ntarget:   ${c.host}:${c.port}\nvia:      ${c.agent ? `agent ${c.agent}` : `group ${c.agentGroup}`}\ntls:      ${c.tls.enabled ? "on" : "off"}\nlabels:   ${labels(c.labels)}\n${c.database ? `database: ${c.database}\n` : ""}secrets:  ${c.hasSecrets ? "set (write-only)" : "none"}\n`);
    });
  conns
    .command("delete <name>")
    .action(async (name: string, _o, cmd: Command) => {
      await (await apiFor(cmd)).delete(`/api/v1/connections/${encodeURIComponent(name)}`);
      print(cmd, { deleted: name }, () => `Connection ${name} deleted.\n`);
    });

  const tokens = program.command("tokens").description("mint and revoke access tokens");
  tokens
    .command("create")
    .description("mint a short-lived access token for a user or service account")
    .requiredOption("--user <subject>", "who the token is for")
    .option("--role <role...>", "admin, user, auditor, reviewer", ["user"])
    .option("--group <group...>", "groups policies see (e.g. developers, ai-agents)", [] as string[])
    .option("--service", "token for a service account / machine")
    .option("--ttl <duration>", "lifetime", "1h")
    .option("--description <text>")
    .action(async (o: { user: string; role: string[]; group: string[]; service?: boolean; ttl: string; description?: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ id: string; token: string; expiresAt: string }>("/api/v1/tokens", {
        subject: o.user,
        roles: o.role,
        groups: o.group.length ? o.group : undefined,
        kind: o.service ? "service" : "user",
        ttlSeconds: parseDuration(o.ttl),
        description: o.description,
      });
      print(cmd, r, () => `${r.token}\n`);
      if (!cmd.optsWithGlobals().json) process.stderr.write(`token ${r.id} for ${o.user} expires ${r.expiresAt}\n`);
    });
  tokens
    .command("list")
    .option("--user <subject>")
    .option("--all", "include expired and revoked")
    .action(async (o: { user?: string; all?: boolean }, cmd: Command) => {
      const q = new URLSearchParams({ ...(o.user ? { subject: o.user } : {}), ...(o.all ? { all: "true" } : {}) });
      const r = await (await apiFor(cmd)).get<{ tokens: Token[] }>(`/api/v1/tokens?${q}`);
      print(cmd, r, () => table(r.tokens.map((t) => ({ ...t, roles: t.roles.join(","), groups: (t.groups ?? []).join(","), lastUsed: ago(t.lastUsedAt), state: t.revokedAt ? "revoked" : new Date(t.expiresAt) < new Date() ? "expired" : "valid" })), ["id", "subject", "kind", "roles", "groups", "expiresAt", "lastUsed", "state"]));
    });
  tokens
    .command("revoke <id>")
    .description("revoke a token and cut its live sessions")
    .action(async (id: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<{ sessionsCut: number }>(`/api/v1/tokens/${encodeURIComponent(id)}/revoke`);
      print(cmd, r, () => `Token ${id} revoked; ${r.sessionsCut} live session(s) cut.\n`);
    });
}
