/**
 * Signed webhooks (docs/webhooks.md), against the real server, PostgreSQL, pg-boss and a local HTTP
 * receiver: deliveries arrive within 2 s and their signatures verify with the very snippet the docs
 * give (extracted from docs/webhooks.md and imported); failed attempts are retried by pg-boss and
 * later events wait for earlier ones; an endpoint that keeps failing is disabled and its owners are
 * told; redelivery repeats the event; private URLs are refused when not allowed. Time is compressed
 * by configuration (WEBHOOK_RETRY_SCHEDULE, WEBHOOK_DISABLE_AFTER).
 */
import { metricsRegistry } from '../../server/observability/failures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { raiseOrganizationLimit, sql } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';
import { WebhookSender } from '../../server/modules/webhooks/sender.js';

type Verify = (secret: string, header: string | undefined, rawBody: string | Buffer, toleranceSeconds?: number, nowSeconds?: number) => boolean;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: { id: string; type: string; orgId: string; createdAt: string; data: Record<string, unknown> };
  answered: number;
  at: number;
}

/** A local endpoint: answers each path with the status its behaviour gives (200 by default). */
class Receiver {
  readonly received: Received[] = [];
  private readonly behaviour = new Map<string, (n: number) => number>();
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        const n = this.received.filter((r) => r.path === path).length;
        const answered = (this.behaviour.get(path) ?? (() => 200))(n);
        this.received.push({ path, headers: req.headers, raw, body: JSON.parse(raw), answered, at: Date.now() });
        res.statusCode = answered;
        res.end(answered < 300 ? 'ok' : 'nope');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  on(path: string, answer: (n: number) => number): void {
    this.behaviour.set(path, answer);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

let app: TestApp;
let strict: TestApp;
let receiver: Receiver;
let owner: Awaited<ReturnType<typeof signUp>>;
let verifyWebhook: Verify;

/** The ```js webhook-verify block of docs/webhooks.md, written to a module and imported as it is. */
async function loadDocumentedVerifier(): Promise<Verify> {
  const doc = readFileSync(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
  const match = /```js webhook-verify\n([\s\S]*?)```/.exec(doc);
  if (!match) throw new Error('docs/webhooks.md has no ```js webhook-verify block');
  const file = join(mkdtempSync(join(tmpdir(), 'webhook-verify-')), 'verify.mjs');
  writeFileSync(file, match[1]!);
  return ((await import(pathToFileURL(file).href)) as { verifyWebhook: Verify }).verifyWebhook;
}

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  verifyWebhook = await loadDocumentedVerifier();
  app = await startTestApp({
    jobs: true,
    env: { WEBHOOK_RETRY_SCHEDULE: '100ms,100ms', WEBHOOK_DISABLE_AFTER: '1500ms', WEBHOOK_POLL_SECONDS: '0.5' },
  });
  // The same database served as shipped: private addresses refused (no job workers).
  strict = await startTestApp({ databaseUrl: app.databaseUrl, env: { GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'false' } });
  owner = await signUp(app.url, 'Hook Owner');
  await raiseOrganizationLimit(app, owner.user.id);
});
afterAll(async () => {
  await strict?.close();
  await app?.close();
  await receiver?.close();
});

async function newOrg(name: string) {
  const { organization } = await owner.client.organization.create.mutate({ name });
  return organization.id;
}

const deliveryRows = (webhookId: string) =>
  sql<{ event_type: string; status: string; attempts: number; response_status: number | null; body: string }>(
    app,
    'select event_type, status, attempts, response_status, body from webhook_delivery where endpoint_id = ? order by seq',
    [webhookId],
  );

describe('webhook deliveries', () => {
  it('delivers a subscribed event within 2 seconds, signed so that the documented snippet verifies it', async () => {
    const orgId = await newOrg('Hooked Co');
    const { webhook, secret } = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/signed`, events: ['project.created'] });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhook).toMatchObject({ url: `${receiver.url}/signed`, events: ['project.created'], enabled: true });
    // Sealed at rest: the database never holds the secret itself.
    const [stored] = await sql<{ sealed_secret: string }>(app, 'select sealed_secret from webhook_endpoint where id = ?', [webhook.id]);
    expect(stored!.sealed_secret).not.toContain(secret.slice(6));

    // Not subscribed: a settings change is not sent.
    await owner.client.organization.update.mutate({ orgId, version: 1, billingEmail: 'ap@example.com' });
    const committed = Date.now();
    const project = await owner.client.project.create.mutate({ orgId, name: 'Signed Project' });
    const [got] = await waitFor(async () => (receiver.at('/signed').length > 0 ? receiver.at('/signed') : null), 5000, 'the delivery');
    expect(got!.at - committed).toBeLessThan(2000);
    expect(receiver.at('/signed')).toHaveLength(1);

    expect(got!.body).toMatchObject({ type: 'project.created', orgId, data: { projectId: project.id, name: 'Signed Project' } });
    expect(got!.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(got!.body.createdAt).getTime()).toBeGreaterThan(committed - 5000);
    expect(got!.headers['content-type']).toBe('application/json');
    const header = got!.headers['x-gateway-signature'] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(secret, header, got!.raw)).toBe(true);
    expect(verifyWebhook(secret, header, Buffer.from(got!.raw))).toBe(true);
    // A changed body, another secret, or an old timestamp do not verify.
    expect(verifyWebhook(secret, header, got!.raw.replace('Signed Project', 'Signed Projecd'))).toBe(false);
    expect(verifyWebhook(`${secret}x`, header, got!.raw)).toBe(false);
    expect(verifyWebhook(secret, header, got!.raw, 300, Math.floor(Date.now() / 1000) + 3600)).toBe(false);

    const log = await owner.client.webhook.deliveries.query({ webhookId: webhook.id });
    expect(log.items).toHaveLength(1);
    expect(log.items[0]).toMatchObject({ eventType: 'project.created', status: 'delivered', attempts: 1, responseStatus: 200, lastError: null, eventId: got!.body.id });

    // Rotating the secret: the next delivery verifies with the new one only.
    const { secret: rotated } = await owner.client.webhook.rotateSecret.mutate({ webhookId: webhook.id });
    expect(rotated).not.toBe(secret);
    await owner.client.webhook.sendTest.mutate({ webhookId: webhook.id });
    const test = await waitFor(async () => receiver.at('/signed').find((r) => r.body.type === 'webhook.test'), 5000, 'the test delivery');
    expect(test.body.data).toEqual({ webhookId: webhook.id });
    expect(verifyWebhook(rotated, test.headers['x-gateway-signature'] as string, test.raw)).toBe(true);
    expect(verifyWebhook(secret, test.headers['x-gateway-signature'] as string, test.raw)).toBe(false);

    const audit = await sql<{ action: string }>(app, `select action from audit_log where org_id = ? and target_type = 'webhook' order by id`, [orgId]);
    expect(audit.map((a) => a.action)).toEqual(['webhook.created', 'webhook.secretRotated']);
  });

  it('retries failed attempts through pg-boss, and a later event waits until the earlier one is delivered', async () => {
    const attemptsSoFar = async () => {
      const metric = (await metricsRegistry.getSingleMetric('gateway_webhook_delivery_attempts_total')!.get()).values;
      const of = (outcome: string) => metric.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
      return { delivered: of('delivered'), retrying: of('retrying') };
    };
    const metricsBefore = await attemptsSoFar();
    const orgId = await newOrg('Flaky Co');
    receiver.on('/flaky', (n) => (n < 2 ? 503 : 200));
    const { webhook } = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/flaky`, events: ['project.created', 'project.deleted'] });
    const first = await owner.client.project.create.mutate({ orgId, name: 'First' });
    const second = await owner.client.project.create.mutate({ orgId, name: 'Second' });
    await owner.client.project.delete.mutate({ projectId: second.id });

    await waitFor(async () => receiver.at('/flaky').length >= 5, 10_000, 'three deliveries after two failures');
    const seen = receiver.at('/flaky').map((r) => [r.body.type, r.body.data.projectId, r.answered]);
    expect(seen).toEqual([
      ['project.created', first.id, 503],
      ['project.created', first.id, 503],
      ['project.created', first.id, 200],
      ['project.created', second.id, 200],
      ['project.deleted', second.id, 200],
    ]);
    // Every attempt is signed afresh; the event id stays.
    const attempts = receiver.at('/flaky').slice(0, 3);
    expect(new Set(attempts.map((r) => r.body.id)).size).toBe(1);
    // Retries come from pg-boss jobs at their due time.
    const jobs = await sql<{ n: number }>(app, `select count(*)::int as n from pgboss.job where name = 'webhook-delivery' and data->>'endpointId' = ?`, [webhook.id]);
    expect(jobs[0]!.n).toBeGreaterThanOrEqual(2);

    await waitFor(async () => (await deliveryRows(webhook.id)).every((d) => d.status === 'delivered'), 5000, 'the log to settle');
    expect((await deliveryRows(webhook.id)).map((d) => [d.event_type, d.status, d.attempts, d.response_status])).toEqual([
      ['project.created', 'delivered', 3, 200],
      ['project.created', 'delivered', 1, 200],
      ['project.deleted', 'delivered', 1, 200],
    ]);
    // The operator's metrics count the same attempts (other tests' deliveries may add to them).
    const metricsAfter = await attemptsSoFar();
    expect(metricsAfter.retrying - metricsBefore.retrying).toBeGreaterThanOrEqual(2);
    expect(metricsAfter.delivered - metricsBefore.delivered).toBeGreaterThanOrEqual(3);
  });

