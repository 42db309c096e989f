/**
 * Removing a member who created an API key, in the browser: the dialog says how many keys they
 * have and offers to revoke or transfer them; revoking makes the gateway refuse the key at once,
 * while the owner's own key keeps working.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('removing a member with API keys in the browser', () => {
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

  const chat = (key: string) => rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

  async function track<T>(page: Page, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      await page.screenshot({ path: artifact('failure-team-remove-keys.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  }

  it('says "1 API key", offers revoke or transfer, and revoking makes the gateway refuse the key', async () => {
    const owner = await newOwner(app, 'Olga Owner');
    const { orgId, projectId, key: ownerKey } = await gatewaySetup(app, owner, { name: 'Keys Co' });
    const developer = await signUp(app.url, 'Dora Developer');
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: developer.email, role: 'developer' });
    await developer.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
    const { apiKey, key: devKey } = await developer.client.apiKey.create.mutate({ projectId, name: 'dora laptop' });
    expect((await chat(devKey)).status).toBe(200);

    const page = await world.page(owner.cookies);
    await track(page, async () => {
      await page.goto(`${app.url}/org/${orgId}/team`);
      await page.getByTestId(`member-${developer.email}`).waitFor(WAIT);
      await page.getByRole('button', { name: 'Remove Dora Developer' }).click();

      const dialog = page.getByTestId('remove-member-dialog');
      await dialog.getByRole('heading', { name: 'Remove Dora Developer?' }).waitFor(WAIT);
      await dialog.getByTestId('remove-member-keys').filter({ hasText: 'Dora Developer created 1 API key that is still active.' }).waitFor(WAIT);
      const revoke = dialog.getByRole('radio', { name: /^Revoke it/ });
      const transfer = dialog.getByRole('radio', { name: /^Transfer it/ });
      expect(await revoke.isChecked()).toBe(true);
      expect(await transfer.isEnabled()).toBe(true);

      // Transfer offers the members who stay; the owner is the default heir.
      await transfer.check();
      const heir = dialog.getByLabel('New owner of the keys');
      await heir.waitFor(WAIT);
      expect(await heir.locator('option').allTextContents()).toEqual([`Olga Owner (${owner.email})`]);
      await dialog.getByRole('button', { name: 'Remove and transfer 1 API key' }).waitFor(WAIT);

      // Back to revoke. The dialog opens from a table cell (right-aligned, no wrapping): its text
      // must still wrap inside it, at desktop and at phone width, with nothing cut off.
      await revoke.check();
      expect(await heir.count()).toBe(0);
      const fits = () =>
        dialog.evaluate((el) => {
          const box = el.getBoundingClientRect();
          const inside = [...el.querySelectorAll('button, label, select, p, h2')].every((child) => {
            const r = child.getBoundingClientRect();
            return r.left >= box.left && r.right <= box.right;
          });
          return inside && el.scrollWidth <= el.clientWidth && getComputedStyle(el).textAlign === 'left';
        });
      expect(await fits()).toBe(true);
      await dialog.screenshot({ path: artifact('team-remove-keys-dialog-1280.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      expect(await fits()).toBe(true);
      await dialog.screenshot({ path: artifact('team-remove-keys-dialog-390.png') });
      await dialog.getByRole('button', { name: 'Remove and revoke 1 API key' }).click();
      await page.getByText('Dora Developer was removed. 1 API key revoked.').waitFor(WAIT);
      await dialog.waitFor({ state: 'detached', timeout: 10_000 });
      await page.getByTestId(`member-${developer.email}`).waitFor({ state: 'detached', timeout: 10_000 });
    });

    // The gateway refuses the revoked key at once; the owner's own key still works.
    const refused = await chat(devKey);
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ error: { code: 'invalid_api_key' } });
    expect((await chat(ownerKey)).status).toBe(200);
    const listed = await owner.client.apiKey.list.query({ projectId });
    expect(listed.find((k) => k.id === apiKey.id)?.status).toBe('revoked');
  }, 45_000);
});
