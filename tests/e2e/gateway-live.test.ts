/**
 * The gateway pages in the browser: the owner creates an API key on the API keys page (shown once),
 * traffic through /v1/chat/completions with that key moves the Overview's requests figure, chart
 * and credits card without a reload; Analytics, the request log (with its detail view) and the
 * provider keys page render. Screenshots at 1280 and 390 px go to test-artifacts/e2e/.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { grantCredits } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('gateway pages in the browser', () => {
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
  const contexts = world.contexts;
  beforeAll(() => {
    app = world.app;
  });

  const pageFor = (cookies: Map<string, string>): Promise<Page> => world.page(cookies);

  async function chat(key: string, content: string, stream = false) {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-5', messages: [{ role: 'user', content }], stream }),
    });
    await res.text();
    return res.status;
  }

  it('creates a key in the UI; traffic moves the overview chart and credits live', async () => {
    try {
      await scenario();
    } catch (err) {
      for (const [i, c] of contexts.entries()) {
        for (const p of c.pages()) await p.screenshot({ path: artifact(`failure-gateway-${i}.png`), fullPage: true }).catch(() => {});
      }
      throw err;
    }
  }, 60_000);

  async function scenario() {
    const owner = await signUp(app.url, 'Gia Gateway');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Traffic Co' });
    await grantCredits(app, org.id, '10');
    const base = `${app.url}/org/${org.id}`;
    const page = await pageFor(owner.cookies);

    // Create an API key through the UI; it is shown once, with a snippet.
    await page.goto(`${base}/keys`);
    await page.getByRole('heading', { name: 'API keys', level: 1 }).waitFor(WAIT);
    await page.getByText('No API keys in this project yet').waitFor(WAIT);
    await page.getByRole('button', { name: 'New API key' }).click();
    await page.getByLabel('Key name').fill('Browser key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const keyField = page.getByTestId('new-api-key');
    await keyField.waitFor(WAIT);
    const key = await keyField.inputValue();
    expect(key).toMatch(/^sk-gw-[A-Za-z0-9]{40}$/);
    await page.getByText(`new OpenAI({ baseURL: '${app.url}/v1'`).waitFor(WAIT);
    await page.getByTestId('api-keys').locator('tbody tr').filter({ hasText: 'Browser key' }).filter({ hasText: key.slice(0, 12) }).waitFor(WAIT);
    await page.screenshot({ path: artifact('owner-api-keys-1280.png'), fullPage: true });

    // To the Overview inside the app; it stays open, never reloaded.
    await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Overview' }).click();
    await page.waitForURL(`**/org/${org.id}/overview`);
    await page.getByTestId('overview-requests').filter({ hasText: /^0$/ }).waitFor(WAIT);
    await page.getByTestId('credits').filter({ hasText: '$10.00' }).waitFor(WAIT);
    // No traffic yet: an empty state in place of the chart (which appears with the first request).
    await page.getByTestId('no-traffic').waitFor(WAIT);
    await page.getByText('Live', { exact: true }).waitFor(WAIT);
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    // Traffic: 2,000 output tokens of gpt-5 at $10/M = $0.02 a call.
    expect(await chat(key, 'hello [chunks:2000]')).toBe(200);
    expect(await chat(key, 'again [chunks:2000]')).toBe(200);
    expect(await chat(key, 'streamed [chunks:2000]', true)).toBe(200);
    await page.getByTestId('overview-requests').filter({ hasText: /^3$/ }).waitFor(WAIT);
    await page.getByTestId('overview-requests-chart').locator('canvas').waitFor(WAIT);
    // $10 - 3 x $0.02 - the prompts' input tokens (a few thousandths of a cent), shown to 4 decimals.
    await page.getByTestId('credits').filter({ hasText: /^\$9\.9(4|39\d)$/ }).waitFor(WAIT);
    await page.getByTestId('overview-balance').filter({ hasText: /^\$9\.9(4|39\d)$/ }).waitFor(WAIT);
    // The chart's legend shows the latest bucket's requests when hovered; the series has 3 in the current hour.
    const box = await page.getByTestId('overview-requests-chart').locator('.u-over').boundingBox();
    expect(box).not.toBeNull();
    await page.mouse.move(box!.x + box!.width - 2, box!.y + box!.height / 2);
    await page.getByTestId('overview-requests-chart').locator('.u-legend').getByText('3', { exact: true }).first().waitFor(WAIT);
    await page.mouse.move(0, 0);
    // One more moves it again, still without a reload.
    expect(await chat(key, 'one more [chunks:2000]')).toBe(200);
    await page.getByTestId('overview-requests').filter({ hasText: /^4$/ }).waitFor(WAIT);
    await page.getByTestId('credits').filter({ hasText: /^\$9\.9(2|19\d)$/ }).waitFor(WAIT);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await page.screenshot({ path: artifact('owner-overview-1280.png'), fullPage: true });

    // Analytics: cards and charts.
    await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Analytics' }).click();
    await page.waitForURL(`**/org/${org.id}/analytics`);
    await page.getByTestId('summary-requests').filter({ hasText: /^4$/ }).waitFor(WAIT);
    await page.getByTestId('summary-cost').filter({ hasText: '$0.08' }).waitFor(WAIT);
    await page.getByTestId('requests-chart').locator('canvas').waitFor(WAIT);
    // Four time charts; the breakdowns (by model, by provider) are bar lists.
    expect(await page.locator('.chart canvas').count()).toBe(4);
    await page.getByTestId('tokens-by-model').filter({ hasText: 'gpt-5' }).waitFor(WAIT);
    await page.getByTestId('requests-by-provider').filter({ hasText: 'openai' }).waitFor(WAIT);
    await page.getByLabel('Range', { exact: true }).selectOption('30d');
    await page.getByTestId('summary-requests').filter({ hasText: /^4$/ }).waitFor(WAIT);
    await page.getByLabel('Range', { exact: true }).selectOption('24h');
    await page.getByTestId('summary-requests').filter({ hasText: /^4$/ }).waitFor(WAIT);
    await page.screenshot({ path: artifact('owner-analytics-1280.png'), fullPage: true });

    // Request log with the detail view.
    await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Request log' }).click();
    const rows = page.getByTestId('logs').locator('tbody tr');
    await rows.nth(3).waitFor(WAIT);
    expect(await rows.count()).toBe(4);
    await rows.first().getByRole('button', { name: /Details/ }).click();
    const detail = page.getByTestId('log-detail');
    await detail.getByText('gpt-5', { exact: false }).first().waitFor(WAIT);
    await detail.getByText('2,000').first().waitFor(WAIT);
    await page.getByLabel('Status', { exact: true }).selectOption('error');
    await page.getByText('No requests match').waitFor(WAIT);
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await rows.nth(3).waitFor(WAIT);
    // With the detail closed and the list at the top, a new call appears on top while the page is
    // open (merged live, no reload; with a row open it waits behind "N new": tests/e2e/logs-audit.test.ts).
    await detail.getByRole('button', { name: 'Close' }).click();
    await detail.waitFor({ state: 'detached' });
    expect(await chat(key, 'live row [chunks:3]')).toBe(200);
    await rows.nth(4).waitFor(WAIT);
    expect(await rows.count()).toBe(5);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await page.screenshot({ path: artifact('owner-logs-1280.png'), fullPage: true });

    // Provider keys: add one, disable it.
    await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Provider keys' }).click();
    await page.getByText('No provider keys yet').waitFor(WAIT);
    await page.getByRole('button', { name: 'Add provider key' }).click();
    // Bedrock asks for its region and the inference profile Claude is called through.
    await page.getByLabel('Provider', { exact: true }).selectOption('bedrock');
    await page.getByLabel('Inference profile (Claude models)').selectOption('eu');
    await page.screenshot({ path: artifact('owner-provider-key-bedrock-form-1280.png'), fullPage: true });
    await page.getByLabel('Provider', { exact: true }).selectOption('anthropic');
    expect(await page.getByLabel('Inference profile (Claude models)').count()).toBe(0);
    await page.getByLabel('API key', { exact: true }).fill('sk-ant-test-abcd1234');
    await page.getByRole('button', { name: 'Add key' }).click();
    const pkRow = page.getByTestId('provider-keys').locator('tbody tr').filter({ hasText: 'Anthropic' });
    await pkRow.filter({ hasText: '…1234' }).filter({ hasText: 'Active' }).waitFor(WAIT);
    await pkRow.getByRole('button', { name: /^Disable/ }).click();
    await pkRow.filter({ hasText: 'Disabled' }).waitFor(WAIT);
    await page.screenshot({ path: artifact('owner-provider-keys-1280.png'), fullPage: true });

    // Revoke the key in the UI (confirm dialog); the gateway refuses it at once.
    await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'API keys' }).click();
    const keyRow = page.getByTestId('api-keys').locator('tbody tr').filter({ hasText: 'Browser key' });
    await keyRow.getByRole('button', { name: /^Revoke/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
    await keyRow.filter({ hasText: 'Revoked' }).waitFor(WAIT);
    expect(await keyRow.getByRole('button', { name: /^Revoke/ }).count()).toBe(0);
    expect(await chat(key, 'after revoke')).toBe(401);

    // Phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/overview`);
    await page.getByTestId('overview-requests').filter({ hasText: /^5$/ }).waitFor(WAIT);
    await page.screenshot({ path: artifact('owner-overview-390.png'), fullPage: true });
    await page.goto(`${base}/analytics`);
    await page.getByTestId('summary-requests').filter({ hasText: /^5$/ }).waitFor(WAIT);
    await page.screenshot({ path: artifact('owner-analytics-390.png'), fullPage: true });
  }

  it('tells a developer they have no access to provider keys', async () => {
    const owner = await signUp(app.url, 'Pat Owner');
    const developer = await signUp(app.url, 'Devi Developer');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Keys Co' });
    const invite = await owner.client.team.invite.mutate({ orgId: org.id, email: developer.email, role: 'developer' });
    await developer.client.team.acceptInvitation.mutate({ token: invite.inviteUrl.split('/invite/')[1]! });
    await owner.client.apiKey.create.mutate({ projectId: (await owner.client.project.list.query({ orgId: org.id }))[0]!.id, name: 'Owner key' });
    const page = await pageFor(developer.cookies);
    // A developer sees the owner's key but may not revoke it.
    await page.goto(`${app.url}/org/${org.id}/keys`);
    await page.getByTestId('api-keys').locator('tbody tr').filter({ hasText: 'Owner key' }).waitFor(WAIT);
    expect(await page.getByTestId('api-keys').getByRole('button', { name: /^Revoke/ }).count()).toBe(0);
    await page.goto(`${app.url}/org/${org.id}/provider-keys`);
    await page.getByTestId('provider-keys-no-access').waitFor(WAIT);
    const nav = page.getByRole('navigation', { name: 'Organization' });
    await nav.getByRole('link', { name: 'API keys' }).waitFor(WAIT);
    expect(await nav.getByRole('link', { name: 'Provider keys' }).count()).toBe(0);
  }, 20_000);
});
