/**
 * Deleting an organization with money in it, in the browser: the transactions list offers Refund
 * only where it applies; the confirmation states the credits that will be forfeited and the Pro
 * subscription that will be canceled before anything happens, and the deletion goes through once
 * the name is typed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { payCheckout } from '../helpers/billing.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('deleting an organization in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  it('states the forfeited credits in the confirmation, then deletes', async () => {
    const owner = await signUp(app.url, 'Dora Deleter');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Closing Co' });
    const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId: org.id, amount: 25 });
    await payCheckout(app, checkoutUrl);
    const pro = (await owner.client.billing.changePlan.mutate({ orgId: org.id, plan: 'pro', billingCycle: 'monthly' })) as { checkoutUrl?: string };
    if (pro.checkoutUrl) await payCheckout(app, pro.checkoutUrl);
    const page = await world.page(owner.cookies);

    // The transactions list: Refund only on the refundable purchase; the Pro charge (paid by card,
    // $0.00 of credits) is neither green nor red.
    await page.goto(`${app.url}/org/${org.id}/billing/transactions`);
    const rows = page.getByTestId('transactions').locator('tbody tr');
    const purchase = rows.filter({ hasText: 'Credits purchase' });
    const proCharge = rows.filter({ hasText: 'Pro plan' });
    await purchase.getByRole('button', { name: /^Refund/ }).waitFor(WAIT);
    await proCharge.waitFor(WAIT);
    expect(await proCharge.getByRole('button', { name: /^Refund/ }).count()).toBe(0);
    const amountCell = proCharge.locator('td[data-label="Amount"]');
    expect(await amountCell.textContent()).toBe('$0.00');
    expect(await amountCell.evaluate((td) => td.classList.contains('amount-in') || td.classList.contains('amount-out'))).toBe(false);

    await page.goto(`${app.url}/org/${org.id}/settings`);
    const preview = page.getByTestId('deletion-preview');
    await preview.getByText('$25.00 of credits will be forfeited').waitFor(WAIT);
    await preview.getByText('The Pro subscription will be canceled now').waitFor(WAIT);
    await page.getByTestId('deletion-preview').screenshot({ path: artifact('delete-organization-preview.png') });
    await page.getByLabel('Type “Closing Co” to confirm').fill('Closing Co');
    await page.getByRole('button', { name: 'Delete organization' }).click();
    await page.getByText('Closing Co was deleted. Its Pro subscription was canceled.').waitFor(WAIT).catch(async (err: unknown) => {
      await page.screenshot({ path: artifact('failure-delete-organization.png'), fullPage: true }).catch(() => {});
      throw err;
    });
    expect((await owner.client.organization.list.query()).some((o) => o.id === org.id)).toBe(false);
  }, 45_000);
});
