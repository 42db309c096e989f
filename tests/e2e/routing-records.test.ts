/**
 * Routing records in Chromium (issue #11): a call that failed over to the organization's second
 * OpenAI key carries a marker in the request log, and its drawer lists the attempts (provider, key,
 * status, latency, error); the Provider keys page shows and edits each key's weight with its share
 * of the provider's calls; the Analytics provider card counts retries and fallbacks. Screenshots at
 * 1440x900 and 390x844 go to test-artifacts/e2e/.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, grantCredits, meterOf, rawChat } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld, signedInContext } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('routing records in the browser', () => {
  let upstream: FakeUpstream;
  const world = browserWorld(
    async () => {
      upstream = await startFakeUpstream({ record: false });
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

  async function sized(cookies: Map<string, string>, viewport: { width: number; height: number }): Promise<Page> {
    const context = await signedInContext(world.browser, app.url, cookies, viewport);
    world.contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => console.error('[browser error]', err.message));
    return page;
  }

  it('marks a call that failed over, lists its attempts in the drawer, and edits key weights', async () => {
    try {
      await scenario();
    } catch (err) {
      await world.screenshotAll('failure-routing-records');
      throw err;
    }
  }, 120_000);

  async function scenario() {
    const owner = await signUp(app.url, 'Rita Routes');
    const { organization: org, defaultProject } = await owner.client.organization.create.mutate({ name: 'Failover Co' });
    await grantCredits(app, org.id, '20');
    await owner.client.project.update.mutate({ projectId: defaultProject.id, mode: 'provider-keys' });
    const { key, apiKey } = await owner.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'Support bot' });
    await owner.client.providerKey.create.mutate({ orgId: org.id, provider: 'openai', name: 'primary', key: 'sk-e2e-primary-0001', weight: 100 });
    await owner.client.providerKey.create.mutate({ orgId: org.id, provider: 'openai', name: 'backup', key: 'sk-e2e-backup-00002' });
    upstream.faults = [{ status: 401, authorization: 'Bearer sk-e2e-primary-0001' }];
    let failedOver = false;
    for (let i = 0; i < 6 && !failedOver; i++) {
      const res = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `Hello ${i} [chunks:2]` }] });
      expect(res.status).toBe(200);
      failedOver = res.headers.get('x-gateway-attempts') === '2';
    }
    upstream.faults = [];
    expect(failedOver).toBe(true);
    // And one that fell back across providers (recorded as the router would), for the provider card.
    meterOf(app).record({
      orgId: org.id, projectId: defaultProject.id, apiKeyId: apiKey.id, endpoint: 'chat.completions', provider: 'anthropic', model: 'claude-haiku-4-5',
      inputTokens: 12, outputTokens: 4, cachedTokens: 0, cacheWriteTokens: 0, costNanos: 0n, paidBy: 'provider_key', latencyMs: 1480, ttftMs: null, status: 200, error: null,
      cached: false, streamed: false, canceled: false, requestBody: null, responseBody: null, createdAt: new Date(),
      attempts: [
        { provider: 'openai', model: 'gpt-4o-mini', keyName: 'backup', providerKeyId: null, status: 0, latencyMs: 1500, error: 'openai did not answer within 1.5 s (timeout before headers)' },
        { provider: 'openai', model: 'gpt-4o-mini', keyName: 'primary', providerKeyId: null, status: 503, latencyMs: 35, error: 'openai failed (HTTP 503): overloaded' },
        { provider: 'anthropic', model: 'claude-haiku-4-5', keyName: 'anthropic', providerKeyId: null, status: 200, latencyMs: 410, error: null },
      ],
    });
    await flushUsage(app);

    const base = `${app.url}/org/${org.id}`;
    for (const [size, viewport] of [['desktop', { width: 1440, height: 900 }], ['phone', { width: 390, height: 844 }]] as const) {
      const page = await sized(owner.cookies, viewport);
      await page.goto(`${base}/logs`);
      const rows = page.getByTestId('logs').locator('tbody tr');
      await rows.first().waitFor(WAIT);
      const marked = rows.filter({ has: page.getByTestId('failover-marker') });
      expect(await marked.count()).toBeGreaterThanOrEqual(2);
      await expect.poll(() => marked.first().getByTestId('failover-marker').textContent()).toContain('3 attempts');
      await page.screenshot({ path: artifact(`routing-records-log-list-${size}.png`), fullPage: false });

      // The cross-provider fallback (newest): three attempts, the last answered.
      await marked.first().click();
      const attempts = page.getByTestId('log-detail').getByTestId('log-attempts').locator('tbody tr');
      await attempts.nth(2).waitFor(WAIT);
      expect(await attempts.count()).toBe(3);
      expect(await attempts.nth(0).textContent()).toContain('No response');
      expect(await attempts.nth(0).textContent()).toContain('timeout before headers');
      expect(await attempts.nth(2).textContent()).toContain('anthropic');
      await page.screenshot({ path: artifact(`routing-records-drawer-${size}.png`), fullPage: false });

      // The gateway's own failover: the refused key, then the one that answered.
      await page.getByTestId('log-detail').getByRole('button', { name: 'Close' }).click();
      await marked.nth(1).click();
      const keyAttempts = page.getByTestId('log-detail').getByTestId('log-attempts').locator('tbody tr');
      await keyAttempts.nth(1).waitFor(WAIT);
      expect(await keyAttempts.nth(0).textContent()).toMatch(/primary.*401/);
      expect(await keyAttempts.nth(1).textContent()).toMatch(/backup.*200/);

      // Provider keys: weights, their shares, and the explanation.
      await page.goto(`${base}/provider-keys`);
      await page.getByTestId('provider-keys').locator('tbody tr').nth(1).waitFor(WAIT);
      expect(await page.getByTestId('weight-explanation').textContent()).toContain('Calls are spread across keys of one provider by weight');
      const weights = page.getByTestId('provider-key-weight');
      // 100 and 1 at first; the desktop pass sets the backup's weight to 25 (so the phone sees 100 of 125).
      expect(await weights.nth(0).textContent()).toMatch(size === 'desktop' ? /100.*99% of OpenAI calls/ : /100.*80% of OpenAI calls/);
      if (size === 'desktop') {
        await page.getByRole('button', { name: 'Weight of OpenAI backup' }).click();
        const dialog = page.getByRole('dialog');
        await dialog.getByLabel('Weight').fill('0');
        await dialog.getByRole('button', { name: 'Save weight' }).click();
        await dialog.getByText('Weight is a whole number from 1 to 100.').waitFor(WAIT);
        await dialog.getByLabel('Weight').fill('25');
        await dialog.getByRole('button', { name: 'Save weight' }).click();
        await expect.poll(() => weights.nth(1).textContent()).toMatch(/25.*20% of OpenAI calls/);
      }
      await page.screenshot({ path: artifact(`routing-records-provider-keys-${size}.png`), fullPage: true });

      // Analytics: the provider card counts retries and fallbacks.
      await page.goto(`${base}/analytics`);
      const routing = page.getByTestId('provider-routing');
      await routing.waitFor(WAIT);
      expect(await routing.textContent()).toMatch(/anthropic/);
      await routing.scrollIntoViewIfNeeded();
      await page.screenshot({ path: artifact(`routing-records-analytics-${size}.png`), fullPage: false });
    }
  }
});
