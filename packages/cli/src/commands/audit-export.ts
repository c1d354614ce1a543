import type { Command } from "commander";

/** `airlock audit export` / `airlock audit search` (placeholder until the search work lands). */
export function registerAuditExport(_audit: Command): void {}