  it('gives a delivery up after the last retry, disables an endpoint failing for WEBHOOK_DISABLE_AFTER and tells the owners; redelivery repeats the event', async () => {
    const orgId = await newOrg('Down Co');
    receiver.on('/down', () => 500);
    const { webhook, secret } = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/down`, events: ['project.created'] });
    const watcher = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/watcher`, events: ['webhook.changed'] });
    // Each delivery is given up after 3 attempts (well under 1.5 s); events keep coming until the
    // endpoint has failed for 1.5 s and is disabled.
    let n = 0;
    const disabled = await waitFor(async () => {
      const [row] = await sql<{ enabled: boolean; disabled_reason: string | null; pending: number }>(
        app,
        `select enabled, disabled_reason, (select count(*)::int from webhook_delivery where endpoint_id = e.id and status = 'pending') as pending from webhook_endpoint e where id = ?`,
        [webhook.id],
      );
      if (row && !row.enabled) return row;
      if (row && row.pending === 0) await owner.client.project.create.mutate({ orgId, name: `Lost ${++n}` });
      return null;
    }, 15_000, 'the endpoint to be disabled');
    expect(n).toBeGreaterThanOrEqual(2);
    expect(disabled.disabled_reason).toMatch(/every attempt failed since .*the endpoint answered 500/);
    const rows = await deliveryRows(webhook.id);
    expect(rows.every((d) => d.status === 'failed')).toBe(true);
    const gaveUp = rows.find((d) => d.body.includes('Lost 1'))!;
    expect(gaveUp.attempts).toBe(3);
    expect(gaveUp.response_status).toBe(500);

