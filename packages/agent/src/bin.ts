#!/usr/bin/env node
import { runAgentCli } from "./cli.js";

runAgentCli(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`airlock-agent: ${err.message}\n`);
  process.exit(1);
});
