/**
 * The request log's filters live in the URL: choosing them writes the query string, a reload or a
 * shared link opens the same filtered view, and back/forward step through the filter changes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, grantCredits } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('request log filters in the URL', () => {
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
    expect(res.status).toBe(200);
  }

  it('keeps time range, key, status and search through a reload, a shared link and back/forward', async () => {
    const owner = await signUp(app.url, 'Uma Url');
    const { organization: org, defaultProject } = await owner.client.organization.create.mutate({ name: 'Linked Logs' });
    await grantCredits(app, org.id, '20');
    const current = await owner.client.organization.get.query({ orgId: org.id });
    await owner.client.organization.update.mutate({ orgId: org.id, version: current.version, retentionLevel: 'retain' });
    const support = await owner.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'Support bot' });
    const batch = await owner.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'Batch job' });
    await chat(support.key, 'Tell me about apples');
    await chat(support.key, 'Tell me about pears');
    await chat(batch.key, 'Tell me about apples in bulk');
    await flushUsage(app);

    const page = await world.page(owner.cookies);
    try {
      await page.setViewportSize({ width: 1440, height: 900 });
      const base = `${app.url}/org/${org.id}/logs`;
      await page.goto(base);
      const rows = page.getByTestId('logs').locator('tbody tr');
      await rows.nth(2).waitFor(WAIT);

      // Choose filters: each applied change is in the query string.
      await page.getByLabel('Time').selectOption('7d');
      await page.waitForURL(/[?&]range=7d/);
      await page.getByLabel('API key').selectOption(support.apiKey.id);
      await page.waitForURL(/[?&]key=/);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="logs"] tbody tr').length === 2);
      await page.getByLabel('Status').selectOption('success');
      await page.waitForURL(/[?&]status=success/);
      await page.getByRole('searchbox').fill('apples');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.waitForURL(/[?&]q=apples/);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="logs"] tbody tr').length === 1);
      const filtered = new URL(page.url());
      expect(Object.fromEntries(filtered.searchParams)).toEqual({ range: '7d', key: support.apiKey.id, status: 'success', q: 'apples' });

      // A reload opens the same filtered view, the controls showing the filters.
      await page.reload();
      await rows.first().waitFor(WAIT);
      expect(await rows.count()).toBe(1);
      expect(await page.getByLabel('Time').inputValue()).toBe('7d');
      expect(await page.getByLabel('API key').inputValue()).toBe(support.apiKey.id);
      expect(await page.getByLabel('Status').inputValue()).toBe('success');
      expect(await page.getByRole('searchbox').inputValue()).toBe('apples');
      await page.screenshot({ path: artifact('logs-filters-url-1440.png'), fullPage: true });

      // Back steps to the view before the search (two rows of the support key), forward returns.
      await page.goBack();
      await page.waitForURL((u) => !u.searchParams.has('q') && u.searchParams.get('status') === 'success');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="logs"] tbody tr').length === 2);
      expect(await page.getByRole('searchbox').inputValue()).toBe('');
      await page.goForward();
      await page.waitForURL(/[?&]q=apples/);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="logs"] tbody tr').length === 1);
      expect(await page.getByRole('searchbox').inputValue()).toBe('apples');

      // The link, shared: a phone opens the same view. Malformed values fall back to the defaults.
      const phone = await world.page(owner.cookies);
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(filtered.toString());
      await phone.getByTestId('logs').locator('tbody tr').first().waitFor(WAIT);
      expect(await phone.getByTestId('logs').locator('tbody tr').count()).toBe(1);
      await phone.screenshot({ path: artifact('logs-filters-url-390.png'), fullPage: true });
      await phone.goto(`${base}?range=forever&status=maybe`);
      await phone.getByTestId('logs').locator('tbody tr').nth(2).waitFor(WAIT);
      expect(await phone.getByTestId('logs').locator('tbody tr').count()).toBe(3);

      // Clearing the filters clears the query string.
      await page.getByRole('button', { name: 'Clear filters' }).click();
      await page.waitForURL((u) => u.search === '');
      await rows.nth(2).waitFor(WAIT);
    } catch (err) {
      await world.screenshotAll('failure-logs-filters-url');
      throw err;
    }
  }, 90_000);
});