    // The owner is emailed, the live stream carries the change, other subscribed endpoints hear it, the audit log has it.
    const mail = await waitFor(async () => (await sql<{ subject: string; body: string }>(app, 'select subject, body from email_outbox where recipient = ?', [owner.email])).find((m) => m.subject.startsWith('Webhook endpoint disabled')), 5000, 'the email');
    expect(mail.subject).toBe('Webhook endpoint disabled in Down Co');
    expect(mail.body).toContain(`${receiver.url}/down`);
    const live = await sql<{ payload: { change: string; webhookId: string } }>(app, `select payload from org_event where org_id = ? and type = 'webhook.changed' order by id desc limit 1`, [orgId]);
    expect(live[0]!.payload).toMatchObject({ webhookId: webhook.id, change: 'disabled' });
    const told = await waitFor(async () => receiver.at('/watcher').find((r) => r.body.data.change === 'disabled'), 5000, 'the watcher');
    expect(told.body.data.webhookId).toBe(webhook.id);
    expect(watcher.webhook.id).not.toBe(webhook.id);
    const audit = await sql<{ action: string; actor_id: string | null }>(app, `select action, actor_id from audit_log where org_id = ? and target_id = ? order by id`, [orgId, webhook.id]);
    expect(audit.map((a) => a.action)).toEqual(['webhook.created', 'webhook.disabled']);

