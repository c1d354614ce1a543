// Drives the test IdP's (oidc-provider devInteractions) pages with a real
// Chromium: login form (any password), consent form, device-code confirm page.
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.AIRLOCK_E2E_CHROMIUM ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface LoginOptions {
  timeoutMs?: number;
  /** Use this context (e.g. to keep an IdP session between calls) instead of a fresh one; it is left open. */
  context?: BrowserContext;
  /** Password typed into the dev login form (any value is accepted). */
  password?: string;
}

export interface LoginResult {
  /** URL of the page finally shown (after any redirects from the matched URL). */
  finalUrl: string;
  /** The first navigation URL that started with untilUrlPrefix (e.g. the callback with code and state). */
  matchedUrl: string;
  /** Visible text of the final page. */
  text: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pageText(page: Page): Promise<string> {
  try {
    return await page.locator("body").innerText({ timeout: 2_000 });
  } catch {
    return await page.content().catch(() => "");
  }
}

async function present(page: Page, selector: string): Promise<boolean> {
  try {
    return (await page.locator(selector).count()) > 0;
  } catch {
    return false; // page navigating: execution context destroyed
  }
}

/**
 * Watches main-frame navigations; `step` acts on the IdP's pages, waiting for
 * the resulting navigation before looking again (no double submits).
 */
async function drive(
  page: Page,
  username: string,
  password: string,
  deadline: number,
  done: () => Promise<boolean>,
  describe: () => string,
): Promise<void> {
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  let logins = 0;
  const clickAndWait = async (selector: string) => {
    const before = navigations;
    await page.locator(selector).first().click({ timeout: 5_000 });
    while (navigations === before && Date.now() < deadline && !(await done())) await sleep(50);
  };

  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`IdP login did not finish in time (${describe()}); at ${page.url()}:\n${(await pageText(page)).slice(0, 2000)}`);
    await page.waitForLoadState("domcontentloaded").catch(() => {});
    if (await done()) break;

    if (await present(page, 'form input[name="prompt"][value="login"]')) {
      if (++logins > 3) throw new Error(`IdP keeps asking to sign in as ${username} (unknown user?); at ${page.url()}`);
      await page.locator('input[name="login"]').fill(username);
      await page.locator('input[name="password"]').fill(password);
      await clickAndWait('form:has(input[name="prompt"][value="login"]) button[type="submit"]');
    } else if (await present(page, 'form input[name="prompt"][value="consent"]')) {
      await clickAndWait('form:has(input[name="prompt"][value="consent"]) button[type="submit"]');
    } else if (await present(page, 'form[id="op.deviceConfirmForm"]')) {
      await clickAndWait('button[form="op.deviceConfirmForm"]:not([name="abort"])');
    } else if (await present(page, 'form[id="op.deviceInputForm"]')) {
      throw new Error(`IdP rejected the device user code: ${(await pageText(page)).slice(0, 1000)}`);
    } else if ((await page.title().catch(() => "")).startsWith("oops! something went wrong")) {
      throw new Error(`IdP error page at ${page.url()}:\n${(await pageText(page)).slice(0, 2000)}`);
    } else {
      await sleep(50); // redirects, auto-submitting form_post pages, other apps' pages
    }
  }
}

/**
 * Opens url (an authorization URL at the test IdP, possibly reached via a
 * redirect from the gateway), signs in as username at the dev login form,
 * approves consent, and follows redirects until a navigation to a URL starting
 * with untilUrlPrefix happened and the resulting page loaded.
 */
export async function completeLogin(
  browser: Browser,
  url: string,
  username: string,
  untilUrlPrefix: string,
  opts: LoginOptions = {},
): Promise<LoginResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const context = opts.context ?? (await browser.newContext());
  try {
    const page = await context.newPage();
    let matchedUrl: string | undefined;
    let committedAfterMatch = false;
    page.on("request", (r) => {
      try {
        if (!matchedUrl && r.isNavigationRequest() && r.frame() === page.mainFrame() && r.url().startsWith(untilUrlPrefix)) matchedUrl = r.url();
      } catch {
        /* request without a frame */
      }
    });
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame() && matchedUrl) committedAfterMatch = true;
    });
    // The target may answer with no page at all (closed CLI loopback): treat
    // the navigation error as the end once the prefix was reached.
    page.on("requestfailed", (r) => {
      if (matchedUrl && r.url() === matchedUrl) committedAfterMatch = true;
    });
    await page.goto(url, { waitUntil: "domcontentloaded", timeout: timeoutMs }).catch((err: unknown) => {
      if (!matchedUrl) throw err;
    });
    await drive(page, username, opts.password ?? "any-password", deadline, async () => committedAfterMatch, () => `waiting for ${untilUrlPrefix}`);
    await page.waitForLoadState("domcontentloaded", { timeout: Math.max(1_000, deadline - Date.now()) }).catch(() => {});
    return { finalUrl: page.url(), matchedUrl: matchedUrl!, text: await pageText(page) };
  } finally {
    if (!opts.context) await context.close();
  }
}

/**
 * Opens a device verification_uri_complete, confirms the user code, signs in,
 * consents; resolves when the IdP shows its "Sign-in Success" page.
 */
export async function completeDeviceLogin(
  browser: Browser,
  verificationUriComplete: string,
  username: string,
  opts: LoginOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const context = opts.context ?? (await browser.newContext());
  try {
    const page = await context.newPage();
    await page.goto(verificationUriComplete, { waitUntil: "domcontentloaded", timeout: timeoutMs });
    const succeeded = async () => (await page.title().catch(() => "")) === "Sign-in Success";
    await drive(page, username, opts.password ?? "any-password", deadline, succeeded, () => "waiting for the device sign-in success page");
  } finally {
    if (!opts.context) await context.close();
  }
}
