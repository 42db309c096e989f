/**
 * What a member sees when they lose access while looking at an organization (removed; the
 * organization deleted): a clear notice and a move to another organization, without a reload.
 * Then two-factor sign-in through the UI.
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateHOTP, generateTOTP } from '@oslojs/otp';
import type { TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('losing access, and two-factor sign-in, in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  async function track<T>(page: Page, name: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      await page.screenshot({ path: artifact(`failure-${name}.png`), fullPage: true }).catch(() => {});
      throw err;
    }
  }

  it('moves a removed member to another organization with a notice, and likewise on deletion', async () => {
    const owner = await signUp(app.url, 'Olga Owner');
    const member = await signUp(app.url, 'Ben Member');
    const { organization: home } = await member.client.organization.create.mutate({ name: 'Ben Lab' });
    const { organization: shared } = await owner.client.organization.create.mutate({ name: 'Removal Co' });
    const invite = await owner.client.team.invite.mutate({ orgId: shared.id, email: member.email, role: 'developer' });
    await member.client.team.acceptInvitation.mutate({ token: invite.inviteUrl.split('/invite/')[1]! });

    const page = await world.page(member.cookies);
    await track(page, 'removed', async () => {
      await page.goto(`${app.url}/org/${shared.id}/projects`);
      await page.getByText('Default Project').waitFor(WAIT);
      await page.getByText('Live', { exact: true }).waitFor(WAIT);

      await owner.client.team.removeMember.mutate({ orgId: shared.id, userId: member.user.id });
      await page.getByRole('alert').filter({ hasText: 'You were removed from Removal Co.' }).waitFor(WAIT);
      await page.waitForURL(`**/org/${home.id}/overview`);

      const { organization: doomed } = await owner.client.organization.create.mutate({ name: 'Doomed Co' });
      const second = await owner.client.team.invite.mutate({ orgId: doomed.id, email: member.email, role: 'admin' });
      await member.client.team.acceptInvitation.mutate({ token: second.inviteUrl.split('/invite/')[1]! });
      await page.getByRole('button', { name: /Switch organization/ }).click();
      await page.getByRole('link', { name: /Doomed Co/ }).click();
      await page.waitForURL(`**/org/${doomed.id}/overview`);
      await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
      await page.getByText('Live', { exact: true }).waitFor(WAIT);

      await owner.client.organization.delete.mutate({ orgId: doomed.id, confirmName: 'Doomed Co' });
      await page.getByRole('alert').filter({ hasText: 'Doomed Co was deleted by one of its owners.' }).waitFor(WAIT);
      await page.waitForURL(`**/org/${home.id}/overview`);
      await page.screenshot({ path: artifact('member-notice-1280.png') });
    });
  }, 40_000);

  it('turns on two-factor authentication (QR code, recovery codes), signs in with a recovery code and with a code', async () => {
    const user = await signUp(app.url, 'Tess Totp');
    const page = await world.page(user.cookies);
    // Codes are single-use per 30-second step: turn it on with the previous step's code (inside the
    // clock-drift window), sign in with the current one.
    const code = (secret: string) => generateTOTP(decodeBase32IgnorePadding(secret), 30, 6);
    const previousCode = (secret: string) => generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) - 1), 6);
    await track(page, '2fa', async () => {
      await page.goto(`${app.url}/account`);
      await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
      const secret = await page.getByTestId('totp-secret').inputValue();
      // The QR code of the otpauth link is shown (an SVG image that has loaded).
      const qr = page.getByTestId('totp-qr');
      await qr.waitFor(WAIT);
      expect(await qr.evaluate((img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth > 0)).toBe(true);
      await page.screenshot({ path: artifact('2fa-setup-1280.png'), fullPage: true });
      await page.getByLabel('Code from the app').fill('12345');
      await page.getByRole('button', { name: 'Turn on' }).click();
      await page.getByText('Enter the 6-digit code from your authenticator app').waitFor(WAIT);
      // The previous step's code is accepted only until the step after the current one begins: not
      // in a step's last seconds, so a slow round trip cannot carry it out of the window (CI saw that).
      const left = 30_000 - (Date.now() % 30_000);
      if (left < 8_000) await new Promise((resolve) => setTimeout(resolve, left + 250));
      await page.getByLabel('Code from the app').fill(previousCode(secret));
      await page.getByRole('button', { name: 'Turn on' }).click();
      await page.getByText('Two-factor authentication is on.').waitFor(WAIT);
      // The recovery codes, shown once.
      const codes = await page.getByTestId('recovery-codes').locator('li').allTextContents();
      expect(codes).toHaveLength(10);
      // They can be downloaded as a text file holding every code.
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('button', { name: 'Download codes' }).click()]);
      expect(download.suggestedFilename()).toBe('llm-gateway-recovery-codes.txt');
      const saved = await readFile((await download.path())!, 'utf8');
      for (const c of codes) expect(saved).toContain(c);
      await page.screenshot({ path: artifact('2fa-recovery-codes-1280.png'), fullPage: true });
      await page.getByRole('button', { name: 'I have saved them' }).click();
      await page.getByText('10 of 10 recovery codes left.').waitFor(WAIT);

      const signInWithPassword = async () => {
        await page.getByRole('button', { name: 'Sign out', exact: true }).click();
        await page.waitForURL('**/signin');
        await page.getByLabel('Email', { exact: true }).fill(user.email);
        await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
        await page.getByRole('button', { name: 'Sign in' }).click();
      };
      // Lost the authenticator: a recovery code signs in.
      await signInWithPassword();
      await page.getByRole('button', { name: 'Lost your authenticator? Use a recovery code' }).click();
      await page.getByLabel('Recovery code').fill(codes[0]!);
      await page.getByRole('button', { name: 'Verify and sign in' }).click();
      await page.waitForURL('**/orgs/new');
      await page.goto(`${app.url}/account`);
      await page.getByText('9 of 10 recovery codes left.').waitFor(WAIT);

      await signInWithPassword();
      await page.getByLabel('Authentication code').fill(code(secret));
      await page.getByRole('button', { name: 'Verify and sign in' }).click();
      await page.waitForURL('**/orgs/new');
      expect(await page.getByRole('heading', { name: 'Create your first organization' }).count()).toBe(1);
    });
  }, 30_000);

  it('an emailed sign-in link that no longer works says so and offers no button that cannot help', async () => {
    const page = await world.page();
    await track(page, 'signin-link', async () => {
      await page.goto(`${app.url}/signin/link?token=${'x'.repeat(43)}`);
      await page.getByRole('heading', { name: 'Sign in with your link' }).waitFor(WAIT);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByText('This sign-in link is not valid', { exact: false }).waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'Sign in', exact: true }).count()).toBe(0);
      await page.getByRole('link', { name: 'Back to sign in' }).click();
      await page.waitForURL('**/signin');
    });
  }, 20_000);
});
