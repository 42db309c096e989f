/** Launching Debian's Chromium for the browser tests (never a downloaded browser). */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = resolve('test-artifacts/e2e');

/** Why the browser tests cannot run here, or null when they can. */
export function browserUnavailableReason(): string | null {
  if (!existsSync(CHROMIUM_PATH)) return `no Chromium at ${CHROMIUM_PATH} (install it with: apt-get install -y chromium)`;
  if (!existsSync(resolve('dist/client/index.html'))) return 'the dashboard is not built (run: vite build), so there is nothing to test in a browser';
  return null;
}

export async function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export function artifact(name: string): string {
  return resolve(ARTIFACTS_DIR, name);
}

/** A browser context already signed in with the session of an API-created user. */
export async function signedInContext(browser: Browser, baseUrl: string, cookies: Map<string, string>, viewport = { width: 1280, height: 820 }) {
  const context = await browser.newContext({ viewport });
  await context.addCookies([...cookies].map(([name, value]) => ({ name, value, url: baseUrl })));
  return context;
}

/** Why this machine cannot run the browser tests (null when it can). */
export const BROWSER_UNAVAILABLE = browserUnavailableReason();
/** Under CI=true the browser tests must run: a missing Chromium fails them instead of skipping. */
export const BROWSER_REQUIRED = process.env.CI === 'true';
/** For describe.skipIf(): skip only when the browser is missing and the run is not CI. */
export const SKIP_BROWSER_TESTS = !!BROWSER_UNAVAILABLE && !BROWSER_REQUIRED;
if (SKIP_BROWSER_TESTS) console.warn(`[e2e] skipping browser tests: ${BROWSER_UNAVAILABLE}`);

export const WAIT = { timeout: 10_000 };

export interface BrowserWorld {
  readonly app: TestApp;
  readonly browser: Browser;
  /** Every context opened through `page`, closed after the file (and screenshotted by `screenshotAll`). */
  readonly contexts: BrowserContext[];
  /** A new page in its own context: signed in with `cookies` when given, else signed out. */
  page(cookies?: Map<string, string>): Promise<Page>;
  /** Leaves a full-page screenshot of every open page, for whoever reads a failure. */
  screenshotAll(prefix: string): Promise<void>;
}

/**
 * The app, Chromium and pages of one browser test file, with their beforeAll/afterAll. Call inside
 * the describe. `start` starts the app (and anything it needs; `stop` undoes those extras).
 */
export function browserWorld(start: () => Promise<TestApp> = () => startTestApp(), stop: () => Promise<void> = async () => {}): BrowserWorld {
  let app: TestApp | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    if (BROWSER_UNAVAILABLE) throw new Error(`browser tests must run under CI=true, but ${BROWSER_UNAVAILABLE}`);
    app = await start();
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await app?.close();
    await stop();
  });
  return {
    get app() {
      if (!app) throw new Error('the app is not started yet');
      return app;
    },
    get browser() {
      if (!browser) throw new Error('the browser is not launched yet');
      return browser;
    },
    contexts,
    async page(cookies) {
      const context = cookies ? await signedInContext(this.browser, this.app.url, cookies) : await this.browser.newContext({ viewport: { width: 1280, height: 820 } });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      page.on('pageerror', (err) => console.error('[browser error]', err.message));
      return page;
    },
    async screenshotAll(prefix) {
      for (const [i, c] of contexts.entries()) {
        for (const [j, p] of c.pages().entries()) await p.screenshot({ path: artifact(`${prefix}-${i}-${j}.png`), fullPage: true }).catch(() => {});
      }
    },
  };
}
