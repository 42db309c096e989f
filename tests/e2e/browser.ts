/** Launching Debian's Chromium for the browser tests (never a downloaded browser). */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

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
