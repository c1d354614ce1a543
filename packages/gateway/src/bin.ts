#!/usr/bin/env node
import { runGatewayCli } from "./run.js";

runGatewayCli().catch((err: Error) => {
  process.stderr.write(`airlock-gateway: ${err.message}\n`);
  process.exit(1);
});
