import type { Command } from "commander";
import pg from "pg";
import { ApiClient } from "../client.js";
import { globals, print } from "../context.js";
import { table } from "../output.js";
import { resolveTarget } from "../profile.js";

/** Exit code when a review is needed (async mode): the statement did not run. */
export const EXIT_REVIEW_REQUIRED = 3;

type Meta = { postgres: { host: string; port: number; caPem: string } | null };
type Review = { id: string; status: string; connection: string; database: string | null; statement: string | null; params: unknown[] | null; requester: string; usesLeft: number; validUntil: string | null };

async function frontDoor(cmd: Command): Promise<{ api: ApiClient; token: string; pgAt: NonNullable<Meta["postgres"]> }> {
  const t = await resolveTarget(globals(cmd));
  if (!t.gateway || !t.token) throw new Error("no gateway or token: pass --gateway/--token, set AIRLOCK_URL/AIRLOCK_TOKEN or run `airlock login`");
  const api = new ApiClient(t.gateway, t.token);
  const meta = await api.get<Meta>("/api/v1/meta");
  if (!meta.postgres) throw new Error("this gateway's Postgres front door is off");
  return { api, token: t.token, pgAt: meta.postgres };
}

/**
 * Runs one SQL text through the Postgres front door, as the caller, with every
 * guardrail, masking and recording applied. `wait` holds on a review (the
 * gateway keeps the statement until a reviewer decides); otherwise a review
 * comes back at once as "review required" (exit 3), which is how an AI agent
 * or a CI job asks a human without blocking.
 */
async function run(cmd: Command, connection: string, sql: string, params: unknown[] | null, o: { wait: boolean; database?: string }): Promise<void> {
  const { token, pgAt } = await frontDoor(cmd);
  const client = new pg.Client({
    host: pgAt.host,
    port: pgAt.port,
    user: "airlock",
    password: token,
    database: o.database ? `${connection}/${o.database}` : connection,
    ssl: { ca: pgAt.caPem, rejectUnauthorized: true },
    ...(o.wait ? {} : { options: "-c airlock.review=async" }),
    application_name: "airlock exec",
  });
  client.on("notice", (n) => process.stderr.write(`${n.message}${n.hint ? `\n  ${n.hint}` : ""}\n`));
  await client.connect();
  try {
    const r = params ? await client.query(sql, params) : await client.query(sql);
    const results = Array.isArray(r) ? r : [r];
    print(cmd, results.map((x) => ({ command: x.command, rowCount: x.rowCount, rows: x.rows })), () =>
      results.map((x) => (x.fields?.length ? table(x.rows as Array<Record<string, unknown>>, x.fields.map((f: pg.FieldDef) => f.name)) : "") + `${x.command}${x.rowCount !== null ? ` ${x.rowCount}` : ""}\n`).join(""),
    );
  } catch (err) {
    const m = /review required: ([0-9a-f-]{36})/.exec((err as Error).message);
    if (m) {
      print(cmd, { reviewRequired: m[1] }, () => `review required: ${m[1]}\n`);
      process.stderr.write(`The statement did not run. When a reviewer approved it: airlock reviews run ${m[1]}\n`);
      process.exitCode = EXIT_REVIEW_REQUIRED;
      return;
    }
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

export function registerExec(program: Command, reviews: Command | undefined): void {
  program
    .command("exec <connection>")
    .description("run SQL through the gateway's guardrails; a statement needing review exits 3 with its id (or waits with --wait)")
    .requiredOption("--sql <text>", "the statement(s) to run")
    .option("--wait", "wait while a reviewer decides, then print the result")
    .option("--database <name>", "database on the target (default: the connection's)")
    .action(async (connection: string, o: { sql: string; wait?: boolean; database?: string }, cmd: Command) => run(cmd, connection, o.sql, null, { wait: !!o.wait, database: o.database }));

  reviews
    ?.command("run <id>")
    .description("run the statement of an approved review (as its requester), exactly as it was approved")
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = await frontDoor(cmd);
      const r = await api.get<Review>(`/api/v1/reviews/${encodeURIComponent(id)}`);
      if (r.status !== "approved") throw new Error(`review ${id} is ${r.status}, not approved`);
      if (!r.statement) throw new Error(`review ${id} is not about a statement`);
      // A spent or lapsed approval would only start a new review and wait: say so instead.
      if (r.usesLeft < 1 || (r.validUntil && new Date(r.validUntil).getTime() <= Date.now())) throw new Error(`the approval of review ${id} is used up or expired; run the statement again to ask for a new one`);
      // Hold mode: the gateway finds the approval for this exact text (and parameters) and spends it.
      // Same database as approved: the approval covers that database only.
      await run(cmd, r.connection, r.statement, r.params, { wait: true, ...(r.database ? { database: r.database } : {}) });
    });
}
