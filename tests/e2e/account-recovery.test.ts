/**
 * Accounts in the browser: a forgotten password reset through the link emailed by a local SMTP
 * server, a change of email address confirmed from the new address, and an invitation for someone
 * who signed up without its link, accepted from the home page once their address is verified.
 * Screenshots of the account page at 1440x900 and 390x844.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, uniqueEmail } from '../helpers/client.js';
import { startFakeSmtp, type FakeSmtp } from '../helpers/smtp.js';
import { waitFor } from '../helpers/billing.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

let smtp: FakeSmtp;

/** The text of a received message, quoted-printable decoded (soft line breaks and =XX escapes). */
const decoded = (data: string) =>
  data.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

async function linkFromMail(to: string, path: string, nth = 0): Promise<string> {
  const mail = await waitFor(
    async () => smtp.received.filter((m) => m.to.some((r) => r.includes(`<${to}>`)) && decoded(m.data).includes(`${path}?token=`))[nth],
    15_000,
    `a ${path} link emailed to ${to}`,
  );
  const m = new RegExp(`(https?://[^\\s]+${path}\\?token=[a-z2-7]+)`).exec(decoded(mail.data));
  if (!m) throw new Error(`no ${path} link in the mail to ${to}`);
  return m[1]!;
}

describe.skipIf(SKIP_BROWSER_TESTS)('account recovery and upkeep in the browser', () => {
  const world = browserWorld(
    async () => {
      smtp = await startFakeSmtp();
      return startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }, jobs: true, emailRetry: { retryDelaySeconds: 1, retryBackoff: false, pollingIntervalSeconds: 0.5 } });
    },
    () => smtp.close(),
  );
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  async function track<T>(page: Page, name: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      await page.screenshot({ path: artifact(`failure-account-${name}.png`), fullPage: true }).catch(() => {});
      throw err;
    }
  }

  it('resets a forgotten password with the emailed link, once', async () => {
    const person = await signUp(app.url, 'Rosa Reset');
    await person.client.organization.create.mutate({ name: 'Rosa Works' });
    const page = await world.page();
    await track(page, 'reset', async () => {
      await page.goto(`${app.url}/signin`);
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.waitForURL('**/forgot-password**');
      await page.getByLabel('Email').fill(person.email);
      await page.getByRole('button', { name: 'Email me a reset link' }).click();
      await page.getByText('we have emailed it a link to choose a new password').waitFor(WAIT);

      const link = await linkFromMail(person.email, '/reset-password');
      expect(link.startsWith(`${app.url}/reset-password?token=`)).toBe(true);
      await page.goto(link);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor(WAIT);
      await page.screenshot({ path: artifact('reset-password-390x844.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 820 });
      await page.getByLabel('New password', { exact: true }).fill('short');
      await page.getByLabel('New password again').fill('short');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByText('Password must be at least 10 characters').waitFor(WAIT);
      await page.getByLabel('New password', { exact: true }).fill('my recovered password');
      await page.getByLabel('New password again').fill('my recovered password');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByText('Your new password is set').waitFor(WAIT);
      await page.getByRole('link', { name: 'Sign in' }).click();
      await page.waitForURL('**/signin**');
      expect(await page.getByLabel('Email', { exact: true }).inputValue()).toBe(person.email);
      await page.getByLabel('Password', { exact: true }).fill('my recovered password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL('**/org/**');

      // The link worked once.
      await page.goto(link);
      await page.getByLabel('New password', { exact: true }).fill('another new password');
      await page.getByLabel('New password again').fill('another new password');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByText('this reset link is not valid').waitFor(WAIT);
      await page.getByRole('link', { name: 'Ask for a new link' }).waitFor(WAIT);
    });
  }, 60_000);

  it('changes the email address once the link sent to the new address is opened; screenshots of the account page', async () => {
    const person = await signUp(app.url, 'Emil Change');
    const page = await world.page(person.cookies);
    const next = uniqueEmail('emil-new');
    await track(page, 'email', async () => {
      await page.goto(`${app.url}/account`);
      await page.getByTestId('account-email').filter({ hasText: person.email }).waitFor(WAIT);
      await page.getByText('Not confirmed').waitFor(WAIT);
      await page.getByLabel('New email address').fill(next);
      await page.getByRole('button', { name: 'Change email' }).click();
      await page.getByTestId('email-change-pending').filter({ hasText: next }).waitFor(WAIT);

      await page.goto(await linkFromMail(next, '/confirm-email'));
      await page.getByText('Done: your account now uses').waitFor(WAIT);
      await page.getByRole('link', { name: 'Go to the dashboard' }).waitFor(WAIT);
      await page.goto(`${app.url}/account`);
      await page.getByTestId('account-email').filter({ hasText: next }).waitFor(WAIT);
      await page.getByText('Confirmed', { exact: true }).waitFor(WAIT);
      expect((await person.client.auth.me.query())?.user.email).toBe(next);

      // A second browser, so the sessions list has something to sign out.
      const other = await world.page();
      await other.goto(`${app.url}/signin`);
      await other.getByLabel('Email', { exact: true }).fill(next);
      await other.getByLabel('Password', { exact: true }).fill('correct horse battery');
      await other.getByRole('button', { name: 'Sign in' }).click();
      await other.waitForURL('**/orgs/new');
      await page.reload();
      await page.getByTestId('sessions').locator('li').nth(1).waitFor(WAIT);
      expect(await page.getByTestId('sessions').getByText('This session').count()).toBe(1);

      for (const [w, h] of [
        [1440, 900],
        [390, 844],
      ] as const) {
        await page.setViewportSize({ width: w, height: h });
        await page.getByRole('heading', { name: 'Account and security' }).waitFor(WAIT);
        await page.screenshot({ path: artifact(`account-${w}x${h}.png`), fullPage: true });
        // Nothing wider than the screen.
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      }
      await page.setViewportSize({ width: 1280, height: 820 });
      await page.getByRole('button', { name: 'Sign out everywhere else' }).click();
      await page.getByRole('button', { name: 'Sign out other sessions' }).click();
      await page.getByText('One other session was signed out.').waitFor(WAIT);
      await other.reload();
      await other.waitForURL('**/signin**');
    });
  }, 60_000);

  it('shows an invitation to someone who signed up without its link, once verified, and accepts it from the home page', async () => {
    const owner = await signUp(app.url, 'Hana Host');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Homepage Co' });
    const email = uniqueEmail('home-invitee');
    await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'developer' });
    const page = await world.page();
    await track(page, 'pending-invitation', async () => {
      await page.goto(`${app.url}/signup`);
      await page.getByLabel('Name').fill('Ines Invitee');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill('correct horse battery');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL('**/orgs/new');
      // Not verified yet: the home page shows no invitation and goes on.
      await page.goto(`${app.url}/`);
      await page.waitForURL('**/orgs/new');

      await page.goto(await linkFromMail(email, '/verify-email'));
      await page.getByText('is confirmed as your address').waitFor(WAIT);
      await page.getByRole('link', { name: 'Go to the dashboard' }).click();
      const list = page.getByTestId('pending-invitations');
      await list.getByText('Homepage Co', { exact: true }).waitFor(WAIT);
      await list.getByText('Invited by Hana Host').waitFor(WAIT);
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.screenshot({ path: artifact('home-pending-invitations-1440x900.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: artifact('home-pending-invitations-390x844.png'), fullPage: true });
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.getByRole('button', { name: 'Accept the invitation to Homepage Co' }).click();
      await page.waitForURL(`**/org/${organization.id}/overview`);
      const members = await owner.client.team.members.query({ orgId: organization.id });
      expect(members.find((m) => m.email === email)?.role).toBe('developer');
    });
  }, 60_000);
});
