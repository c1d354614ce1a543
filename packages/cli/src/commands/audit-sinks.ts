import type { Command } from "commander";

/** `airlock audit sinks`: SIEM sink status (placeholder until the SIEM work lands). */
export function registerAuditSinks(_audit: Command): void {}
