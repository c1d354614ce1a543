// Runs the whole suite with vitest and ends with the plain summary line
// "N passed, N failed" that CI reads; exit code is vitest's.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = join(tmpdir(), `airlock-vitest-${process.pid}.json`);
const child = spawn(
  process.execPath,
  ["node_modules/vitest/vitest.mjs", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);
child.on("exit", (code, signal) => {
  try {
    const r = JSON.parse(readFileSync(out, "utf8"));
    process.stdout.write(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped\n`);
    rmSync(out, { force: true });
  } catch {
    process.stdout.write("\nvitest produced no report\n");
  }
  process.exit(code ?? (signal ? 1 : 0));
});
