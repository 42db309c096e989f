/**
 * API key settings in the browser: an owner restricts a key's models and rate, the row says so and
 * the gateway refuses another model at once; rolling shows the new secret once, and it works.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('API key settings in the browser', () => {
  let upstream: FakeUpstream | undefined;
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
  const chat = (key: string, model: string) => rawChat(app, key, { model, messages: [{ role: 'user', content: 'hi' }] });

  it('restricts models and rate, then rolls the key with a grace period', async () => {
    const owner = await newOwner(app, 'Kim Keys');
    const { orgId, apiKeyId, key } = await gatewaySetup(app, owner, { name: 'Key Settings Co' });
    const page = await world.page(owner.cookies);
    try {
      await page.goto(`${app.url}/org/${orgId}/keys`);
      const row = page.getByTestId(`api-key-${apiKeyId}`);
      await row.waitFor(WAIT);
      await page.getByRole('button', { name: 'Settings of test key' }).click();
      await page.getByLabel('Requests per minute').fill('120');
      await page.getByLabel('Allowed models').fill('openai/*');
      await page.screenshot({ path: artifact('api-key-settings-desktop.png'), fullPage: true });
      await page.getByRole('button', { name: 'Save settings' }).click();
      await row.filter({ hasText: '120 req/min · models: openai/*' }).waitFor(WAIT);
      expect((await chat(key, 'openai/gpt-4o-mini')).status).toBe(200);
      expect((await chat(key, 'anthropic/claude-haiku-4-5')).status).toBe(403);

      await page.getByRole('button', { name: 'Roll test key' }).click();
      await page.getByLabel('Old secret').selectOption('3600');
      await page.getByRole('button', { name: 'Roll key' }).click();
      const secret = page.getByTestId('new-api-key');
      await secret.waitFor(WAIT);
      const rolled = await secret.inputValue();
      expect(rolled).toMatch(/^sk-gw-/);
      expect(rolled).not.toBe(key);
      await row.filter({ hasText: 'old secret valid until' }).waitFor(WAIT);
      expect((await chat(rolled, 'openai/gpt-4o-mini')).status).toBe(200);
      expect((await chat(key, 'openai/gpt-4o-mini')).status).toBe(200);

      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByRole('button', { name: 'Settings of test key' }).click();
      await page.getByRole('button', { name: 'Save settings' }).waitFor(WAIT);
      await page.screenshot({ path: artifact('api-key-settings-phone.png'), fullPage: true });
      // Nothing of the form sticks out of the phone's width.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBeLessThanOrEqual(0);
    } catch (err) {
      await page.screenshot({ path: artifact('failure-api-key-settings.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  });
});
