import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "e2e/**/*.test.ts", "bench/**/*.test.mjs"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: e2e files start real processes; keep parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
    pool: "forks",
  },
});
