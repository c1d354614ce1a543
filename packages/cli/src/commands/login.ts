import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Command } from "commander";
import { ApiClient, ApiError } from "../client.js";
import { apiFor, globals, print } from "../context.js";
import { loadProfile, resolveTarget, saveProfile, type Profile } from "../profile.js";

export interface TokenResponse {
  access_token: string;
  expires_at: string;
  refresh_token?: string;
  subject: string;
  roles: string[];
  groups: string[];
  provider: string;
}

type Provider = { name: string; type: "oidc" | "saml"; device: boolean };
type Who = { subject: string; kind: string; method: string; provider: string | null; roles: string[]; groups: string[]; connections: string[] | null; expiresAt: string };

const LOGIN_TIMEOUT_MS = 5 * 60_000;

export function registerLogin(program: Command): void {
  program
    .command("login")
    .description("sign in to a gateway (browser with a loopback redirect, or --device) and save the profile")
    .argument("[gateway]", "gateway API URL, e.g. https://airlock.example.com")
    .option("--provider <name>", "identity provider (when the gateway has several)")
    .option("--device", "device sign-in: print a URL and code to open on any device (headless shells)")
    .option("--no-browser", "print the sign-in URL instead of opening a browser")
    .action(async (gw: string | undefined, o: { provider?: string; device?: boolean; browser: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const gateway = (gw ?? g.gateway ?? process.env.AIRLOCK_URL ?? (await loadProfile())?.gateway)?.replace(/\/$/, "");
      if (!gateway) throw new Error("usage: airlock login GATEWAY_URL [--provider NAME] [--device]");
      // Only an explicit --token is saved; AIRLOCK_TOKEN in the environment stays there.
      const token = g.token;
      let profile: Profile;
      if (token) {
        // A token from an admin (airlock tokens create) or a service account: saved as is.
        profile = { gateway, token };
      } else {
        const anon = new ApiClient(gateway, undefined);
        const { providers } = await anon.get<{ providers: Provider[] }>("/api/v1/auth/providers");
        const p = pickProvider(providers, o.provider, o.device);
        const t = o.device ? await deviceLogin(anon, p) : await browserLogin(anon, p, o.browser);
        profile = { gateway, token: t.access_token, ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}), expiresAt: t.expires_at };
      }
      const who = await new ApiClient(gateway, profile.token).get<Who>("/api/v1/whoami");
      const file = await saveProfile(profile);
      print(cmd, { ...who, profile: file }, () => `Signed in to ${gateway} as ${who.subject} (${who.roles.join(", ")}; groups ${who.groups.join(", ") || "none"}); token expires ${who.expiresAt}${profile.refreshToken ? ", renewed automatically" : ""}.\nProfile saved to ${file}\n`);
    });

  program
    .command("logout")
    .description("end your sign-in: the token stops working everywhere and its live sessions are cut")
    .action(async (_o, cmd: Command) => {
      const api = await apiFor(cmd);
      const r = await api.post<{ tokensRevoked: number; sessionsCut: number }>("/api/v1/auth/logout");
      const p = await loadProfile();
      if (p) await saveProfile({ gateway: p.gateway, token: "" });
      print(cmd, r, () => `Signed out: ${r.tokensRevoked} token(s) revoked, ${r.sessionsCut} live session(s) cut.\n`);
    });

  program
    .command("whoami")
    .description("show who the gateway thinks you are: identity, groups, roles, expiry")
    .action(async (_o, cmd: Command) => {
      const w = await (await apiFor(cmd)).get<Who>("/api/v1/whoami");
      print(cmd, w, () =>
        [
          `subject:     ${w.subject}`,
          `kind:        ${w.kind}`,
          `signed in:   ${w.method}${w.provider ? ` via ${w.provider}` : ""}`,
          `roles:       ${w.roles.join(", ")}`,
          `groups:      ${w.groups.join(", ") || "(none)"}`,
          ...(w.connections ? [`connections: ${w.connections.join(", ")}`] : []),
          `expires:     ${w.expiresAt}`,
        ].join("\n") + "\n",
      );
    });
}

