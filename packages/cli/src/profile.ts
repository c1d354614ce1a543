import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";

/** What `airlock login` saves. The token is a secret: the file is 0600. */
export interface Profile {
  gateway: string;
  token: string;
  /** From a browser/device sign-in: renews the token shortly before it expires. */
  refreshToken?: string;
  expiresAt?: string;
}

export function profilePath(env = process.env): string {
  const base = env.AIRLOCK_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(os.homedir(), ".config"), "airlock");
  return join(base, "profile.json");
}

export async function loadProfile(env = process.env): Promise<Profile | null> {
  try {
    return JSON.parse(await readFile(profilePath(env), "utf8")) as Profile;
  } catch {
    return null;
  }
}

export async function saveProfile(p: Profile, env = process.env): Promise<string> {
  const file = profilePath(env);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(p, null, 2) + "\n", { mode: 0o600 });
  // mode applies only when the file is created: an older, laxer profile is tightened (it now holds refresh tokens).
  await chmod(file, 0o600);
  return file;
}

/** Flags, then AIRLOCK_URL / AIRLOCK_TOKEN, then the saved profile. */
export async function resolveTarget(flags: { gateway?: string; token?: string }, env = process.env): Promise<{ gateway?: string; token?: string }> {
  let profile = flags.gateway && flags.token ? null : await loadProfile(env);
  if (profile?.refreshToken && !flags.token && !env.AIRLOCK_TOKEN) profile = await (await import("./commands/login.js")).refreshIfNeeded(profile);
  const gateway = (flags.gateway ?? env.AIRLOCK_URL ?? profile?.gateway)?.replace(/\/$/, "");
  // The saved token belongs to the saved gateway: never send it to another one.
  const profileToken = profile && gateway === profile.gateway.replace(/\/$/, "") ? profile.token : undefined;
  return { gateway, token: flags.token ?? env.AIRLOCK_TOKEN ?? (profileToken || undefined) };
}
