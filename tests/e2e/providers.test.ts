/**
 * The Providers page under live traffic (issue #11): empty for a new organization, then each
 * provider with its figures, updating without a reload while calls (some failing upstream) flow;
 * and the Projects page's routing form (saved for owners, refused with the reason for a bad model,
 * disabled with the reason for developers).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat } from '../helpers/gateway.js';
import { addMember } from '../helpers/live.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('providers page and routing form', () => {
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

  it('shows each provider live while calls flow, with the empty state before', async () => {
    const owner = await newOwner(app, 'Pia Providers');
    const { orgId, projectId, key } = await gatewaySetup(app, owner, { name: 'Providers Co', mode: 'credits' });
    // One attempt per call: every call below is one attempt of the operator's key.
    await owner.client.project.update.mutate({ projectId, routing: { maxAttempts: 1 } });
    const chat = (model: string, text: string) => rawChat(app, key, { model, messages: [{ role: 'user', content: text }] });

    const page = await world.page(owner.cookies);
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto(`${app.url}/org/${orgId}/providers`);
    await page.getByTestId('no-provider-traffic').waitFor(WAIT);
    await page.screenshot({ path: artifact('providers-empty-desktop.png'), fullPage: true });

    for (let i = 0; i < 4; i++) expect((await chat('openai/gpt-4o-mini', `hello ${i}`)).status).toBe(200);
    expect((await chat('openai/gpt-4o-mini', '[status:500] down')).status).toBeGreaterThanOrEqual(500);
    expect((await chat('anthropic/claude-haiku-4-5', 'hi claude')).status).toBe(200);
    const openai = page.getByTestId('provider-openai').locator('..');
    await openai.getByTestId('calls').filter({ hasText: /^5$/ }).waitFor(WAIT);
    expect(await openai.getByTestId('success').textContent()).toBe('80%');
    await page.getByTestId('provider-anthropic').waitFor(WAIT);
    expect(await openai.getByTestId('provider-key').first().textContent()).toContain('Gateway key 1');
    expect(await openai.getByTestId('circuit').first().getAttribute('data-state')).toBe('closed');

    // More traffic: the figures move without a reload.
    for (let i = 0; i < 3; i++) expect((await chat('openai/gpt-4o-mini', `again ${i}`)).status).toBe(200);
    await openai.getByTestId('calls').filter({ hasText: /^8$/ }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Last 60 min' }).click();
    await openai.getByTestId('calls').filter({ hasText: /^8$/ }).waitFor(WAIT);
    await page.screenshot({ path: artifact('providers-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: artifact('providers-phone.png'), fullPage: true });
  });

  it('saves routing on the Projects page, refuses an unknown model with the reason, and is read-only for developers', async () => {
    const owner = await newOwner(app, 'Rob Routing');
    const { orgId, projectId } = await gatewaySetup(app, owner, { name: 'Routing Co' });
    const page = await world.page(owner.cookies);
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto(`${app.url}/org/${orgId}/projects`);
    const form = page.getByTestId('routing-form');
    await form.waitFor(WAIT);
    await form.getByLabel('Strategy').selectOption('price');
    await form.getByLabel('Attempts at most').fill('2');
    await form.getByRole('button', { name: 'Add fallback chain' }).click();
    await form.getByLabel('Model of chain 1').fill('openai/gpt-4o');
    await form.getByLabel(/Fallbacks of chain 1/).fill('openai/gpt-4o-mini, anthropic/claude-haiku-4-5');
    await form.getByRole('button', { name: 'Save routing' }).click();
    await page.getByText(/Routing of “.+” saved\./).waitFor(WAIT);
    const [row] = await sql<{ routing: unknown }>(app, 'select routing from project where id = ?', [projectId]);
    expect(row!.routing).toEqual({ strategy: 'price', maxAttempts: 2, fallbacks: { 'openai/gpt-4o': ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5'] } });
    await page.screenshot({ path: artifact('routing-desktop.png'), fullPage: true });

    await form.getByRole('button', { name: 'Add fallback chain' }).click();
    await form.getByLabel('Model of chain 2').fill('gpt-4o-mini');
    await form.getByLabel(/Fallbacks of chain 2/).fill('nobody/knows-this');
    await form.getByRole('button', { name: 'Save routing' }).click();
    await form.getByTestId('routing-error').filter({ hasText: '"nobody/knows-this" is not in the catalog' }).waitFor(WAIT);
    const [unchanged] = await sql<{ routing: { fallbacks: Record<string, string[]> } }>(app, 'select routing from project where id = ?', [projectId]);
    expect(Object.keys(unchanged!.routing.fallbacks)).toEqual(['openai/gpt-4o']);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: artifact('routing-phone.png'), fullPage: true });

    const developer = await addMember(app.url, owner, orgId, 'Dev Routing', 'developer');
    const devPage = await world.page(developer.cookies);
    await devPage.setViewportSize({ width: 1440, height: 900 });
    await devPage.goto(`${app.url}/org/${orgId}/projects`);
    const devForm = devPage.getByTestId('routing-form');
    await devForm.getByTestId('routing-disabled-reason').filter({ hasText: 'owners and admins change it' }).waitFor(WAIT);
    expect(await devForm.getByLabel('Strategy').isDisabled()).toBe(true);
    expect(await devForm.getByLabel('Strategy').inputValue()).toBe('price');
    expect(await devForm.getByLabel('Attempts at most').isDisabled()).toBe(true);
    expect(await devForm.getByRole('button', { name: 'Save routing' }).isDisabled()).toBe(true);
    await devPage.screenshot({ path: artifact('routing-developer.png'), fullPage: true });
  });
});
