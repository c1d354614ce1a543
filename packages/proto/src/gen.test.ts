// The generated code is committed (so builds need no code generator); this
// keeps it honest: regenerating from the .proto must give the same files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect, it } from "vitest";

const pkg = resolve(import.meta.dirname, "..");

it("src/gen matches tunnel.proto", () => {
  const out = mkdtempSync(join(tmpdir(), "airlock-proto-"));
  try {
    const template = join(out, "buf.gen.yaml");
    writeFileSync(template, readFileSync(join(pkg, "buf.gen.yaml"), "utf8").replace("out: src/gen", `out: ${join(out, "gen")}`));
    execFileSync(join(pkg, "node_modules/.bin/buf"), ["generate", "--template", template], {
      cwd: pkg,
      env: { ...process.env, PATH: `${join(pkg, "node_modules/.bin")}:${process.env.PATH}` },
    });
    const rel = "airlock/tunnel/v1/tunnel_pb.ts";
    expect(readFileSync(join(out, "gen", rel), "utf8")).toBe(readFileSync(join(pkg, "src/gen", rel), "utf8"));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

it("the .proto passes buf lint", () => {
  execFileSync(join(pkg, "node_modules/.bin/buf"), ["lint"], { cwd: pkg });
});
