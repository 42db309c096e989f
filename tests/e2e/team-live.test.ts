/**
 * Two people in two browsers: the owner signs up, creates an organization and invites a developer;
 * the developer signs up from the invitation link and accepts; the owner promotes them to admin and
 * the developer's Team page grows the invite form without a reload. Presence shows each to the other.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestApp } from '../helpers/app.js';
import { uniqueEmail } from '../helpers/client.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

const PASSWORD = 'correct horse battery staple';

describe.skipIf(SKIP_BROWSER_TESTS)('team collaboration in the browser', () => {
  const world = browserWorld();
  let app: TestApp;
  const contexts = world.contexts;
  beforeAll(() => {
    app = world.app;
  });

  const newPage = (): Promise<Page> => world.page();

  it('invites, accepts, promotes live, and shows presence', async () => {
    try {
      await scenario();
    } catch (err) {
      // Leave the state of every page behind for whoever reads the failure.
      for (const [i, c] of contexts.entries()) {
        for (const p of c.pages()) await p.screenshot({ path: artifact(`failure-${i}.png`), fullPage: true }).catch(() => {});
      }
      throw err;
    }
  }, 60_000);

  async function scenario() {
    const ownerEmail = uniqueEmail('owner');
    const memberEmail = uniqueEmail('member');

    // The owner signs up and creates an organization.
    const owner = await newPage();
    await owner.goto(`${app.url}/signup`);
    await owner.getByLabel('Name', { exact: true }).fill('Olivia Owner');
    await owner.getByLabel('Email', { exact: true }).fill(ownerEmail);
    await owner.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await owner.getByRole('button', { name: 'Create account' }).click();
    await owner.waitForURL('**/orgs/new');
    await owner.getByLabel('Organization name').fill('Acme Robotics');
    await owner.getByRole('button', { name: 'Create organization' }).click();
    await owner.waitForURL(/\/org\/[0-9a-f-]{36}\/overview$/);
    const orgId = /\/org\/([0-9a-f-]{36})\//.exec(owner.url())![1]!;

    // ...and invites a developer, reading the link from the page (no SMTP in tests).
    await owner.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Team' }).click();
    await owner.waitForURL(`**/org/${orgId}/team`);
    await owner.getByLabel('Email', { exact: true }).fill(memberEmail);
    await expect(owner.getByLabel('Role', { exact: true }).inputValue()).resolves.toBe('developer');
    await owner.getByRole('button', { name: 'Send invitation' }).click();
    const inviteUrl = await owner.getByTestId('invite-url').inputValue();
    expect(inviteUrl).toMatch(new RegExp(`^${app.url}/invite/[A-Za-z0-9_-]{20,}$`));

    // The second person opens the link signed out, signs up from it (email pre-filled) and accepts.
    const member = await newPage();
    await member.goto(inviteUrl);
    await member.getByTestId('invite-org').filter({ hasText: 'Acme Robotics' }).waitFor(WAIT);
    await member.getByRole('link', { name: 'Create an account' }).click();
    await member.waitForURL('**/signup?**');
    await expect(member.getByLabel('Email', { exact: true }).inputValue()).resolves.toBe(memberEmail);
    await member.getByLabel('Name', { exact: true }).fill('Bea Member');
    await member.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await member.getByRole('button', { name: 'Create account' }).click();
    await member.waitForURL('**/invite/**');
    await member.getByRole('button', { name: 'Accept invitation' }).click();
    await member.waitForURL(`**/org/${orgId}/overview`);

    // As a developer, the Team page has no invite form.
    await member.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Team' }).click();
    await member.waitForURL(`**/org/${orgId}/team`);
    await member.getByTestId(`member-${ownerEmail}`).waitFor(WAIT);
    expect(await member.getByRole('button', { name: 'Send invitation' }).count()).toBe(0);
    expect(await member.getByLabel('Role of Olivia Owner').count()).toBe(0);
    await member.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    // The owner sees the new member appear live and sees them in the presence indicator.
    const memberRow = owner.getByTestId(`member-${memberEmail}`);
    await memberRow.waitFor(WAIT);
    await owner.getByTestId('presence').getByTitle(/^Bea Member · viewing team$/).waitFor(WAIT);
    await member.getByTestId('presence').getByTitle(/^Olivia Owner · viewing team$/).waitFor(WAIT);

    // The owner promotes the developer to admin...
    await owner.getByLabel('Role of Bea Member').selectOption('admin');
    await owner.getByText('Bea Member is now Admin.').waitFor(WAIT);

    // ...and the member's page changes without a reload: the invite form and role controls appear.
    await member.getByRole('button', { name: 'Send invitation' }).waitFor({ state: 'visible', timeout: 10_000 });
    await member.getByText('Your role in Acme Robotics is now Admin.').waitFor(WAIT);
    expect(await member.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    // Admins do not manage owners: the owner's role stays read-only for them.
    expect(await member.getByLabel('Role of Olivia Owner').count()).toBe(0);
    await member.getByRole('link', { name: 'Audit log' }).waitFor(WAIT);

    await owner.screenshot({ path: artifact('owner-team-1280.png'), fullPage: true });
    await member.screenshot({ path: artifact('member-team-1280.png'), fullPage: true });

    // Phone width: the nav collapses behind a menu button.
    await member.setViewportSize({ width: 390, height: 844 });
    await member.screenshot({ path: artifact('member-team-390.png'), fullPage: true });
    await member.getByRole('button', { name: 'Menu', exact: true }).click();
    await member.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Projects' }).click();
    await member.waitForURL(`**/org/${orgId}/projects`);
    await member.getByRole('button', { name: 'New project' }).waitFor(WAIT);
    await member.screenshot({ path: artifact('member-projects-390.png'), fullPage: true });
    await owner.getByTestId('presence').getByTitle(/^Bea Member · viewing projects$/).waitFor(WAIT);
  }
});
