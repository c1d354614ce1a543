import type { Command } from "commander";
import { registerAuditExport } from "./audit-export.js";
import { registerAuditSinks } from "./audit-sinks.js";

/** `airlock audit …`: verify, keys (this file), sinks (audit-sinks.ts), export and search (audit-export.ts). */
export function registerAudit(program: Command): Command {
  const audit = program.command("audit").description("tamper evidence, search, export and SIEM delivery of the audit record");
  registerAuditSinks(audit);
  registerAuditExport(audit);
  return audit;
}
