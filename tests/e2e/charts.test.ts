/**
 * Charts that tell the truth, in the browser: a new organization's Overview and Analytics show an
 * empty state (no flat line at zero); the first requests (all in one hourly bucket) draw bars that
 * stand on the zero line, the legend shows no dashes at rest, money axes carry the dollar sign,
 * and the balance shows usage below a cent. Screenshots of both pages at 1440x900 and 390x844,
 * light and dark, go to test-artifacts/e2e/.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestApp } from '../helpers/app.js';
import { startTestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

const SIZES = [
  { name: '1440', width: 1440, height: 900 },
  { name: '390', width: 390, height: 844 },
] as const;

/** Whether the canvas of a chart has a pixel of `rgb` in its bottom rows of the plotting area (bars stand on zero). */
async function barsTouchZero(page: Page, testId: string, rgb: [number, number, number]): Promise<boolean> {
  return page.getByTestId(testId).evaluate((host, color) => {
    const canvas = host.querySelector('canvas')!;
    const over = host.querySelector('.u-over')!.getBoundingClientRect();
    const box = canvas.getBoundingClientRect();
    const scale = canvas.width / box.width;
    const ctx = canvas.getContext('2d')!;
    // Three CSS pixels above the plotting area's bottom edge, across its whole width.
    const y = Math.round((over.bottom - box.top - 3) * scale);
    const row = ctx.getImageData(Math.round((over.left - box.left) * scale), y, Math.round(over.width * scale), 1).data;
    for (let i = 0; i < row.length; i += 4) {
      if (Math.abs(row[i]! - color[0]) < 12 && Math.abs(row[i + 1]! - color[1]) < 12 && Math.abs(row[i + 2]! - color[2]) < 12 && row[i + 3]! > 200) return true;
    }
    return false;
  }, rgb);
}

describe.skipIf(SKIP_BROWSER_TESTS)('charts and money in the browser', () => {
  let upstream: FakeUpstream;
  const world = browserWorld(
    async () => {
      upstream = await startFakeUpstream();
      return startTestApp({ env: fakeUpstreamEnv(upstream.url) });
    },
    async () => {
      await upstream?.close();
    },
  );
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  async function chat(key: string, content: string) {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-5', messages: [{ role: 'user', content }] }),
    });
    await res.text();
    return res.status;
  }

  async function screenshots(page: Page, orgId: string, prefix: string) {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const size of SIZES) {
        await page.setViewportSize({ width: size.width, height: size.height });
        for (const name of ['overview', 'analytics'] as const) {
          if (!page.url().endsWith(`/${name}`)) {
            // The side nav is folded away on a phone: click its link without opening it.
            await page.locator(`#side-nav a[href$="/${name}"]`).evaluate((a: HTMLElement) => a.click());
            await page.waitForURL(`**/org/${orgId}/${name}`);
          }
          await page.getByRole('heading', { name: name === 'overview' ? 'Overview' : 'Analytics', level: 1 }).waitFor(WAIT);
          await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
          await page.screenshot({ path: artifact(`${prefix}-${name}-${size.name}-${scheme}.png`), fullPage: true });
        }
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 820 });
  }

  it('shows an empty state before traffic, then bars from zero, and the balance moving below a cent', async () => {
    try {
      const owner = await newOwner(app, 'Cora Charts');
      const { orgId, key } = await gatewaySetup(app, owner, { credits: '10', name: 'Chart Co' });
      const page = await world.page(owner.cookies);

      // A new organization: an empty state in place of the charts, on both pages.
      await page.goto(`${app.url}/org/${orgId}/overview`);
      await page.getByTestId('overview-requests').filter({ hasText: /^0$/ }).waitFor(WAIT);
      await page.getByTestId('no-traffic').getByText('No requests in the last 24 hours').waitFor(WAIT);
      expect(await page.getByTestId('overview-requests-chart').count()).toBe(0);
      await page.getByTestId('no-traffic').getByRole('link', { name: 'Create an API key' }).waitFor(WAIT);
      await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Analytics' }).click();
      await page.getByTestId('no-traffic').getByText('No requests in the last 7 days').waitFor(WAIT);
      expect(await page.locator('.chart canvas').count()).toBe(0);
      await screenshots(page, orgId, 'charts-empty');

      // Traffic, all in the current hour: 2,000 output tokens of gpt-5 at $10/M = $0.02 a call, and one of 300 ($0.003).
      await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Overview' }).click();
      await page.waitForURL(`**/org/${orgId}/overview`);
      expect(await chat(key, 'hello [chunks:2000]')).toBe(200);
      expect(await chat(key, 'again [chunks:2000]')).toBe(200);
      expect(await chat(key, 'small [chunks:300]')).toBe(200);
      await page.getByTestId('overview-requests').filter({ hasText: /^3$/ }).waitFor(WAIT);
      const chart = page.getByTestId('overview-requests-chart');
      await chart.locator('canvas').waitFor(WAIT);
      await expect.poll(() => chart.getAttribute('data-y-min'), WAIT).toBe('0');
      // The requests bar of the one bucket stands on the zero line (#4f46e5).
      await expect.poll(() => barsTouchZero(page, 'overview-requests-chart', [79, 70, 229]), WAIT).toBe(true);
      // At rest the legend names the series, with no dashes for values.
      const legend = await chart.locator('.u-legend').innerText();
      expect(legend).toContain('Requests');
      expect(legend).not.toMatch(/--|—/);
      // The balance shows usage below a cent: $10 - $0.043 - the prompts' input tokens, not "$9.96".
      await expect.poll(async () => (await page.getByTestId('credits').innerText()).trim(), WAIT).toMatch(/^\$9\.95\d{1,2}$/);
      const credits = (await page.getByTestId('credits').innerText()).trim();
      expect((await page.getByTestId('overview-balance').innerText()).trim()).toBe(credits);

      // Analytics: bars from zero, money axis with its sign, breakdowns as bars with their names.
      await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Analytics' }).click();
      await page.waitForURL(`**/org/${orgId}/analytics`);
      await page.getByTestId('summary-requests').filter({ hasText: /^3$/ }).waitFor(WAIT);
      await page.getByTestId('requests-chart').locator('canvas').waitFor(WAIT);
      await expect.poll(() => page.getByTestId('requests-chart').getAttribute('data-y-min'), WAIT).toBe('0');
      await expect.poll(() => barsTouchZero(page, 'requests-chart', [79, 70, 229]), WAIT).toBe(true);
      await page.getByTestId('tokens-by-model').getByText('gpt-5', { exact: true }).waitFor(WAIT);
      await page.getByTestId('requests-by-provider').getByText('openai', { exact: true }).waitFor(WAIT);
      // The hovered bucket (the current hour, the last of 168: about 2 px wide) fills the legend with its values.
      const over = await page.getByTestId('requests-chart').locator('.u-over').boundingBox();
      await page.mouse.move(over!.x + over!.width - 1, over!.y + over!.height - 4);
      await page.getByTestId('requests-chart').locator('.u-legend').getByText('3', { exact: true }).waitFor(WAIT);
      await page.mouse.move(0, 0);
      await screenshots(page, orgId, 'charts-traffic');
    } catch (err) {
      await world.screenshotAll('failure-charts');
      throw err;
    }
  }, 120_000);
});
