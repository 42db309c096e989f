/**
 * Money made airtight (issue 8): no Stripe call inside a transaction, owner refunds limited to
 * purchases and counting usage in flight, webhooks with impossible values refused, one saved method
 * per card, failed methods not kept, deleting an organization cancels its subscription and keeps
 * its financial records, and the test-payment provider never refunds more than was paid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, type BrowserLike } from '../helpers/client.js';
import { fakeStripe, payCheckout, waitFor } from '../helpers/billing.js';
import { signPayload } from '../../server/dev/test-payments/fake-stripe.js';
import { deductUsage, ledgerCheck } from '../../server/modules/billing/ledger.js';
import { deletedOrganizationRecords, listDeletedOrganizations } from '../../server/modules/billing/deleted-organizations.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { decimalToNanos } from '../../shared/money.js';

let app: TestApp;
let owner: BrowserLike & { user: { id: string }; email: string };
const db = () => app.orm.em.fork();

async function newOrg(name: string) {
  return (await owner.client.organization.create.mutate({ name })).organization.id;
}
async function balance(orgId: string) {
  const { balanceNanos, ledgerSumNanos } = await ledgerCheck(db(), orgId);
  expect(balanceNanos).toBe(ledgerSumNanos);
  return balanceNanos;
}
async function buy(orgId: string, amount: number, method: Parameters<typeof payCheckout>[2] = 'card') {
  const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId, amount });
  return payCheckout(app, checkoutUrl, method);
}
async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: { data?: { code?: string }; message: string }) => e,
  );
}
const purchases = async (orgId: string) => (await owner.client.billing.transactions.query({ orgId, type: 'purchase' })).items;

/** Transactions open and idle (waiting on the application, e.g. on a network call) in this test's database. */
async function idleInTransaction(): Promise<number> {
  const rows = await db().execute<{ n: number }[]>(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
  );
  return rows[0]!.n;
}

/**
 * Runs `action` while the fake Stripe stalls in `method`; returns how many transactions were
 * open and idle while Stripe was being waited for.
 */
async function idleWhileStripeStalls(method: string, action: () => Promise<unknown>): Promise<number> {
  const fake = fakeStripe(app) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = fake[method]!;
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  fake[method] = async (...args: unknown[]) => {
    entered();
    await released;
    return original.apply(fake, args);
  };
  try {
    const done = action();
    await inside;
    await new Promise((r) => setTimeout(r, 100)); // a transaction opened around the call would be idle by now
    const idle = await idleInTransaction();
    release();
    await done;
    return idle;
  } finally {
    fake[method] = original;
    release();
  }
}

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app.url, 'Safety Owner');
  await db().execute('update app_user set organization_limit = 100 where id = ?', [owner.user.id]);
});
afterAll(async () => {
  await app?.close();
});

describe('no Stripe call inside a transaction; every mutation audited', () => {
  it('removing or defaulting a payment method, cancelling, buying and deleting hold no transaction while Stripe answers', async () => {
    const orgId = await newOrg('Stalled Stripe');
    await buy(orgId, 10);
    const { checkoutUrl } = await owner.client.billing.paymentMethods.add.mutate({ orgId });
    await payCheckout(app, checkoutUrl, 'us_bank_account');
    const methods = (await owner.client.billing.overview.query({ orgId })).paymentMethods;
    const bank = methods.find((m) => m.type === 'us_bank_account')!;

    expect(await idleWhileStripeStalls('updateCustomer', () => owner.client.billing.paymentMethods.setDefault.mutate({ orgId, paymentMethodId: bank.id }))).toBe(0);
    expect(await idleWhileStripeStalls('detachPaymentMethod', () => owner.client.billing.paymentMethods.remove.mutate({ orgId, paymentMethodId: bank.id }))).toBe(0);
    expect(await idleWhileStripeStalls('createCheckoutSession', () => owner.client.billing.purchaseCredits.mutate({ orgId, amount: 10 }))).toBe(0);

    const pro = await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'monthly' });
    await payCheckout(app, (pro as { checkoutUrl: string }).checkoutUrl);
    expect(await idleWhileStripeStalls('updateSubscription', () => owner.client.billing.cancelSubscription.mutate({ orgId }))).toBe(0);
    await fakeStripe(app).drain();

    const audit = await db().execute<{ action: string }[]>('select action from audit_log where org_id = ? order by id', [orgId]);
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(['billing.payment_method_default', 'billing.payment_method_removed', 'billing.purchase_started', 'billing.subscription_canceled']),
    );
  });
});