    // Disabled: new events are not queued for it; redelivery waits for it to be enabled.
    const before = receiver.at('/down').length;
    const { items } = await owner.client.webhook.deliveries.query({ webhookId: webhook.id });
    const lost = items.find((d) => d.body.includes('Lost 1'))!;
    await expect(owner.client.webhook.redeliver.mutate({ deliveryId: lost.id })).rejects.toMatchObject({ data: { code: 'PRECONDITION_FAILED' } });

    // Fixed and enabled again: a redelivery repeats the same event (same id and body), freshly signed.
    receiver.on('/down', () => 200);
    const enabled = await owner.client.webhook.update.mutate({ webhookId: webhook.id, enabled: true });
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    const again = await owner.client.webhook.redeliver.mutate({ deliveryId: lost.id });
    expect(again).toMatchObject({ status: 'pending', redeliveryOf: lost.id, eventId: lost.eventId });
    const repeat = await waitFor(async () => receiver.at('/down').slice(before).find((r) => r.answered === 200), 5000, 'the redelivery');
    expect(repeat.raw).toBe(lost.body);
    expect(repeat.body.id).toBe(lost.eventId);
    expect(verifyWebhook(secret, repeat.headers['x-gateway-signature'] as string, repeat.raw)).toBe(true);
    const after = await owner.client.webhook.deliveries.query({ webhookId: webhook.id });
    expect(after.items[0]).toMatchObject({ id: again.id, status: 'delivered', attempts: 1 });
    expect(after.items.find((d) => d.id === lost.id)).toMatchObject({ status: 'failed' });
  });

  it('pages the delivery log newest first; a changed subscription and a deleted endpoint get nothing more', async () => {
    const orgId = await newOrg('Paged Co');
    const { webhook } = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/paged`, events: ['project.created'] });
    for (let i = 0; i < 3; i++) await owner.client.project.create.mutate({ orgId, name: `Paged ${i}` });
    await waitFor(async () => receiver.at('/paged').length >= 3, 5000, 'three deliveries');
    const page1 = await owner.client.webhook.deliveries.query({ webhookId: webhook.id, limit: 2 });
    expect(page1.items).toHaveLength(2);
    expect(page1.nextCursor).not.toBeNull();
    const page2 = await owner.client.webhook.deliveries.query({ webhookId: webhook.id, limit: 2, cursor: page1.nextCursor });
    expect(page2.items).toHaveLength(1);
    expect(page2.nextCursor).toBeNull();
    expect([...page1.items, ...page2.items].map((d) => JSON.parse(d.body).data.name)).toEqual(['Paged 2', 'Paged 1', 'Paged 0']);

    await owner.client.webhook.update.mutate({ webhookId: webhook.id, events: ['project.deleted'] });
    await owner.client.project.create.mutate({ orgId, name: 'Not sent' });
    await owner.client.webhook.delete.mutate({ webhookId: webhook.id });
    expect(await sql(app, 'select 1 from webhook_delivery where endpoint_id = ?', [webhook.id])).toHaveLength(0);
    expect(receiver.at('/paged')).toHaveLength(3);
    const audit = await sql<{ action: string }>(app, `select action from audit_log where org_id = ? and target_type = 'webhook' order by id`, [orgId]);
    expect(audit.map((a) => a.action)).toEqual(['webhook.created', 'webhook.updated', 'webhook.deleted']);
  });
});

describe('two instances with job workers', () => {
  it('deliver each event once, in order, one sender per endpoint', async () => {
    const second = await startTestApp({
      databaseUrl: app.databaseUrl,
      jobs: true,
      env: { WEBHOOK_RETRY_SCHEDULE: '100ms,100ms', WEBHOOK_DISABLE_AFTER: '1500ms', WEBHOOK_POLL_SECONDS: '0.5' },
    });
    try {
      const orgId = await newOrg('Pair Co');
      const { webhook } = await owner.client.webhook.create.mutate({ orgId, url: `${receiver.url}/pair`, events: ['project.created'] });
      // Both instances LISTEN and race to claim the endpoint at every commit.
      const names = Array.from({ length: 8 }, (_, i) => `Pair ${i}`);
      for (const name of names) await owner.client.project.create.mutate({ orgId, name });
      await waitFor(async () => (await deliveryRows(webhook.id)).every((d) => d.status === 'delivered') && receiver.at('/pair').length >= names.length, 10_000, 'every delivery');
      await new Promise((r) => setTimeout(r, 300)); // a double would have arrived by now
      expect(receiver.at('/pair').map((r) => r.body.data.name)).toEqual(names);
      expect((await deliveryRows(webhook.id)).map((d) => d.attempts)).toEqual(names.map(() => 1));
    } finally {
      await second.close();
    }
  });
});

describe('private addresses', () => {
  async function refusal(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
    const err = await promise.then(() => null, (e: unknown) => e);
    if (!err) return { code: 'ok', message: '' };
    expect(err).toBeInstanceOf(TRPCClientError);
    return { code: (err as { data?: { code?: string } }).data?.code, message: (err as Error).message };
  }

  it('refuses endpoint URLs on loopback, private and link-local addresses when they are not allowed', async () => {
    const person = await signUp(strict.url, 'Strict Owner');
    const { organization } = await person.client.organization.create.mutate({ name: 'Strict Co' });
    const cases: [string, RegExp][] = [
      [`${receiver.url}/x`, /127\.0\.0\.1 is a loopback address/],
      ['http://169.254.169.254/latest/meta-data', /link-local/],
      ['http://10.1.2.3/hook', /private/],
      ['http://[::1]:9/hook', /loopback/],
    ];
    for (const [url, reason] of cases) {
      const r = await refusal(person.client.webhook.create.mutate({ orgId: organization.id, url, events: ['*'] }));
      expect(r.code, url).toBe('BAD_REQUEST');
      expect(r.message).toMatch(/^the endpoint URL/);
      expect(r.message).toMatch(reason);
    }
    expect(await sql(strict, 'select 1 from webhook_endpoint where org_id = ?', [organization.id])).toHaveLength(0);
    expect((await refusal(person.client.webhook.create.mutate({ orgId: organization.id, url: 'ftp://example.com/x', events: ['*'] }))).code).toBe('BAD_REQUEST');
  });

  it('never connects to a private address when sending, even for an endpoint saved while they were allowed', async () => {
    const sender = new WebhookSender({ ...strict.services.config.gateway, allowPrivateUpstreams: false }, 2000);
    const before = receiver.at('/inward').length;
    const result = await sender.post(`${receiver.url}/inward`, 'whsec_test', '{}', 'test');
    await sender.close();
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/loopback/);
    expect(receiver.at('/inward')).toHaveLength(before);
  });
});
