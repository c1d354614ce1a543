import type { Command } from "commander";
import { onShutdown } from "@airlock/shared";
import { ApiClient } from "../client.js";
import { apiFor, globals, print } from "../context.js";
import { ago, table } from "../output.js";
import { resolveTarget, saveProfile } from "../profile.js";
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

export function registerUser(program: Command): void {
  program
    .command("login")
    .description("save the gateway URL and an access token as your profile")
    .argument("[gateway]", "gateway API URL, e.g. https://airlock.example.com")
    .action(async (gateway: string | undefined, _o, cmd: Command) => {
      const g = globals(cmd);
      const t = await resolveTarget({ gateway: gateway ?? g.gateway, token: g.token });
      if (!t.gateway || !t.token) throw new Error("usage: airlock login GATEWAY_URL --token TOKEN (until OIDC sign-in lands, tokens come from `airlock tokens create`)");
      const who = await new ApiClient(t.gateway, t.token).get<{ subject: string; roles: string[]; expiresAt: string }>("/api/v1/whoami");
      const file = await saveProfile({ gateway: t.gateway, token: t.token });
      print(cmd, { ...who, profile: file }, () => `Logged in to ${t.gateway} as ${who.subject} (${who.roles.join(", ")}); token expires ${who.expiresAt}.\nProfile saved to ${file}\n`);
    });

  program
    .command("whoami")
    .action(async (_o, cmd: Command) => {
      const who = await (await apiFor(cmd)).get<{ subject: string; kind: string; roles: string[]; expiresAt: string }>("/api/v1/whoami");
      print(cmd, who, () => `subject:  ${who.subject}\nkind:     ${who.kind}\nroles:    ${who.roles.join(", ")}\nexpires:  ${who.expiresAt}\n`);
    });

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
  sessions
    .command("list")
    .option("--user <subject>")
    .option("--connection <name>")
    .option("--outcome <outcome>", "active, ok, failed or denied")
    .option("--limit <n>", "how many", "50")
    .action(async (o: { user?: string; connection?: string; outcome?: string; limit: string }, cmd: Command) => {
      const q = new URLSearchParams({
        limit: o.limit,
        ...(o.user ? { subject: o.user } : {}),
        ...(o.connection ? { connection: o.connection } : {}),
        ...(o.outcome ? { outcome: o.outcome } : {}),
      });
      const r = await (await apiFor(cmd)).get<{ sessions: Session[] }>(`/api/v1/sessions?${q}`);
      print(cmd, r, () =>
        table(
          r.sessions.map((s) => ({ ...s, started: ago(s.startedAt), up: s.bytesUp, down: s.bytesDown, connection: s.connectionName, user: s.subject })),
          ["id", "user", "connection", "agent", "started", "outcome", "up", "down"],
        ),
      );
    });
  sessions
    .command("show <id>")
    .action(async (id: string, _o, cmd: Command) => {
      const s = await (await apiFor(cmd)).get<Session>(`/api/v1/sessions/${encodeURIComponent(id)}`);
      print(cmd, s, () =>
        [
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
        ].join("\n"),
      );
    });
}
