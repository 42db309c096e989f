/**
 * Webhooks in the browser: an owner adds an endpoint with chosen event types, sees the signing
 * secret once, an event's delivery appears live in the log (and a failing endpoint's retries),
 * and the page fits a phone (screenshots at 1440x900 and 390x844 in test-artifacts/e2e).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { newOwner } from '../helpers/gateway.js';
import { SKIP_BROWSER_TESTS, WAIT, artifact, browserWorld } from './browser.js';

describe.skipIf(SKIP_BROWSER_TESTS)('webhooks in the browser', () => {
  let server: Server | undefined;
  let receiverUrl = '';
  const received: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(body);
        res.statusCode = req.url === '/down' ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });
  const world = browserWorld(() => startTestApp({ jobs: true, env: { WEBHOOK_RETRY_SCHEDULE: '1s,1h', WEBHOOK_POLL_SECONDS: '0.5' } }));
  let app: TestApp;
  beforeAll(() => {
    app = world.app;
  });

  it('adds an endpoint, shows the secret once, and the delivery log updates live', async () => {
    const owner = await newOwner(app, 'Wendy Webhooks');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Hooks Inc' });
    const orgId = organization.id;
    // A failing endpoint already there: its retries show in its log.
    await owner.client.webhook.create.mutate({ orgId, url: `${receiverUrl}/down`, events: ['project.created'] });
    const page = await world.page(owner.cookies);
    try {
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.goto(`${app.url}/org/${orgId}/webhooks`);
      await page.getByRole('link', { name: 'Webhooks' }).waitFor(WAIT);
      await page.getByRole('button', { name: 'Add endpoint' }).first().click();
      await page.getByLabel('Endpoint URL').fill(`${receiverUrl}/up`);
      await page.getByLabel('All events, including types added later').uncheck();
      await page.getByTestId('webhook-event-types').getByText('project.created').click();
      await page.getByTestId('webhook-event-types').getByText('credits.changed').click();
      await page.screenshot({ path: artifact('webhooks-add-desktop.png'), fullPage: true });
      await page.getByRole('button', { name: 'Add endpoint' }).last().click();
      const secret = page.getByTestId('webhook-secret-value');
      await secret.waitFor(WAIT);
      expect(await secret.inputValue()).toMatch(/^whsec_/);
      const up = page.getByTestId('webhook').filter({ hasText: `${receiverUrl}/up` });
      await up.filter({ hasText: 'credits.changed, project.created' }).waitFor(WAIT);

      // Open both logs, then an event happens: both show it live (one delivered, one retrying).
      await up.getByRole('button', { name: 'Deliveries' }).click();
      const down = page.getByTestId('webhook').filter({ hasText: `${receiverUrl}/down` });
      await down.getByRole('button', { name: 'Deliveries' }).click();
      await owner.client.project.create.mutate({ orgId, name: 'Live Hooked' });
      await up.getByTestId('webhook-deliveries').getByText('Delivered').waitFor(WAIT);
      await down.getByTestId('webhook-deliveries').getByText('Retrying').waitFor(WAIT);
      await down.getByText('HTTP 503').first().waitFor(WAIT);
      await page.getByRole('button', { name: "I've saved it" }).click();
      await up.getByRole('button', { name: 'Details' }).first().click();
      await up.getByText('"name": "Live Hooked"').waitFor(WAIT);
      await page.screenshot({ path: artifact('webhooks-desktop.png'), fullPage: true });
      expect(received.some((b) => b.includes('Live Hooked'))).toBe(true);

      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: artifact('webhooks-phone.png'), fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBeLessThanOrEqual(0);
    } catch (err) {
      await page.screenshot({ path: artifact('failure-webhooks.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  });
});