function pickProvider(providers: Provider[], name: string | undefined, device: boolean | undefined): Provider {
  const usable = providers.filter((p) => !device || p.device);
  if (name) {
    const p = providers.find((x) => x.name === name);
    if (!p) throw new Error(`no provider ${name} on this gateway (it has: ${providers.map((x) => x.name).join(", ") || "none"})`);
    if (device && !p.device) throw new Error(`provider ${name} (${p.type}) has no device sign-in`);
    return p;
  }
  if (!usable.length) throw new Error("this gateway has no sign-in provider configured: sign in with --token (ask an admin for one) or configure identity.oidc");
  if (usable.length > 1) throw new Error(`this gateway has several providers; pick one with --provider (${usable.map((p) => p.name).join(", ")})`);
  return usable[0]!;
}

/** Code + PKCE through the gateway: the browser ends at a one-shot loopback server that receives the login code. */
async function browserLogin(api: ApiClient, p: Provider, openBrowser: boolean): Promise<TokenResponse> {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const state = randomBytes(16).toString("base64url");
  let done!: (r: { code?: string; error?: string }) => void;
  const result = new Promise<{ code?: string; error?: string }>((r) => (done = r));
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    if (u.pathname !== "/callback") return void res.writeHead(404).end();
    const error = u.searchParams.get("error");
    const ok = !error && u.searchParams.get("state") === state && !!u.searchParams.get("code");
    const msg = ok ? "Signed in to Airlock. You can close this tab." : `Sign-in failed: ${u.searchParams.get("error_description") ?? error ?? "state mismatch"}`;
    res.writeHead(ok ? 200 : 400, { "content-type": "text/html; charset=utf-8" }).end(`<!doctype html><title>Airlock</title><p>${msg.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`)}</p>`);
    done(ok ? { code: u.searchParams.get("code")! } : { error: msg });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as AddressInfo).port;
    const { authorizationUrl } = await api.post<{ authorizationUrl: string }>("/api/v1/auth/login", { provider: p.name, redirectUri: `http://127.0.0.1:${port}/callback`, codeChallenge: challenge, state });
    process.stderr.write(`To sign in with ${p.name}, open:\n\n  ${authorizationUrl}\n\n`);
    if (openBrowser) tryOpen(authorizationUrl);
    const timer = setTimeout(() => done({ error: "timed out waiting for the browser sign-in" }), LOGIN_TIMEOUT_MS);
    const r = await result;
    clearTimeout(timer);
    if (r.error) throw new Error(r.error);
    return await api.post<TokenResponse>("/api/v1/auth/token", { grant_type: "authorization_code", code: r.code, code_verifier: verifier });
  } finally {
    server.close();
  }
}

async function deviceLogin(api: ApiClient, p: Provider): Promise<TokenResponse> {
  const d = await api.post<{ deviceCode: string; userCode: string; verificationUri: string; verificationUriComplete?: string; interval: number; expiresIn: number }>("/api/v1/auth/device", { provider: p.name });
  process.stderr.write(`To sign in with ${p.name}, open ${d.verificationUri} and enter the code ${d.userCode}\n(or open ${d.verificationUriComplete ?? d.verificationUri})\n`);
  let interval = Math.max(1, d.interval);
  const deadline = Date.now() + d.expiresIn * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, interval * 1000));
    try {
      return await api.post<TokenResponse>("/api/v1/auth/token", { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: d.deviceCode });
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "LOGIN_PENDING") throw err;
      if (/slow down/.test(err.message)) interval += 5;
    }
  }
  throw new Error("the device sign-in expired before it was approved");
}

function tryOpen(url: string): void {
  // Only web addresses: the URL comes from the gateway, and an opener would run a local file too.
  if (!/^https?:\/\//i.test(url)) return;
  const cmd = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  try {
    spawn(cmd, [url], { stdio: "ignore", detached: true }).on("error", () => {}).unref();
  } catch {
    // No browser here: the URL is printed above.
  }
}

/** Renews a profile's access token with its refresh token when it is about to expire. */
export async function refreshIfNeeded(p: Profile): Promise<Profile> {
  if (!p.refreshToken || !p.expiresAt || new Date(p.expiresAt).getTime() - Date.now() > 60_000) return p;
  try {
    const t = await new ApiClient(p.gateway, undefined).post<TokenResponse>("/api/v1/auth/token", { grant_type: "refresh_token", refresh_token: p.refreshToken });
    const next: Profile = { gateway: p.gateway, token: t.access_token, ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}), expiresAt: t.expires_at };
    await saveProfile(next);
    return next;
  } catch {
    // The gateway will answer the stale token with its own reason (expired, signed out).
    return p;
  }
}

export { resolveTarget };
