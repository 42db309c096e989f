/**
 * Deleting an organization with money in it, in the browser: the confirmation states the credits
 * that will be forfeited before anything happens, and the deletion goes through once the name is typed.
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
    const page = await world.page(owner.cookies);
    await page.goto(`${app.url}/org/${org.id}/settings`);
    const preview = page.getByTestId('deletion-preview');
    await preview.getByText('$25.00 of credits will be forfeited').waitFor(WAIT);
    await page.getByTestId('deletion-preview').screenshot({ path: artifact('delete-organization-preview.png') });
    await page.getByLabel('Type “Closing Co” to confirm').fill('Closing Co');
    await page.getByRole('button', { name: 'Delete organization' }).click();
    await page.getByText('Closing Co was deleted.').waitFor(WAIT);
    expect((await owner.client.organization.list.query()).some((o) => o.id === org.id)).toBe(false);
  }, 45_000);
});
