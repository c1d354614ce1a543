import type { Command } from "commander";
import { ApiClient } from "./client.js";
import { resolveTarget } from "./profile.js";

/** Global flags every command accepts. */
export interface GlobalFlags {
  gateway?: string;
  token?: string;
  json?: boolean;
}

export function globals(cmd: Command): GlobalFlags {
  return cmd.optsWithGlobals<GlobalFlags>();
}

/** An API client for the gateway and token found by flags, env or profile. */
export async function apiFor(cmd: Command): Promise<ApiClient> {
  const t = await resolveTarget(globals(cmd));
  if (!t.gateway) throw new Error("no gateway: pass --gateway URL, set AIRLOCK_URL or run `airlock login`");
  return new ApiClient(t.gateway, t.token);
}

export function print(cmd: Command, data: unknown, human: () => string): void {
  process.stdout.write(globals(cmd).json ? JSON.stringify(data, null, 2) + "\n" : human());
}