describe('refunds', () => {
  it('refuses an owner crediting back usage: a support action', async () => {
    const orgId = await newOrg('No Self Credit');
    await buy(orgId, 10);
    await runCommand(app.services, null, (work) => deductUsage(work, orgId, decimalToNanos('0.05')));
    const usage = (await owner.client.billing.transactions.query({ orgId, type: 'usage' })).items[0]!;
    const refused = await failure(owner.client.billing.refund.mutate({ orgId, transactionId: usage.id, reason: 'free calls please' }));
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(refused.message).toMatch(/credited back by support/);
    expect(await balance(orgId)).toBe(decimalToNanos('9.95'));
  });

  it('counts usage recorded while the refund settles: never refunds spent credits, never leaves the balance negative', async () => {
    const orgId = await newOrg('In Flight');
    await buy(orgId, 10);
    const [purchase] = await purchases(orgId);
    const refund = owner.client.billing.refund.mutate({ orgId, transactionId: purchase!.id, reason: 'changed my mind' }).then(
      (r) => r,
      (e: { data?: { code?: string }; message: string }) => e,
    );
    // The refund has taken the credits out of the balance; usage served before it is recorded now.
    await waitFor(async () => (await db().execute(`select id from credit_ledger where org_id = ? and type = 'refund'`, [orgId])).length > 0, 10_000, 'the refund hold');
    await runCommand(app.services, null, (work) => deductUsage(work, orgId, decimalToNanos('5')));
    const outcome = (await refund) as { data?: { code?: string }; message: string };
    expect(outcome.data?.code).toBe('PRECONDITION_FAILED');
    expect(outcome.message).toMatch(/more than 10%/);
    expect(await balance(orgId)).toBe(decimalToNanos('5'));
    const pi = purchase!.paymentIntentId!;
    expect(await fakeStripe(app).store.find('refund', { payment_intent: pi })).toHaveLength(0);
  });

  it('a refunded purchase no longer offers Refund', async () => {
    const orgId = await newOrg('Refund Once');
    await buy(orgId, 20);
    expect((await purchases(orgId))[0]!.refundable).toBe(true);
    await owner.client.billing.refund.mutate({ orgId, transactionId: (await purchases(orgId))[0]!.id, reason: 'bought twice' });
    await fakeStripe(app).drain();
    expect((await purchases(orgId))[0]!.refundable).toBe(false);
    expect(await balance(orgId)).toBe(0n);
  });
});

describe('the test-payment provider', () => {
  it('never refunds more than was paid under parallel refunds, with or without one idempotency key', async () => {
    const orgId = await newOrg('Parallel Refunds');
    await buy(orgId, 10);
    await buy(orgId, 10);
    const [second, first] = await purchases(orgId);
    const stripe = app.services.billing.stripe;
    const fake = fakeStripe(app);

    const sameKey = await Promise.all(
      Array.from({ length: 5 }, () => stripe.refunds.create({ payment_intent: first!.paymentIntentId!, amount: 1000 }, { idempotencyKey: `parallel-${first!.id}` })),
    );
    expect(new Set(sameKey.map((r) => r.id)).size).toBe(1);

    const distinct = await Promise.allSettled(Array.from({ length: 5 }, () => stripe.refunds.create({ payment_intent: second!.paymentIntentId!, amount: 1000 })));
    expect(distinct.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const pi of [first!.paymentIntentId!, second!.paymentIntentId!]) {
      const [charge] = await fake.store.find('charge', { payment_intent: pi });
      expect(charge!.amount_refunded).toBe(1000);
      expect(await fake.store.find('refund', { payment_intent: pi })).toHaveLength(1);
    }
    await fake.drain();
    expect(await balance(orgId)).toBe(0n);
  });
});

