/**
 * Plans in the browser: a Pro owner switches monthly to yearly (the price difference and what
 * happens now shown before confirming), downloads the switch's invoice as a PDF, cancels at period
 * end and resumes before it ends. Forms at a plan limit (new organization, new project) are
 * disabled with the reason shown before anything is sent. Screenshots at 1440x900 and 390x844.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { fakeStripe } from '../helpers/billing.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('plans and subscriptions in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  it('switches monthly to yearly, downloads the invoice, cancels and resumes', async () => {
    const owner = await signUp(app.url, 'Paula Pro');
    const { organization: org } = await owner.client.organization.create.mutate({ name: 'Cycle Co' });
    const started = (await owner.client.billing.changePlan.mutate({ orgId: org.id, plan: 'pro', billingCycle: 'monthly' })) as { checkoutUrl: string };
    await fakeStripe(app).completeCheckout(started.checkoutUrl.split('/checkout/')[1]!, 'card');
    await fakeStripe(app).drain();

    const page = await world.page(owner.cookies);
    try {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.goto(`${app.url}/org/${org.id}/billing`);
      await page.getByTestId('plan-summary').filter({ hasText: 'Pro, billed monthly' }).waitFor(WAIT);
      const cycle = page.getByTestId('cycle-switch');
      await cycle.getByText('Yearly is $500/year, $100 less.').waitFor(WAIT);
      await cycle.getByTestId('cycle-switch-now').filter({ hasText: /unused part of your month \(about \$(49|50)\) is credited and about \$45\d is charged to your card today/ }).waitFor(WAIT);
      const invoices = page.getByTestId('invoice-row');
      await invoices.first().waitFor(WAIT);
      expect(await invoices.count()).toBe(1);

      // The switch, confirmed in a dialog that repeats what happens now.
      await cycle.getByRole('button', { name: 'Switch to yearly ($500/year)' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByText(/The yearly period starts today/).waitFor(WAIT);
      await dialog.getByRole('button', { name: /^Switch and pay about \$45\d/ }).click();
      await page.getByTestId('plan-summary').filter({ hasText: 'Pro, billed yearly' }).waitFor(WAIT);
      await page.getByText(/Pro is now billed yearly\. Invoice .+: \$45\d\.\d\d paid\./).waitFor(WAIT);
      await page.getByTestId('invoices').getByText('Billing cycle switch').waitFor(WAIT);
      expect(await invoices.count()).toBe(2);
      await cycle.getByRole('button', { name: 'Switch to monthly ($50/month)' }).waitFor(WAIT);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: artifact('billing-plans-switched-1440.png'), fullPage: true });

      // The newest invoice downloads as a PDF.
      const [download] = await Promise.all([page.waitForEvent('download'), invoices.first().getByTestId('invoice-pdf').click()]);
      expect(download.suggestedFilename()).toMatch(/^invoice-[A-Z0-9]+-0002\.pdf$/);
      const pdf = readFileSync((await download.path())!);
      expect(pdf.subarray(0, 8).toString('latin1')).toBe('%PDF-1.4');
      expect(pdf.toString('latin1')).toContain('Invoice number:');

      // Cancel at period end, then resume before it ends.
      await page.getByRole('button', { name: 'Cancel at period end' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel at period end' }).click();
      const resume = page.getByTestId('resume-subscription');
      await resume.getByText(/^Pro ends on /).waitFor(WAIT);
      expect(await page.getByTestId('cycle-switch').count()).toBe(0);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: artifact('billing-plans-resume-390.png'), fullPage: true });
      await page.locator('#plan').screenshot({ path: artifact('billing-plans-resume-card-390.png') });
      await resume.getByRole('button', { name: 'Resume subscription' }).click();
      await page.getByTestId('plan-summary').filter({ hasText: /Pro, billed yearly; renews on/ }).waitFor(WAIT);
      await page.getByRole('button', { name: 'Cancel at period end' }).waitFor(WAIT);
      expect(await page.getByTestId('resume-subscription').count()).toBe(0);
      const [row] = await sql<{ c: boolean }>(app, 'select subscription_cancel_at_period_end as c from organization where id = ?', [org.id]);
      expect(row!.c).toBe(false);
      await page.locator('#invoices').scrollIntoViewIfNeeded();
      await page.screenshot({ path: artifact('billing-plans-invoices-390.png'), fullPage: true });
      await page.locator('#invoices').screenshot({ path: artifact('billing-plans-invoices-card-390.png') });
      await page.locator('#plan').screenshot({ path: artifact('billing-plans-plan-card-390.png') });
    } catch (err) {
      await page.screenshot({ path: artifact('failure-billing-plans.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  }, 60_000);

  it('disables the new organization and new project forms at the plan limit, with the reason', async () => {
    const owner = await signUp(app.url, 'Lim Owner');
    const orgs: string[] = [];
    for (let i = 0; i < 3; i++) orgs.push((await owner.client.organization.create.mutate({ name: `Limit ${i}` })).organization.id);
    for (let i = 0; i < 9; i++) await owner.client.project.create.mutate({ orgId: orgs[0]!, name: `Project ${i}` });

    const page = await world.page(owner.cookies);
    try {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.goto(`${app.url}/orgs/new`);
      const note = page.getByTestId('organization-limit');
      await note.getByText('The Free plan allows 3 organizations per user; delete one you own, or upgrade one of your organizations to Pro to own up to 10.').waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'Create organization' }).isDisabled()).toBe(true);
      expect(await page.getByLabel('Organization name').isDisabled()).toBe(true);
      await page.screenshot({ path: artifact('plan-limit-new-org-1440.png'), fullPage: true });

      await page.goto(`${app.url}/org/${orgs[0]}/projects`);
      const projectNote = page.getByTestId('project-limit');
      await projectNote.getByText('The Free plan allows 10 projects per organization; delete a project, or upgrade to Pro for up to 100 projects.').waitFor(WAIT);
      await projectNote.getByRole('link', { name: 'See plans on the Billing page' }).waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'New project' }).isDisabled()).toBe(true);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: artifact('plan-limit-projects-390.png'), fullPage: true });

      // Deleting a project lifts it live: the button is enabled again and the note goes away.
      const projects = await owner.client.project.list.query({ orgId: orgs[0]! });
      await owner.client.project.delete.mutate({ projectId: projects.find((p) => !p.isDefault)!.id });
      await page.getByRole('button', { name: 'New project' }).and(page.locator(':enabled')).waitFor(WAIT);
      expect(await projectNote.count()).toBe(0);
    } catch (err) {
      await page.screenshot({ path: artifact('failure-plan-limits.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  }, 60_000);
});
