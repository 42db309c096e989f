/**
 * The request log under live traffic and the audit log's filters, in Chromium. A row opens in a
 * drawer showing the conversation (raw JSON one tab away); while it is open, new calls wait behind
 * "N new" and the list and the drawer do not move; the search finds text in kept bodies. The audit
 * log names actions in words, filters by action and actor, and takes a new entry live. The
 * transactions page shows this hour's usage as one row. Screenshots at 1440x900 and 390x844 go
 * to test-artifacts/e2e/.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, grantCredits } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld, signedInContext } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('request log and audit log in the browser', () => {
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
      body: JSON.stringify({ model: 'openai/gpt-5', messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content }] }),
    });
    await res.text();
    expect(res.status).toBe(200);
  }

  async function sized(cookies: Map<string, string>, viewport: { width: number; height: number }): Promise<Page> {
    const context = await signedInContext(world.browser, app.url, cookies, viewport);
    world.contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => console.error('[browser error]', err.message));
    return page;
  }

  it('keeps the open log still under live traffic, queues new rows, searches bodies; filters the audit log', async () => {
    try {
      await scenario();
    } catch (err) {
      await world.screenshotAll('failure-logs-audit');
      throw err;
    }
  }, 90_000);

  async function scenario() {
    const owner = await signUp(app.url, 'Lena Logs');
    const { organization: org, defaultProject } = await owner.client.organization.create.mutate({ name: 'Readable Co' });
    await grantCredits(app, org.id, '20');
    const current = await owner.client.organization.get.query({ orgId: org.id });
    await owner.client.organization.update.mutate({ orgId: org.id, version: current.version, retentionLevel: 'retain' });
    const { key } = await owner.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'Support bot' });
    for (const word of ['apple', 'banana', 'cherry']) await chat(key, `Tell me about the ${word} [chunks:2]`);
    await flushUsage(app);

    const base = `${app.url}/org/${org.id}`;
    const page = await sized(owner.cookies, { width: 1440, height: 900 });
    await page.goto(`${base}/logs`);
    const rows = page.getByTestId('logs').locator('tbody tr');
    await rows.nth(2).waitFor(WAIT);
    expect(await rows.count()).toBe(3);

    // Open the newest row: the drawer shows the conversation, roles and all.
    const newestId = await rows.first().getAttribute('data-log-id');
    await rows.first().click();
    const drawer = page.getByTestId('log-detail');
    await drawer.getByRole('heading', { name: `Request ${newestId}` }).waitFor(WAIT);
    const conversation = drawer.getByTestId('conversation');
    await conversation.getByText('Tell me about the cherry').waitFor(WAIT);
    await conversation.getByText('Answer briefly.').waitFor(WAIT);
    await conversation.getByText('System', { exact: true }).waitFor(WAIT);
    await page.screenshot({ path: artifact('logs-drawer-1440.png') });

    // Live traffic while it is open: the rows wait behind "N new"; the list and the drawer stay put.
    const firstRowBox = await rows.first().boundingBox();
    await chat(key, 'Tell me about the damson [chunks:2]');
    await chat(key, 'Tell me about the elderberry [chunks:2]');
    await flushUsage(app);
    const newRows = page.getByTestId('logs-new');
    await newRows.filter({ hasText: '2 new requests' }).waitFor(WAIT);
    expect(await rows.count()).toBe(3);
    expect(await rows.first().getAttribute('data-log-id')).toBe(newestId);
    expect((await rows.first().boundingBox())?.y).toBe(firstRowBox?.y);
    await drawer.getByRole('heading', { name: `Request ${newestId}` }).waitFor(WAIT);
    await page.screenshot({ path: artifact('logs-new-rows-1440.png') });

    // Raw JSON is one click away.
    await drawer.getByRole('tab', { name: 'Request JSON' }).click();
    await drawer.locator('pre').filter({ hasText: '"messages"' }).waitFor(WAIT);
    await drawer.getByRole('tab', { name: 'Response JSON' }).click();
    await drawer.locator('pre').filter({ hasText: '"choices"' }).waitFor(WAIT);

    // Taking the new rows brings them in on top; closing the drawer returns focus to the list.
    await newRows.click();
    await rows.nth(4).waitFor(WAIT);
    expect(await rows.count()).toBe(5);
    await expect.poll(() => rows.first().locator('td').nth(1).textContent()).toContain('gpt-5');
    await drawer.getByRole('button', { name: 'Close' }).click();
    await drawer.waitFor({ state: 'detached' });

    // Following again (at the top, nothing open): the next call merges without a click.
    await chat(key, 'Tell me about the fig [chunks:2]');
    await flushUsage(app);
    await rows.nth(5).waitFor(WAIT);
    expect(await newRows.count()).toBe(0);

    // Text search in kept bodies.
    await page.getByLabel('Search in bodies').fill('BANANA');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => rows.count()).toBe(1);
    await rows.first().click();
    await drawer.getByTestId('conversation').getByText('Tell me about the banana').waitFor(WAIT);
    await page.screenshot({ path: artifact('logs-search-1440.png') });
    await drawer.getByRole('button', { name: 'Close' }).click();

    // On a phone the drawer covers the screen.
    const phone = await sized(owner.cookies, { width: 390, height: 844 });
    await phone.goto(`${base}/logs`);
    const phoneRows = phone.getByTestId('logs').locator('tbody tr');
    await phoneRows.nth(5).waitFor(WAIT);
    await phone.screenshot({ path: artifact('logs-list-390.png'), fullPage: true });
    await phoneRows.first().click();
    const phoneDrawer = phone.getByTestId('log-detail');
    await phoneDrawer.getByTestId('conversation').waitFor(WAIT);
    expect((await phoneDrawer.boundingBox())?.width).toBe(390);
    await phone.screenshot({ path: artifact('logs-drawer-390.png') });

    // The audit log: actions in words, filters, live.
    const admin = await signUp(app.url, 'Arno Admin');
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId: org.id, email: admin.email, role: 'admin' });
    await admin.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
    await admin.client.project.create.mutate({ orgId: org.id, name: 'Billing bot' });
    await page.goto(`${base}/audit`);
    const entries = page.getByTestId('audit').locator('tbody tr');
    await entries.filter({ hasText: 'Created API key “Support bot”' }).waitFor(WAIT);
    await entries.filter({ hasText: 'Turned on keeping request bodies' }).waitFor(WAIT);
    await entries.filter({ hasText: 'Created project “Billing bot”' }).waitFor(WAIT);
    expect(await page.getByTestId('audit').getByText('apiKey.created').count()).toBe(0);
    await page.screenshot({ path: artifact('audit-1440.png'), fullPage: true });

    await page.getByLabel('Action', { exact: true }).selectOption({ label: 'Created a project' });
    await expect.poll(() => entries.count()).toBe(2);
    await page.getByLabel('Actor', { exact: true }).selectOption({ label: 'Arno Admin' });
    await expect.poll(() => entries.count()).toBe(1);
    await entries.first().getByText('Created project “Billing bot”').waitFor(WAIT);
    await page.getByLabel('Action', { exact: true }).selectOption('');
    await expect.poll(() => entries.count()).toBeGreaterThan(1);
    expect(await entries.filter({ hasText: 'Lena Logs' }).count()).toBe(0);

    // Live: a change by the admin appears without a reload, in words, with only what changed.
    const before = await entries.count();
    const { id: projectId } = (await owner.client.project.list.query({ orgId: org.id })).find((p) => p.name === 'Billing bot')!;
    await admin.client.project.update.mutate({ projectId, name: 'Billing assistant' });
    await entries.filter({ hasText: 'Renamed project “Billing bot” to “Billing assistant”' }).waitFor(WAIT);
    expect(await entries.count()).toBe(before + 1);
    await page.screenshot({ path: artifact('audit-filtered-1440.png'), fullPage: true });

    await phone.goto(`${base}/audit`);
    await phone.getByTestId('audit').locator('tbody tr').filter({ hasText: 'Renamed project' }).waitFor(WAIT);
    await phone.screenshot({ path: artifact('audit-390.png'), fullPage: true });

    // Transactions: this hour's usage is one row with its request count.
    await page.goto(`${base}/billing/transactions`);
    const usage = page.getByTestId('usage-hour');
    await usage.first().waitFor(WAIT);
    // (Two rows only when the calls straddled the top of an hour.)
    expect(await usage.count()).toBeLessThanOrEqual(2);
    await usage.first().getByText(/\d requests?/).waitFor(WAIT);
    await page.screenshot({ path: artifact('transactions-grouped-1440.png'), fullPage: true });
    await page.getByRole('button', { name: 'Every entry', exact: true }).click();
    await page.getByTestId('transactions').and(page.locator('[data-view="ledger"]')).waitFor(WAIT);
    await phone.goto(`${base}/billing/transactions`);
    await phone.getByTestId('usage-hour').first().waitFor(WAIT);
    await phone.screenshot({ path: artifact('transactions-grouped-390.png'), fullPage: true });
  }
});
