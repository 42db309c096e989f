/**
 * An owner's billing controls in the browser, against the local test-payment provider: a budget
 * alert that triggers at once (row highlighted, banner), auto top-up settings, a second payment
 * method through a setup checkout and making it the default, and Pro yearly through a subscription
 * checkout, then cancelling at period end ("Pro until ...").
 * Then auto top-up trouble: a card that needs its holder (3-D Secure) and auto top-up switched off.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestApp } from '../helpers/app.js';
import { payCheckout } from '../helpers/billing.js';
import { signUp } from '../helpers/client.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('billing controls of an owner in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  const pageFor = (cookies: Map<string, string>): Promise<Page> => world.page(cookies);

  it('sets alerts and auto top-up, adds a payment method, subscribes to Pro and cancels at period end', async () => {
    const owner = await signUp(app.url, 'Petra Owner');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Controls Co' });
    // $25 of credits bought through the API, as the checkout page would; it saves a Visa 4242.
    const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId: org.id, amount: 25 });
    await payCheckout(app, checkoutUrl, 'card');

    const page = await pageFor(owner.cookies);
    try {
      await page.goto(`${app.url}/org/${org.id}/billing`);
      await page.getByTestId('billing-credits').filter({ hasText: '$25.00' }).waitFor(WAIT);
      await page.getByText('Live', { exact: true }).waitFor(WAIT);

      // A balance alert above the balance triggers at once: the row is highlighted and a banner appears.
      const balanceAlert = page.getByTestId('budget-alert-balance_below');
      await balanceAlert.getByLabel('Alert when the credit balance drops below this amount').fill('30');
      await balanceAlert.getByRole('button', { name: 'Set alert' }).click();
      await balanceAlert.getByText('Triggered').waitFor(WAIT);
      await page.getByTestId('budget-alert-banner-balance_below').filter({ hasText: 'The balance is $25.00, below your alert of $30.00.' }).waitFor(WAIT);
      // A bad amount is refused in place, with the shared schema's words.
      const spendAlert = page.getByTestId('budget-alert-monthly_spend_above');
      await spendAlert.getByLabel('Alert when usage this calendar month goes above this amount').fill('lots');
      await spendAlert.getByRole('button', { name: 'Set alert' }).click();
      await spendAlert.getByText('Enter an amount in dollars, like 25 or 25.50').waitFor(WAIT);
      await spendAlert.getByLabel('Alert when usage this calendar month goes above this amount').fill('100');
      await spendAlert.getByRole('button', { name: 'Set alert' }).click();
      await spendAlert.getByText('Alert at $100.00').waitFor(WAIT);

      // Auto top-up: on, below $10 add $20; the minimum is checked before asking the server.
      const autoTopUp = page.locator('#auto-top-up');
      await autoTopUp.getByLabel('Top up automatically').check();
      await autoTopUp.getByLabel('Add this amount').fill('5');
      await autoTopUp.getByRole('button', { name: 'Save auto top-up' }).click();
      await autoTopUp.getByText('The auto top-up amount must be at least $10').waitFor(WAIT);
      await autoTopUp.getByLabel('Add this amount').fill('20');
      await autoTopUp.getByRole('button', { name: 'Save auto top-up' }).click();
      await page.getByText('Auto top-up is on.').waitFor(WAIT);
      await page.getByText('Auto top-up adds $20.00 when the balance falls below $10.00.').waitFor(WAIT);

      // A second payment method through a setup checkout, then made the default.
      await page.getByRole('button', { name: 'Add payment method' }).click();
      await page.waitForURL('**/test-payments/checkout/**');
      await page.getByLabel(/US bank account ending 6789/).check();
      await page.getByRole('button', { name: 'Save payment method' }).click();
      await page.waitForURL(`**/org/${org.id}/billing**`);
      await page.getByTestId('checkout-note').filter({ hasText: 'Payment method saved' }).waitFor(WAIT);
      const bank = page.getByTestId('payment-method-6789');
      await bank.waitFor(WAIT);
      await bank.getByRole('button', { name: /Make default/ }).click();
      await bank.getByText('Default', { exact: true }).waitFor(WAIT);
      expect(await page.getByTestId('payment-method-4242').getByText('Default', { exact: true }).count()).toBe(0);

      // Pro, yearly, through a subscription checkout.
      await page.getByLabel(/Yearly/).check();
      await page.getByRole('button', { name: 'Upgrade to Pro ($500/year)' }).click();
      await page.waitForURL('**/test-payments/checkout/**');
      await page.getByRole('button', { name: /^Pay/ }).click();
      await page.waitForURL(`**/org/${org.id}/billing**`);
      await page.getByTestId('plan-summary').filter({ hasText: 'Pro, billed yearly' }).waitFor(WAIT);
      await page.getByTestId('checkout-note').filter({ hasText: 'Welcome to Pro' }).waitFor(WAIT);

      // Cancel at period end, confirmed in a dialog.
      await page.getByRole('button', { name: 'Cancel at period end' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel at period end' }).click();
      await page.getByTestId('plan-summary').filter({ hasText: /Pro until/ }).waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'Cancel at period end' }).count()).toBe(0);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: artifact('owner-billing-pro-1280.png'), fullPage: true });
    } catch (err) {
      await page.screenshot({ path: artifact('failure-billing-owner.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  }, 40_000);

  it('shows auto top-up trouble: a payment needing the card holder, and auto top-up switched off', async () => {
    const owner = await signUp(app.url, 'Quinn Owner');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Trouble Co' });
    // Paid on-session with a card that asks for 3-D Secure whenever it is charged off-session later.
    const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId: org.id, amount: 10 });
    await payCheckout(app, checkoutUrl, 'card_requires_action');

    const page = await pageFor(owner.cookies);
    try {
      await page.goto(`${app.url}/org/${org.id}/billing`);
      await page.getByTestId('billing-credits').filter({ hasText: '$10.00' }).waitFor(WAIT);
      await page.getByTestId('payment-method-3184').getByText('Default', { exact: true }).waitFor(WAIT);
      await page.getByText('Live', { exact: true }).waitFor(WAIT);

      // Turning auto top-up on below the threshold tops up at once: the bank wants the card holder.
      const autoTopUp = page.locator('#auto-top-up');
      await autoTopUp.getByLabel('Top up automatically').check();
      await autoTopUp.getByLabel('When the balance falls below').fill('20');
      await autoTopUp.getByLabel('Add this amount').fill('25');
      await autoTopUp.getByRole('button', { name: 'Save auto top-up' }).click();
      await autoTopUp.getByText('Your bank needs you to confirm a payment').waitFor(WAIT);
      await page.getByTestId('auto-top-up-confirm-banner').waitFor(WAIT);
      // "Add credits now" prefills the purchase form with the top-up amount and focuses it.
      await autoTopUp.getByRole('button', { name: 'Add credits now' }).click();
      const amount = page.getByLabel('Amount', { exact: true });
      expect(await amount.inputValue()).toBe('25');
      expect(await amount.evaluate((el) => el === document.activeElement)).toBe(true);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: artifact('owner-billing-auto-top-up-action-1280.png'), fullPage: true });

      // After days of failures the server switches auto top-up off with a reason (set here directly).
      const why = 'Auto top-up was turned off after 7 days of failed payments (last error: Your card was declined.). Update the payment method and turn it on again.';
      await app.orm.em.fork().execute('update organization set auto_top_up_enabled = false, auto_top_up_disabled_reason = ? where id = ?', [why, org.id]);
      await page.goto(`${app.url}/org/${org.id}/overview`);
      const banner = page.getByTestId('auto-top-up-banner');
      await banner.filter({ hasText: 'after 7 days of failed payments' }).waitFor(WAIT);
      await banner.getByRole('link', { name: 'Review auto top-up' }).click();
      await page.waitForURL(`**/org/${org.id}/billing#auto-top-up`);
      await page.getByTestId('auto-top-up-disabled').filter({ hasText: 'after 7 days of failed payments' }).waitFor(WAIT);
      await page.screenshot({ path: artifact('owner-billing-auto-top-up-off-1280.png') });
      // Dismissed, it stays away for this session (also after a reload).
      await page.getByRole('button', { name: 'Dismiss: Auto top-up is off' }).click();
      await page.reload();
      await page.getByTestId('auto-top-up-disabled').waitFor(WAIT);
      expect(await page.getByTestId('auto-top-up-banner').count()).toBe(0);
    } catch (err) {
      await page.screenshot({ path: artifact('failure-billing-trouble.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  }, 30_000);
});
