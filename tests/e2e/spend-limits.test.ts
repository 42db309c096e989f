/**
 * Spend limits in the browser (issue #12 item 6): an admin sets a developer's key spend limit (API
 * keys page) and the developer's budget (Team page); traffic with that key moves the spent figures
 * on the developer's own screens without a reload; the 50/80% notices and, when a call is refused,
 * the "limit reached" notice appear live; the request log marks the refused call with the limit.
 * Screenshots of the API keys, Team and Settings pages at 1440x900 and 390x844 go to test-artifacts/e2e/.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { grantCredits, rawChat } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

const SIZES = [
  [1440, 900],
  [390, 844],
] as const;

describe.skipIf(SKIP_BROWSER_TESTS)('spend limits in the browser', () => {
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

  /** claude-opus-4-1: 12 prompt + 300 output tokens = $0.02268 a call; max_tokens 400 reserves ~$0.0301. */
  const call = (key: string) => rawChat(app, key, { model: 'anthropic/claude-opus-4-1', max_tokens: 400, messages: [{ role: 'user', content: 'go [chunks:300]' }] });

  async function shoot(page: Page, name: string) {
    for (const [w, h] of SIZES) {
      await page.setViewportSize({ width: w, height: h });
      await page.screenshot({ path: artifact(`${name}-${w}x${h}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 820 });
  }

  it('an admin sets a key limit and a budget; spend moves live on the developer screens; refusals show', async () => {
    try {
      await scenario();
    } catch (err) {
      await world.screenshotAll('failure-spend-limits');
      throw err;
    }
  }, 90_000);

  async function scenario() {
    const owner = await signUp(app.url, 'Olga Owner');
    const { organization: org, defaultProject } = await owner.client.organization.create.mutate({ name: 'Budget Co' });
    await grantCredits(app, org.id, '20');
    const [admin, dev] = await Promise.all([signUp(app.url, 'Adam Admin'), signUp(app.url, 'Dana Developer')]);
    for (const [who, role] of [[admin, 'admin'], [dev, 'developer']] as const) {
      const { inviteUrl } = await owner.client.team.invite.mutate({ orgId: org.id, email: who.email, role });
      await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
    }
    const { apiKey, key } = await dev.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'intern key' });
    const base = `${app.url}/org/${org.id}`;

    // The developer watches their keys; another tab of theirs watches the team.
    const devKeys = await world.page(dev.cookies);
    await devKeys.goto(`${base}/keys`);
    const devMeter = devKeys.getByTestId(`key-spend-${apiKey.id}`);
    await devMeter.filter({ hasText: 'No limit' }).waitFor(WAIT);
    const devTeam = await devKeys.context().newPage();
    await devTeam.goto(`${base}/team`);
    const devBudget = devTeam.getByTestId(`member-spend-${dev.user.id}`);
    await devBudget.filter({ hasText: 'No budget' }).waitFor(WAIT);
    // A developer sees the budgets but cannot set them.
    expect(await devTeam.getByRole('button', { name: /^Set budget/ }).count()).toBe(0);
    await devTeam.getByTestId('developer-budget').getByLabel('Default budget ($)').isDisabled().then((d) => expect(d).toBe(true));

    // The admin sets the key's spend limit in its settings form; a bad amount is refused inline first.
    const adminPage = await world.page(admin.cookies);
    await adminPage.goto(`${base}/keys`);
    await adminPage.getByRole('button', { name: 'Settings of intern key' }).click();
    const limitFields = adminPage.getByTestId('key-spend-limit');
    await limitFields.getByLabel('Spend limit ($)').fill('ten');
    await adminPage.getByRole('button', { name: 'Save settings' }).click();
    await limitFields.getByText('Enter an amount in dollars').waitFor(WAIT);
    await shoot(adminPage, 'spend-limits-admin-key-settings');
    await limitFields.getByLabel('Spend limit ($)').fill('0.10');
    await limitFields.getByLabel('Period').selectOption('day');
    await adminPage.getByRole('button', { name: 'Save settings' }).click();
    await adminPage.getByTestId(`key-spend-${apiKey.id}`).filter({ hasText: '$0.00 of $0.10 per day' }).waitFor(WAIT);
    // The developer's screen follows without a reload.
    await devKeys.evaluate(() => ((window as unknown as { __same: boolean }).__same = true));
    await devMeter.filter({ hasText: '$0.00 of $0.10 per day' }).waitFor(WAIT);
    await devMeter.filter({ hasText: /resets in \d+/ }).waitFor(WAIT);

    // ...and the developer's budget on the Team page, through the dialog.
    await adminPage.goto(`${base}/team`);
    await adminPage.getByRole('button', { name: 'Set budget of Dana Developer' }).click();
    const dialog = adminPage.getByTestId('budget-dialog');
    await dialog.getByLabel('Budget ($)').fill('0');
    await dialog.getByRole('button', { name: 'Save budget' }).click();
    await dialog.getByText('The amount must be more than $0').waitFor(WAIT);
    await shoot(adminPage, 'spend-limits-admin-budget-dialog');
    await dialog.getByLabel('Budget ($)').fill('1');
    await dialog.getByLabel('Period').selectOption('week');
    await dialog.getByRole('button', { name: 'Save budget' }).click();
    await dialog.waitFor({ state: 'detached', ...WAIT });
    await devBudget.filter({ hasText: '$0.00 of $1.00 per week' }).waitFor(WAIT);

    // Traffic: the figures move on both of the developer's screens, live.
    expect((await call(key)).status).toBe(200);
    await devMeter.filter({ hasText: '$0.0227 of $0.10 per day' }).waitFor(WAIT);
    await devBudget.filter({ hasText: '$0.0227 of $1.00 per week' }).waitFor(WAIT);
    for (let i = 0; i < 3; i++) expect((await call(key)).status).toBe(200);
    await devMeter.filter({ hasText: '$0.0907 of $0.10 per day' }).waitFor(WAIT);
    await devMeter.filter({ hasText: '90% used' }).waitFor(WAIT);
    // The 80% notice (it replaced the 50% one) for the key's developer.
    await devKeys.getByTestId('limit-alert-apiKey').filter({ hasText: 'intern key' }).filter({ hasText: '80%' }).waitFor(WAIT);
    expect(await devKeys.getByTestId('limit-alert-apiKey').count()).toBe(1);
    await shoot(devKeys, 'spend-limits-developer-keys');

    // A call that does not fit is refused; the "limit reached" notice shows.
    const refused = await call(key);
    expect(refused.status).toBe(402);
    await devKeys.getByTestId('limit-alert-apiKey').filter({ hasText: 'has reached its spend limit of $0.10' }).waitFor(WAIT);
    expect(await devKeys.getByTestId('limit-alert-apiKey').getAttribute('data-threshold')).toBe('100');
    await devTeam.getByTestId('limit-alert-apiKey').filter({ hasText: 'has reached' }).waitFor(WAIT);
    expect(await devKeys.evaluate(() => (window as unknown as { __same?: boolean }).__same)).toBe(true);

    // The admin's team page shows the developer's budget burnt down too.
    await adminPage.getByTestId(`member-spend-${dev.user.id}`).filter({ hasText: '$0.0907 of $1.00 per week' }).waitFor(WAIT);
    await shoot(adminPage, 'spend-limits-admin-team');
    await shoot(devTeam, 'spend-limits-developer-team');

    // The request log says which limit refused the call, in the list and in the detail.
    await adminPage.goto(`${base}/logs`);
    const marker = adminPage.getByTestId('refused-by').first();
    await marker.filter({ hasText: 'Refused: key spend limit' }).waitFor(WAIT);
    await marker.click();
    await adminPage.getByTestId('log-detail').getByText('Refused by the key spend limit:').waitFor(WAIT);
    await shoot(adminPage, 'spend-limits-admin-logs');

    // The owner's Settings: caps with spent today and this month; a developer sees them read-only.
    const ownerPage = await world.page(owner.cookies);
    await ownerPage.goto(`${base}/settings`);
    const caps = ownerPage.locator('#spend-caps');
    await caps.getByLabel('Daily spend cap ($)').fill('5');
    await caps.getByLabel('Monthly spend cap ($)').fill('4');
    await caps.getByRole('button', { name: 'Save caps' }).click();
    await caps.getByText('The daily cap cannot be above the monthly cap').waitFor(WAIT);
    await caps.getByLabel('Monthly spend cap ($)').fill('50');
    await caps.getByLabel('Max concurrent calls').fill('8');
    await caps.getByRole('button', { name: 'Save caps' }).click();
    await ownerPage.getByTestId('spent-today').filter({ hasText: 'of $5.00 per day' }).waitFor(WAIT);
    await ownerPage.getByTestId('spent-month').filter({ hasText: 'of $50.00 per month' }).waitFor(WAIT);
    await shoot(ownerPage, 'spend-limits-owner-settings');
    await devKeys.goto(`${base}/settings`);
    await devKeys.locator('#spend-caps').getByText('Only owners change them.').waitFor(WAIT);
    expect(await devKeys.locator('#spend-caps').getByLabel('Daily spend cap ($)').inputValue()).toBe('5.00');
    expect(await devKeys.locator('#spend-caps').getByLabel('Daily spend cap ($)').isDisabled()).toBe(true);
  }
});
