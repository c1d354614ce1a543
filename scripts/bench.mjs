#!/usr/bin/env node
// `pnpm bench <name> [args]` runs bench/<name>.mjs's exported run(args).
// A file is a bench when its first line is `// bench: <description>`; the
// other files in bench/ are helpers (target server, ssh setup) and are not
// listed or runnable here.
import fs from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const BENCH_DIR = join(import.meta.dirname, "..", "bench");
const MARKER = /^\/\/ bench: (.+)$/;

function benches() {
  const out = new Map();
  if (!fs.existsSync(BENCH_DIR)) return out;
  for (const f of fs.readdirSync(BENCH_DIR).sort()) {
    if (!f.endsWith(".mjs")) continue;
    const first = fs.readFileSync(join(BENCH_DIR, f), "utf8").split("\n", 1)[0];
    const m = first.match(MARKER);
    if (m) out.set(f.slice(0, -4), m[1]);
  }
  return out;
}

function list(all) {
  const w = Math.max(0, ...[...all.keys()].map((k) => k.length));
  return [...all].map(([k, d]) => `  ${k.padEnd(w)}  ${d}`).join("\n") || "  (none)";
}

const [name, ...args] = process.argv.slice(2);
const all = benches();
if (!name || name === "--help" || name === "-h") {
  process.stdout.write(`Usage: pnpm bench <name> [args]   (pnpm bench <name> --help for its options)\n\nAvailable benches:\n${list(all)}\n`);
  process.exit(name ? 0 : 1);
}
if (!all.has(name)) {
  process.stderr.write(`Unknown bench "${name}". Available benches:\n${list(all)}\n`);
  process.exit(2);
}
const mod = await import(pathToFileURL(join(BENCH_DIR, `${name}.mjs`)).href);
try {
  await mod.run(args);
  process.exit(0);
} catch (err) {
  process.stderr.write(`\nbench ${name} failed: ${err?.stack ?? err}\n`);
  process.exit(1);
}
