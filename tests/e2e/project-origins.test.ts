/**
 * A project's browser origins (CORS) in the dashboard: an owner sets them on the Projects page, a
 * call from another origin is refused at once (403, no allow-origin header), an allowed one answers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('project browser origins in the dashboard', () => {
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
  const chat = (key: string, origin: string) => rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { origin });

  it('sets allowed origins on the Projects page; other origins are refused', async () => {
    const owner = await newOwner(app, 'Cora Origins');
    const { orgId, key } = await gatewaySetup(app, owner, { name: 'Origins Co' });
    expect((await chat(key, 'https://other.example')).headers.get('access-control-allow-origin')).toBe('*');
    const page = await world.page(owner.cookies);
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto(`${app.url}/org/${orgId}/projects`);
    const field = page.getByLabel(/Browser origins allowed for/);
    await field.waitFor(WAIT);
    await field.fill('https://App.example.com, http://localhost:5173');
    await field.press('Enter');
    await page.getByText('Allowed origins updated.').waitFor(WAIT);
    await page.screenshot({ path: artifact('project-origins-desktop.png'), fullPage: true });
    expect(await field.inputValue()).toBe('https://app.example.com, http://localhost:5173');

    const refused = await chat(key, 'https://other.example');
    expect([refused.status, refused.headers.get('access-control-allow-origin')]).toEqual([403, null]);
    const allowed = await chat(key, 'https://app.example.com');
    expect([allowed.status, allowed.headers.get('access-control-allow-origin')]).toEqual([200, 'https://app.example.com']);

    // Not an origin: refused with the reason, nothing saved.
    await field.fill('app.example.com/path');
    await field.press('Enter');
    await page.getByText(/is not an origin/).waitFor(WAIT);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: artifact('project-origins-phone.png'), fullPage: true });
  });
});