describe('webhooks', () => {
  it('refuses signed events with negative or absurd amounts, or from the future, with 400; nothing changes', async () => {
    const orgId = await newOrg('Odd Webhooks');
    const secret = app.services.billing.webhookSecret;
    const event = (id: string, amount: number) => ({
      id,
      object: 'event',
      type: 'checkout.session.completed',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: `cs_${id}`, object: 'checkout.session', mode: 'payment', payment_status: 'paid', amount_total: amount, payment_intent: `pi_${id}`, metadata: { orgId, kind: 'credits' } } },
    });
    const send = async (body: string, signature: string) =>
      fetch(`${app.url}/api/stripe/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body });
    const negative = JSON.stringify(event('evt_negative', -100_000));
    const absurd = JSON.stringify(event('evt_absurd', 1e15));
    const fractional = JSON.stringify(event('evt_fraction', 10.5));
    const future = JSON.stringify(event('evt_future', 1000));
    for (const [body, signature] of [
      [negative, signPayload(secret, negative)],
      [absurd, signPayload(secret, absurd)],
      [fractional, signPayload(secret, fractional)],
      [future, signPayload(secret, future, Math.floor(Date.now() / 1000) + 3600)],
      ['{"id":"evt_no_data","object":"event","type":"charge.refunded"}', signPayload(secret, '{"id":"evt_no_data","object":"event","type":"charge.refunded"}')],
    ] as const) {
      const res = await send(body, signature);
      expect(res.status).toBe(400);
    }
    expect(await balance(orgId)).toBe(0n);
    expect(await db().execute(`select id from stripe_event where id in ('evt_negative', 'evt_absurd', 'evt_fraction', 'evt_future', 'evt_no_data')`)).toHaveLength(0);
  });
});

describe('payment methods and auto top-up', () => {
  it('keeps one saved method per card (five checkouts with the same Visa) and none that failed', async () => {
    const orgId = await newOrg('Same Visa');
    for (let i = 0; i < 5; i++) await buy(orgId, 10);
    await fakeStripe(app).drain();
    const methods = (await owner.client.billing.overview.query({ orgId })).paymentMethods;
    expect(methods).toEqual([expect.objectContaining({ brand: 'visa', last4: '4242', isDefault: true })]);

    const declinedOrg = await newOrg('Declined Card');
    expect((await buy(declinedOrg, 10, 'card_declined')).status).toBe(402);
    await buy(declinedOrg, 10, 'bank_failure');
    await waitFor(async () => {
      await fakeStripe(app).drain();
      return (await owner.client.billing.transactions.query({ orgId: declinedOrg })).items.some((t) => t.status === 'failed');
    }, 15_000, 'the failed bank debit');
    await fakeStripe(app).drain();
    expect((await owner.client.billing.overview.query({ orgId: declinedOrg })).paymentMethods).toEqual([]);
  });

  it('refuses an auto top-up amount that cannot lift the balance above its threshold', async () => {
    const orgId = await newOrg('Top-up Rule');
    await buy(orgId, 10);
    const refused = await failure(owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 50, amount: 50 }));
    expect(refused.data?.code).toBe('BAD_REQUEST');
    expect(refused.message).toMatch(/cannot lift the balance above its \$50\.00 threshold/);
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 50 });
  });
});

describe('deleting an organization with money in it', () => {
  it('cancels the subscription (outside any transaction), states the forfeited credits, and keeps the financial records', async () => {
    const orgId = await newOrg('Leaving Co');
    await buy(orgId, 25);
    const pro = await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'monthly' });
    await payCheckout(app, (pro as { checkoutUrl: string }).checkoutUrl);
    const preview = await owner.client.organization.deletionPreview.query({ orgId });
    expect(preview).toMatchObject({ name: 'Leaving Co', plan: 'pro', forfeitedCredits: '25.00', subscription: expect.objectContaining({ status: 'active' }) });
    const subscriptionId = preview.subscription!.id;

    let result: { forfeitedCredits: string; subscription: { canceled: boolean } | null } | undefined;
    const idle = await idleWhileStripeStalls('cancelSubscription', async () => {
      result = await owner.client.organization.delete.mutate({ orgId, confirmName: 'Leaving Co' });
    });
    expect(idle).toBe(0);
    expect(result).toMatchObject({ ok: true, forfeitedCredits: '25.00', subscription: { canceled: true } });
    expect((await fakeStripe(app).store.get(subscriptionId))!.status).toBe('canceled');

    // Gone for its members...
    expect((await owner.client.organization.list.query()).some((o) => o.id === orgId)).toBe(false);
    expect(await db().execute('select id from membership where org_id = ?', [orgId])).toHaveLength(0);
    // ...kept for the operator.
    const ledger = await db().execute<{ type: string; amount_nanos: string }[]>('select type, amount_nanos from credit_ledger where org_id = ? order by id', [orgId]);
    expect(ledger.map((l) => l.type)).toEqual(expect.arrayContaining(['purchase', 'plan_charge', 'adjustment']));
    expect(ledger.reduce((sum, l) => sum + BigInt(l.amount_nanos), 0n)).toBe(0n);
    expect((await listDeletedOrganizations(db())).find((d) => d.id === orgId)).toMatchObject({ name: 'Leaving Co', plan: 'pro', forfeitedCredits: '25.00', deletedBy: owner.email });
    const records = await deletedOrganizationRecords(db(), orgId);
    expect(records.payments.map((p) => p.type)).toEqual(expect.arrayContaining(['purchase']));
    expect(records.stripeEvents.length).toBeGreaterThan(0);
    expect(records.audit.map((a) => a.action)).toEqual(expect.arrayContaining(['organization.created', 'organization.deleted']));

    // And the operator's command shows them.
    const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'server/admin.ts', 'org:deleted', orgId], {
      env: { ...process.env, DATABASE_URL: app.databaseUrl, NODE_ENV: 'test' },
    });
    expect(cli.stdout).toContain('Credits forfeited');
    expect(cli.stdout).toContain('organization.deleted');
  }, 150_000);
});
