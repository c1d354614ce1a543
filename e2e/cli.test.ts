// The `airlock` CLI, run as a real process against a real gateway: login and
// profile precedence, enrolling an agent with the printed command (CA pin, no
// CA file), connections, tokens, sessions and error reporting.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { argv, connectVia, pemPin, runCli, type CliResult } from "./harness/cli-helpers.js";
import { eventually, freePort, killAll, psql, startCli, startGateway, tempDir, type GatewayProc, type Proc } from "./harness/processes.js";

let gw: GatewayProc;
let cfg: string;
/** A gateway URL nothing listens on. */
let deadUrl: string;

/** The CLI with only the saved profile (in cfg) to go on, plus whatever env is given. */
const cli = (args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> => runCli(args, { AIRLOCK_CONFIG_DIR: cfg, ...env });

async function mint(subject: string, roles = ["user"]): Promise<{ id: string; token: string }> {
  const r = await gw.api<{ id: string; token: string }>("POST", "/api/v1/tokens", { subject, roles, ttlSeconds: 3600 });
  expect(r.status).toBe(201);
  return r.body;
}

beforeAll(async () => {
  gw = await startGateway();
  cfg = await tempDir("airlock-cfg-");
  deadUrl = `http://127.0.0.1:${await freePort()}`;
});

afterAll(killAll);

describe("login and where the CLI finds gateway and token", () => {
  it("`airlock login URL --token T` checks the token and saves a 0600 profile", async () => {
    const r = await cli(["login", gw.apiUrl, "--token", gw.adminToken]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Signed in to ${gw.apiUrl} as admin (admin; groups none)`);
    const file = join(cfg, "profile.json");
    expect(r.stdout).toContain(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ gateway: gw.apiUrl, token: gw.adminToken });
  });

  it("later commands work with no flags and no env", async () => {
    const r = await cli(["whoami"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^subject:\s+admin$/m);
    expect(r.stdout).toMatch(/^roles:\s+admin$/m);
  });

  it("login with a bad token fails and leaves the saved profile alone", async () => {
    const r = await cli(["login", gw.apiUrl, "--token", "alk_at_" + "x".repeat(43)]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/TOKEN_INVALID/);
    expect(JSON.parse(await readFile(join(cfg, "profile.json"), "utf8"))).toEqual({ gateway: gw.apiUrl, token: gw.adminToken });
  });

  it("precedence: --token flag > AIRLOCK_TOKEN env > profile", async () => {
    const envUser = await mint("env-user");
    const flagUser = await mint("flag-user");
    const subject = async (args: string[], env: Record<string, string> = {}) => {
      const r = await cli([...args, "whoami", "--json"], env);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { subject: string }).subject;
    };
    expect(await subject([])).toBe("admin");
    expect(await subject([], { AIRLOCK_TOKEN: envUser.token })).toBe("env-user");
    expect(await subject(["--token", flagUser.token], { AIRLOCK_TOKEN: envUser.token })).toBe("flag-user");
    expect(await subject(["--token", flagUser.token])).toBe("flag-user");
  });

  it("precedence: --gateway flag > AIRLOCK_URL env > profile", async () => {
    // The env URL wins over the profile: it points nowhere, so the command fails naming it.
    const viaEnv = await cli(["whoami"], { AIRLOCK_URL: deadUrl });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toContain(`cannot reach the gateway at ${deadUrl}`);
    // The flag wins over the env.
    const viaFlag = await cli(["--gateway", gw.apiUrl, "whoami"], { AIRLOCK_URL: deadUrl });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    // A flag pointing nowhere beats a good env URL and the profile.
    const deadFlag = await cli(["--gateway", deadUrl, "whoami"], { AIRLOCK_URL: gw.apiUrl });
    expect(deadFlag.code).toBe(1);
    expect(deadFlag.stderr).toContain(deadUrl);
  });

  it("with no flag, env or profile it says how to point it at a gateway", async () => {
    const r = await runCli(["connections", "list"], { AIRLOCK_CONFIG_DIR: join(cfg, "empty") });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no gateway: pass --gateway URL, set AIRLOCK_URL or run `airlock login`/);
  });
});

describe("agents create prints a command that enrolls a real agent by CA pin", () => {
  let agent: Proc;

  it("the printed command has an enrollment token and a CA pin, and running it connects the agent", async () => {
    const r = await cli(["agents", "create", "edge-1"]);
    expect(r.code, r.stderr).toBe(0);
    const line = r.stdout.split("\n").find((l) => l.trim().startsWith("airlock agent "));
    expect(line, r.stdout).toBeDefined();
    const cmd = line!.trim();
    expect(cmd).toMatch(/ --token alk_enr_[A-Za-z0-9_-]{43}( |$)/);
    expect(cmd).toMatch(/ --ca-pin sha256:[0-9a-f]{64}( |$)/);
    expect(cmd).toContain(`--gateway ${gw.agentAddress}`);
    expect(cmd).not.toContain("--ca-file");
    // The pin is the gateway's real CA.
    const pin = /--ca-pin (\S+)/.exec(cmd)![1];
    expect(pin).toBe(pemPin(await readFile(gw.caFile, "utf8")));

    // Run exactly that command (airlock → node CLI), adding only where to keep the key.
    const args = argv(cmd);
    expect(args[0]).toBe("airlock");
    const dataDir = await tempDir("airlock-pinned-agent-");
    agent = startCli([...args.slice(1), "--data-dir", dataDir]);
    await agent.waitFor(/connected to gateway/, 20_000);
    const state = JSON.parse(await readFile(join(dataDir, "agent.json"), "utf8")) as { agentName: string; agentKey: string };
    expect(state.agentName).toBe("edge-1");
    expect(state.agentKey).toMatch(/^alk_ak_/);

    const list = await cli(["agents", "list", "--json"]);
    const edge = (JSON.parse(list.stdout) as { agents: Array<{ name: string; status: string }> }).agents.find((a) => a.name === "edge-1");
    expect(edge?.status).toBe("online");
    const human = await cli(["agents", "list"]);
    expect(human.stdout).toMatch(/^edge-1\s+-\s+online\s/m);
  });

  it("a wrong pin is refused: the agent does not trust a gateway it cannot verify", async () => {
    const r = await gw.api<{ enrollmentToken: string }>("POST", "/api/v1/agents", { name: "edge-bad-pin" });
    const bad = startCli(["agent", "--gateway", gw.agentAddress, "--token", r.body.enrollmentToken, "--ca-pin", `sha256:${"0".repeat(64)}`, "--data-dir", await tempDir()]);
    const exit = await Promise.race([bad.exited, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
    expect(exit?.code).not.toBe(0);
    expect(bad.output()).toMatch(/matches --ca-pin/);
    const a = await gw.api<{ status: string; enrolledAt: string | null }>("GET", "/api/v1/agents/edge-bad-pin");
    expect(a.body).toMatchObject({ status: "pending", enrolledAt: null });
  });
});

describe("connections", () => {
  it("create with --agent and --label, list (table and --json), show, delete", async () => {
    const c = await cli(["connections", "create", "orders-db", "--target", "127.0.0.1:5432", "--agent", "edge-1", "--label", "env=prod", "--label", "team=data"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim()).toBe("Connection orders-db created (tcp 127.0.0.1:5432 via edge-1).");

    const j = await cli(["connections", "list", "--json"]);
    const list = (JSON.parse(j.stdout) as { connections: Array<Record<string, unknown>> }).connections;
    expect(list).toEqual([
      expect.objectContaining({ name: "orders-db", type: "tcp", host: "127.0.0.1", port: 5432, agent: "edge-1", agentGroup: null, labels: { env: "prod", team: "data" }, hasSecrets: false }),
    ]);
    const table = await cli(["connections", "list"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^NAME\s+TYPE\s+TARGET\s+VIA\s+LABELS$/);
    expect(table.stdout).toMatch(/^orders-db\s+tcp\s+127\.0\.0\.1:5432\s+edge-1\s+env=prod,team=data$/m);

    const show = await cli(["connections", "show", "orders-db"]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^target:\s+127\.0\.0\.1:5432$/m);
    expect(show.stdout).toMatch(/^via:\s+agent edge-1$/m);
    expect(show.stdout).toMatch(/^labels:\s+env=prod,team=data$/m);
    const showJson = JSON.parse((await cli(["connections", "show", "orders-db", "--json"])).stdout) as { id: string; name: string };
    expect(showJson.name).toBe("orders-db");
    expect(showJson.id).toBe(list[0]!.id);

    // Created by the CLI, served by the pin-enrolled agent: psql goes through.
    const tunnel = await connectVia(["--gateway", gw.apiUrl, "--token", gw.adminToken, "connect", "orders-db"]);
    const q = await psql(`postgresql://postgres@127.0.0.1:${tunnel.port}/postgres`, ["-At", "-c", "select 6 * 7"]);
    expect(q.stderr).toBe("");
    expect(q.stdout).toBe("42\n");
    await tunnel.kill();

    const scratch = await cli(["connections", "create", "scratch", "--target", "10.0.0.9:22", "--agent", "edge-1"]);
    expect(scratch.code, scratch.stderr).toBe(0);
    const del = await cli(["connections", "delete", "scratch"]);
    expect(del.code).toBe(0);
    expect(del.stdout.trim()).toBe("Connection scratch deleted.");
    const gone = await cli(["connections", "show", "scratch"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/NOT_FOUND/);
    expect((JSON.parse((await cli(["connections", "list", "--json"])).stdout) as { connections: Array<{ name: string }> }).connections.map((x) => x.name)).toEqual(["orders-db"]);
  });

  it("a bad request is reported with the gateway's reason", async () => {
    const r = await cli(["connections", "create", "nope", "--target", "127.0.0.1:5432", "--agent", "no-such-agent"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("airlock: no agent no-such-agent (NOT_FOUND)");
    const t = await cli(["connections", "create", "nope", "--target", "127.0.0.1:5432", "--agent", "edge-1", "--type", "mysql"]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/type mysql is not supported yet.*\(INVALID_ARGUMENT\)/);
  });
});

describe("tokens", () => {
  let id: string;
  let token: string;

  it("tokens create --user alice --ttl 1h prints a token that works for whoami", async () => {
    const t0 = Date.now();
    const r = await cli(["tokens", "create", "--user", "alice", "--ttl", "1h"]);
    expect(r.code, r.stderr).toBe(0);
    // stdout is the token alone, so `$(airlock tokens create ...)` works.
    expect(r.stdout).toMatch(/^alk_at_[A-Za-z0-9_-]{43}\n$/);
    token = r.stdout.trim();
    const m = /^token (\S+) for alice expires (\S+)$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    id = m![1]!;
    const ttl = new Date(m![2]!).getTime() - t0;
    expect(ttl).toBeGreaterThan(3600_000 - 60_000);
    expect(ttl).toBeLessThan(3600_000 + 60_000);

    const who = await runCli(["--gateway", gw.apiUrl, "--token", token, "whoami"]);
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toMatch(/^subject:\s+alice$/m);
    expect(who.stdout).toMatch(/^roles:\s+user$/m);
  });

  it("tokens list shows it; tokens revoke makes it stop working", async () => {
    const list = await cli(["tokens", "list"]);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+alice\\s+user\\s+user\\s+\\S+\\s+\\S+( ago)?\\s+valid$`, "m"));
    const json = JSON.parse((await cli(["tokens", "list", "--user", "alice", "--json"])).stdout) as { tokens: Array<{ id: string; subject: string }> };
    expect(json.tokens.map((t) => [t.id, t.subject])).toEqual([[id, "alice"]]);

    const rev = await cli(["tokens", "revoke", id]);
    expect(rev.code, rev.stderr).toBe(0);
    expect(rev.stdout.trim()).toBe(`Token ${id} revoked; 0 live session(s) cut.`);

    const who = await runCli(["--gateway", gw.apiUrl, "--token", token, "whoami"]);
    expect(who.code).toBe(4);
    expect(who.stderr).toMatch(/TOKEN_REVOKED/);
    expect((await cli(["tokens", "list"])).stdout).not.toContain(id);
    expect((await cli(["tokens", "list", "--all"])).stdout).toMatch(new RegExp(`^${id}\\s+alice\\s.*\\srevoked$`, "m"));
  });

  it("a user token cannot mint tokens", async () => {
    const bob = await mint("bob");
    const r = await runCli(["--gateway", gw.apiUrl, "--token", bob.token, "tokens", "create", "--user", "mallory"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PERMISSION_DENIED/);
  });
});

describe("sessions", () => {
  it("sessions list and show describe the psql session", async () => {
    const s = await eventually(
      async () => {
        const r = await cli(["sessions", "list", "--connection", "orders-db", "--json"]);
        const list = (JSON.parse(r.stdout) as { sessions: Array<{ id: string; endedAt: string | null; outcome: string; bytesUp: number; bytesDown: number }> }).sessions;
        return list.find((x) => x.endedAt);
      },
      10_000,
      "a finished orders-db session",
    );
    expect(s.outcome).toBe("ok");
    const table = await cli(["sessions", "list"]);
    expect(table.stdout).toMatch(new RegExp(`^${s.id}\\s+admin\\s+orders-db\\s+edge-1\\s+.*\\bok\\s+${s.bytesUp}\\s+${s.bytesDown}$`, "m"));

    const show = await cli(["sessions", "show", s.id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^id:\\s+${s.id}$`, "m"));
    expect(show.stdout).toMatch(/^connection:\s+orders-db \(tcp\)$/m);
    expect(show.stdout).toMatch(/^agent:\s+edge-1$/m);
    expect(show.stdout).toMatch(new RegExp(`^bytes:\\s+${s.bytesUp} up, ${s.bytesDown} down$`, "m"));
    expect(show.stdout).toMatch(/^outcome:\s+ok$/m);
    expect(s.bytesUp).toBeGreaterThan(0);
    expect(s.bytesDown).toBeGreaterThan(0);

    const missing = await cli(["sessions", "show", "00000000-0000-4000-8000-000000000000"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });
});

describe("errors", () => {
  it("unknown connection: non-zero exit and NOT_FOUND, for show and for connect", async () => {
    const show = await cli(["connections", "show", "does-not-exist"]);
    expect(show.code).not.toBe(0);
    expect(show.stderr.trim()).toBe("airlock: no connection does-not-exist (NOT_FOUND)");
    const connect = await cli(["connect", "does-not-exist", "--port", "0"]);
    expect(connect.code).not.toBe(0);
    expect(connect.stderr).toMatch(/NOT_FOUND/);
    expect(connect.stdout).not.toMatch(/Listening/);
  });

  it("unreachable gateway: one clear line naming the URL, no stack trace, quickly", async () => {
    const r = await runCli(["--gateway", deadUrl, "--token", gw.adminToken, "connections", "list"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^airlock: cannot reach the gateway at ${deadUrl.replace(/\./g, "\\.")}: .*ECONNREFUSED.* \\(UNREACHABLE\\)\\n$`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
    expect(r.ms).toBeLessThan(10_000);
  });

  it("a token the gateway does not know: exit 4 and the reason", async () => {
    const r = await runCli(["--gateway", gw.apiUrl, "--token", "alk_at_" + "A".repeat(43), "connections", "list"]);
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe("airlock: unknown access token (TOKEN_INVALID)");
  });
});
