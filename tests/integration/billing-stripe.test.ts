/**
 * Billing through the real `stripe` SDK against the local Stripe-compatible server: purchases,
 * signed webhooks applied exactly once, payment methods, plans, refunds, auto top-up, budget alerts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, type BrowserLike } from '../helpers/client.js';
import { fakeStripe, payCheckout, waitFor } from '../helpers/billing.js';
import { signPayload } from '../../server/dev/test-payments/fake-stripe.js';
import { ledgerCheck } from '../../server/modules/billing/ledger.js';
import { decimalToNanos } from '../../shared/money.js';

let app: TestApp;
let owner: BrowserLike & { user: { id: string }; email: string };
let admin: BrowserLike & { user: { id: string }; email: string };

async function newOrg(name: string) {
  const { organization } = await owner.client.organization.create.mutate({ name });
  return organization.id;
}

async function balanceMatchesLedger(orgId: string) {
  const { balanceNanos, ledgerSumNanos } = await ledgerCheck(app.orm.em.fork(), orgId);
  expect(balanceNanos).toBe(ledgerSumNanos);
  return balanceNanos;
}

async function buy(orgId: string, amount: number | string, method: Parameters<typeof payCheckout>[2] = 'card') {
  const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId, amount });
  return payCheckout(app, checkoutUrl, method);
}

async function expectCode(promise: Promise<unknown>, code: string, message?: RegExp) {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCClientError);
  expect((err as { data?: { code?: string } }).data?.code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app.url, 'Billing Owner');
  admin = await signUp(app.url, 'Billing Admin');
  // Many organizations in one file: the operator raised this owner's limit.
  await app.orm.em.fork().execute('update app_user set organization_limit = 100 where id = ?', [owner.user.id]);
});
afterAll(async () => {
  await app?.close();
});

describe('buying credits', () => {
  it('returns the user to the host they came from when it is allowed, else to APP_URL', async () => {
    const port = new URL(app.url).port;
    const other = `http://localhost:${port}`;
    const viaOther = await signUp(other, 'Other Host Owner');
    const { organization } = await viaOther.client.organization.create.mutate({ name: 'Other Host Co' });
    // Not allowed: the checkout returns to APP_URL.
    const first = await viaOther.client.billing.purchaseCredits.mutate({ orgId: organization.id, amount: 10 });
    expect((await payCheckout(app, first.checkoutUrl)).location).toBe(`${app.url}/org/${organization.id}/billing?checkout=success`);
    app.services.config.allowedOrigins.push(other);
    try {
      const second = await viaOther.client.billing.purchaseCredits.mutate({ orgId: organization.id, amount: 10 });
      expect((await payCheckout(app, second.checkoutUrl)).location).toBe(`${other}/org/${organization.id}/billing?checkout=success`);
    } finally {
      app.services.config.allowedOrigins.pop();
    }
  });

  it('refuses less than $10 and changes nothing', async () => {
    const orgId = await newOrg('Min Purchase');
    await expectCode(owner.client.billing.purchaseCredits.mutate({ orgId, amount: 9.99 }), 'BAD_REQUEST', /minimum purchase is \$10/);
    await expectCode(owner.client.billing.purchaseCredits.mutate({ orgId, amount: '10.001' }), 'BAD_REQUEST');
    expect(await balanceMatchesLedger(orgId)).toBe(0n);
  });

  it('adds credits from the signed webhook, not the redirect, and saves the card for later', async () => {
    const orgId = await newOrg('Card Purchase');
    const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId, amount: '25.50' });
    expect(checkoutUrl).toContain('/test-payments/checkout/cs_');
    // Visiting the success URL does nothing; only the payment's events move credits.
    expect((await owner.client.billing.overview.query({ orgId })).credits).toBe('0.00');
    const paid = await payCheckout(app, checkoutUrl);
    expect(paid.status).toBe(303);
    expect(paid.location).toContain(`/org/${orgId}/billing?checkout=success`);
    const overview = await owner.client.billing.overview.query({ orgId });
    expect(overview.credits).toBe('25.50');
    expect(overview.testMode).toBe(true);
    expect(overview.paymentMethods).toEqual([expect.objectContaining({ brand: 'visa', last4: '4242', isDefault: true, expiry: '12/2034' })]);
    const { items } = await owner.client.billing.transactions.query({ orgId });
    expect(items).toEqual([expect.objectContaining({ type: 'purchase', amount: '25.50', creditsAfter: '25.50', status: 'completed' })]);
    expect(await balanceMatchesLedger(orgId)).toBe(decimalToNanos('25.50'));
  });

  it('a declined card adds nothing; a bank debit credits when it settles, or records the failure', async () => {
    const orgId = await newOrg('Async Purchase');
    const declined = await buy(orgId, 20, 'card_declined');
    expect(declined.status).toBe(402);
    expect(await balanceMatchesLedger(orgId)).toBe(0n);

    const ach = await buy(orgId, 30, 'us_bank_account');
    expect(ach.status).toBe(303);
    expect((await owner.client.billing.overview.query({ orgId })).credits).toBe('0.00');
    await waitFor(async () => (await owner.client.billing.overview.query({ orgId })).credits === '30.00', 10_000, 'ACH settlement');

    await buy(orgId, 40, 'bank_failure');
    await waitFor(async () => {
      await fakeStripe(app).drain();
      const { items } = await owner.client.billing.transactions.query({ orgId });
      return items.some((t) => t.status === 'failed');
    }, 10_000, 'the failed bank debit');
    expect(await balanceMatchesLedger(orgId)).toBe(decimalToNanos('30'));
  });

  it('answers 400 to a bad or missing signature and changes nothing', async () => {
    const orgId = await newOrg('Bad Signature');
    const event = { id: 'evt_forged', object: 'event', type: 'checkout.session.completed', data: { object: { id: 'cs_x', object: 'checkout.session', mode: 'payment', payment_status: 'paid', amount_total: 100000, payment_intent: 'pi_forged', metadata: { orgId, kind: 'credits' } } } };
    const body = JSON.stringify(event);
    for (const signature of [undefined, 't=1,v1=deadbeef', signPayload('whsec_wrong', body)]) {
      const res = await fetch(`${app.url}/api/stripe/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) }, body });
      expect(res.status).toBe(400);
    }
    expect(await balanceMatchesLedger(orgId)).toBe(0n);
    const processed = await app.orm.em.fork().execute(`select id from stripe_event where id = 'evt_forged'`);
    expect(processed).toHaveLength(0);
  });

  it('applies the same event once, sent 10 times in a row and 10 times in parallel', async () => {
    const orgId = await newOrg('Duplicate Events');
    await buy(orgId, 10);
    const fake = fakeStripe(app);
    const completed = [...fake.sentEvents].reverse().find((e) => e.type === 'checkout.session.completed' && e.data.object.metadata.orgId === orgId)!;
    const succeeded = [...fake.sentEvents].reverse().find((e) => e.type === 'payment_intent.succeeded' && e.data.object.metadata.orgId === orgId)!;
    for (let i = 0; i < 10; i++) expect(await fake.deliver(completed, 1)).toBe(true);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => fake.deliver(i % 2 ? completed : succeeded, 1)));
    expect(results.every(Boolean)).toBe(true);
    expect(await balanceMatchesLedger(orgId)).toBe(decimalToNanos('10'));
    const purchases = await app.orm.em.fork().execute(`select id from credit_ledger where org_id = ? and type = 'purchase'`, [orgId]);
    expect(purchases).toHaveLength(1);
  });

  it('answers 200 to events it does not handle', async () => {
    const body = JSON.stringify({ id: 'evt_unknown_kind', object: 'event', type: 'customer.tax_id.created', data: { object: { id: 'txi_1', object: 'tax_id' } } });
    const res = await fetch(`${app.url}/api/stripe/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signPayload(app.services.billing.webhookSecret, body) }, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: true, outcome: 'ignored' });
  });
});

describe('permissions', () => {
  it('admins view billing but cannot act; developers cannot view it', async () => {
    const orgId = await newOrg('Billing Roles');
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: admin.email, role: 'admin' });
    await admin.client.team.acceptInvitation.mutate({ token: inviteUrl.split('/invite/')[1]! });
    expect((await admin.client.billing.overview.query({ orgId })).credits).toBe('0.00');
    await expectCode(admin.client.billing.purchaseCredits.mutate({ orgId, amount: 10 }), 'FORBIDDEN');
    await expectCode(admin.client.billing.updateAutoTopUp.mutate({ orgId, enabled: false, threshold: 10, amount: 50 }), 'FORBIDDEN');
  });
});
