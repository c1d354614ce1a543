// BENCHMARK ONLY. `pnpm bench audit` measures what statement recording adds to
// the Postgres front door by comparing a gateway that records with one that
// doesn't. AIRLOCK_BENCH_RECORD_STATEMENTS=off gives the front door a sink that
// records nothing: statements run WITHOUT an audit record, which no real
// deployment may do, so it is never on by default, is not part of the config
// (docs/configuration.md does not list it) and logs an error at start.
import { randomUUID } from "node:crypto";
import type { Logger } from "@airlock/shared";
import type { StatementSink } from "../engines/postgres/session/state.js";

export const BENCH_RECORDING_ENV = "AIRLOCK_BENCH_RECORD_STATEMENTS";

/** The sink the front door uses: `real`, unless the benchmark switch is set to exactly "off". */
export function benchStatementSink<T extends StatementSink>(real: T, log: Logger, env: NodeJS.ProcessEnv = process.env): T | StatementSink {
  const v = env[BENCH_RECORDING_ENV];
  if (v === undefined || v === "" || v === "on") return real;
  if (v !== "off") throw new Error(`${BENCH_RECORDING_ENV} must be "off" (benchmarks only) or unset, not ${JSON.stringify(v)}`);
  log.error(
    { env: BENCH_RECORDING_ENV },
    "BENCHMARK MODE: Postgres statements are NOT recorded (no audit record, no policy trail). Never run a real gateway like this; unset the variable.",
  );
  return {
    // Same shape as a real record: one id per statement, so completions have something to name.
    record: async (rows) => rows.map(() => randomUUID()),
    complete: () => undefined,
  };
}
