import type { Command } from "commander";

/** `airlock sessions replay ID` (placeholder until the recording work lands). */
export function registerReplay(_sessions: Command): void {}
