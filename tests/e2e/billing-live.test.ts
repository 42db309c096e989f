/**
 * Buying credits in the browser through the local test-payment provider, and the balance changing
 * live in a second member's browser: the owner pays $25 on the test checkout page; the admin's
 * Overview, opened before and never reloaded, shows $25.00. The admin sees billing read-only; the
 * purchase is on the Transactions page; a refund asks for a reason and shows the server's refusal.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('billing in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  const contexts = world.contexts;
  beforeAll(() => {
    app = world.app;
  });

  const pageFor = (cookies: Map<string, string>): Promise<Page> => world.page(cookies);

  it('buys credits through the test checkout; a second member sees the balance live', async () => {
    try {
      await scenario();
    } catch (err) {
      for (const [i, c] of contexts.entries()) {
        for (const p of c.pages()) await p.screenshot({ path: artifact(`failure-billing-${i}.png`), fullPage: true }).catch(() => {});
      }
      throw err;
    }
  }, 45_000);

  async function scenario() {
    // Two members made through the API: an owner and an admin of one organization.
    const owner = await signUp(app.url, 'Olivia Owner');
    const admin = await signUp(app.url, 'Adam Admin');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Credits Co' });
    const invite = await owner.client.team.invite.mutate({ orgId: org.id, email: admin.email, role: 'admin' });
    await admin.client.team.acceptInvitation.mutate({ token: invite.inviteUrl.split('/invite/')[1]! });
    const billingUrl = `${app.url}/org/${org.id}/billing`;

    // The admin sees billing read-only: the balance, but no way to buy.
    const adminPage = await pageFor(admin.cookies);
    await adminPage.goto(billingUrl);
    await adminPage.getByTestId('billing-credits').filter({ hasText: '$0.00' }).waitFor(WAIT);
    await adminPage.getByText('Only owners can add credits. You can see the balance').waitFor(WAIT);
    await adminPage.getByRole('heading', { name: 'Plan' }).waitFor(WAIT);
    expect(await adminPage.getByRole('button', { name: 'Add credits' }).count()).toBe(0);
    expect(await adminPage.getByRole('button', { name: /Upgrade to Pro/ }).count()).toBe(0);
    expect(await adminPage.getByRole('button', { name: 'Add payment method' }).count()).toBe(0);
    await adminPage.screenshot({ path: artifact('admin-billing-1280.png'), fullPage: true });
    // ...then moves to the Overview inside the app, and stays there, live.
    await adminPage.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Overview' }).click();
    await adminPage.waitForURL(`**/org/${org.id}/overview`);
    await adminPage.getByTestId('credits').filter({ hasText: '$0.00' }).waitFor(WAIT);
    await adminPage.getByTestId('low-balance-banner').waitFor(WAIT);
    await adminPage.getByText('Live', { exact: true }).waitFor(WAIT);
    await adminPage.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    // The owner buys $25 of credits: form -> test checkout page -> Visa 4242 -> Pay -> back on billing.
    const ownerPage = await pageFor(owner.cookies);
    await ownerPage.goto(billingUrl);
    await ownerPage.getByTestId('billing-credits').filter({ hasText: '$0.00' }).waitFor(WAIT);
    await ownerPage.getByText('Test mode', { exact: true }).waitFor(WAIT);
    await ownerPage.getByRole('button', { name: '$25', exact: true }).click();
    expect(await ownerPage.getByLabel('Amount', { exact: true }).inputValue()).toBe('25');
    await ownerPage.getByRole('button', { name: 'Add credits', exact: true }).click();
    await ownerPage.waitForURL('**/test-payments/checkout/**');
    await ownerPage.getByLabel('Visa ending 4242 (succeeds)').check();
    await ownerPage.getByRole('button', { name: 'Pay $25.00' }).click();
    await ownerPage.waitForURL(`**/org/${org.id}/billing**`);
    await ownerPage.getByTestId('checkout-note').waitFor(WAIT);
    await ownerPage.getByTestId('billing-credits').filter({ hasText: '$25.00' }).waitFor(WAIT);
    await ownerPage.getByTestId('checkout-note').filter({ hasText: 'Credits added' }).waitFor(WAIT);
    // The card paid with is saved, as the default for auto top-up.
    await ownerPage.getByTestId('payment-method-4242').filter({ hasText: 'Default' }).waitFor(WAIT);
    expect(new URL(ownerPage.url()).search).toBe('');

    // The admin's Overview changed without a reload.
    await adminPage.getByTestId('credits').filter({ hasText: '$25.00' }).waitFor(WAIT);
    await adminPage.getByTestId('overview-balance').filter({ hasText: '$25.00' }).waitFor(WAIT);
    await adminPage.getByTestId('low-balance-banner').waitFor({ state: 'detached', timeout: 10_000 });
    expect(await adminPage.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);

    await ownerPage.screenshot({ path: artifact('owner-billing-1280.png'), fullPage: true });
    await adminPage.getByRole('list', { name: 'Recent transactions' }).getByText('+$25.00').waitFor(WAIT);
    await adminPage.screenshot({ path: artifact('admin-overview-1280.png'), fullPage: true });

    // The purchase is on the Transactions page, for both; only the owner may refund it.
    await ownerPage.getByRole('navigation', { name: 'Billing sections' }).getByRole('link', { name: 'Transactions' }).click();
    await ownerPage.waitForURL(`**/org/${org.id}/billing/transactions`);
    const ownerRow = ownerPage.getByTestId('transactions').locator('tbody tr').filter({ hasText: 'Purchase' });
    await ownerRow.filter({ hasText: '+$25.00' }).waitFor(WAIT);
    await adminPage.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Billing' }).click();
    await adminPage.getByRole('navigation', { name: 'Billing sections' }).getByRole('link', { name: 'Transactions' }).click();
    const adminRow = adminPage.getByTestId('transactions').locator('tbody tr').filter({ hasText: 'Purchase' });
    await adminRow.filter({ hasText: '+$25.00' }).waitFor(WAIT);
    expect(await adminRow.getByRole('button', { name: /Refund/ }).count()).toBe(0);
    expect(await adminPage.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await ownerPage.screenshot({ path: artifact('owner-transactions-1280.png'), fullPage: true });

    // Refund it with a reason; the refund row arrives live and the balance returns to $0.00 for both.
    await ownerRow.getByRole('button', { name: /^Refund/ }).click();
    const dialog = ownerPage.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('Bought the wrong amount');
    await dialog.getByRole('button', { name: 'Refund purchase' }).click();
    await ownerPage.getByText('Purchase refunded.').waitFor(WAIT);
    await ownerPage.getByTestId('transactions').locator('tbody tr').filter({ hasText: 'Refund of purchase' }).filter({ hasText: '−$25.00' }).waitFor(WAIT);
    await adminPage.getByTestId('transactions').locator('tbody tr').filter({ hasText: 'Refund of purchase' }).waitFor(WAIT);
    // A refunded purchase no longer offers Refund.
    await ownerRow.filter({ hasText: '+$25.00' }).getByRole('button', { name: /^Refund/ }).waitFor({ ...WAIT, state: 'detached' });

    // Phone width.
    await ownerPage.setViewportSize({ width: 390, height: 844 });
    await ownerPage.screenshot({ path: artifact('owner-transactions-390.png'), fullPage: true });
    await ownerPage.getByRole('navigation', { name: 'Billing sections' }).getByRole('link', { name: 'Overview' }).click();
    await ownerPage.getByTestId('billing-credits').filter({ hasText: '$0.00' }).waitFor(WAIT);
    await ownerPage.getByRole('heading', { name: 'Plan' }).waitFor(WAIT);
    await ownerPage.screenshot({ path: artifact('owner-billing-390.png'), fullPage: true });
  }

  it('tells a developer they have no access to billing, and hides the nav item', async () => {
    const owner = await signUp(app.url, 'Oscar Owner');
    const developer = await signUp(app.url, 'Dana Developer');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Dev Co' });
    const invite = await owner.client.team.invite.mutate({ orgId: org.id, email: developer.email, role: 'developer' });
    await developer.client.team.acceptInvitation.mutate({ token: invite.inviteUrl.split('/invite/')[1]! });
    const page = await pageFor(developer.cookies);
    await page.goto(`${app.url}/org/${org.id}/overview`);
    await page.getByTestId('credits').filter({ hasText: '$0.00' }).waitFor(WAIT);
    const nav = page.getByRole('navigation', { name: 'Organization' });
    await nav.getByRole('link', { name: 'Team' }).waitFor(WAIT);
    expect(await nav.getByRole('link', { name: 'Billing' }).count()).toBe(0);
    // Everyone sees a low balance (requests stop at $0); only owners are offered to buy.
    await page.getByTestId('low-balance-banner').filter({ hasText: 'Ask an owner of this organization to add credits.' }).waitFor(WAIT);
    await page.goto(`${app.url}/org/${org.id}/billing`);
    await page.getByTestId('billing-no-access').filter({ hasText: "You don't have access to billing" }).waitFor(WAIT);
    await page.goto(`${app.url}/org/${org.id}/billing/transactions`);
    await page.getByTestId('billing-no-access').waitFor(WAIT);
    expect(await page.getByTestId('transactions').count()).toBe(0);
  }, 20_000);
});
