/**
 * Billing over time: payment methods, Pro plans (events out of order, cancel, downgrade), refund
 * rules, auto top-up (one in flight, backoff, giving up after 7 days), budget alerts, and the big
 * concurrency scenario. Real `stripe` SDK against the local Stripe-compatible server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp, type BrowserLike } from '../helpers/client.js';
import { fakeStripe, payCheckout, waitFor } from '../helpers/billing.js';
import { sql } from '../helpers/db-state.js';
import { ledgerCheck, deductUsage } from '../../server/modules/billing/ledger.js';
import { triggerAutoTopUp, retryDelayMs } from '../../server/modules/billing/auto-top-up.js';
import { creditBackUsage } from '../../server/modules/billing/refunds.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { decimalToNanos } from '../../shared/money.js';

let app: TestApp;
let owner: BrowserLike & { user: { id: string }; email: string };

async function newOrg(name: string) {
  return (await owner.client.organization.create.mutate({ name })).organization.id;
}
const db = () => app.orm.em.fork();

async function balance(orgId: string) {
  const { balanceNanos, ledgerSumNanos } = await ledgerCheck(db(), orgId);
  expect(balanceNanos).toBe(ledgerSumNanos);
  return balanceNanos;
}

async function buy(orgId: string, amount: number, method: Parameters<typeof payCheckout>[2] = 'card') {
  const { checkoutUrl } = await owner.client.billing.purchaseCredits.mutate({ orgId, amount });
  return payCheckout(app, checkoutUrl, method);
}

async function addMethod(orgId: string, method: Parameters<typeof payCheckout>[2]) {
  const { checkoutUrl } = await owner.client.billing.paymentMethods.add.mutate({ orgId });
  expect((await payCheckout(app, checkoutUrl, method)).status).toBe(303);
}

function spend(orgId: string, dollars: string) {
  return runCommand(app.services, null, (work) => deductUsage(work, orgId, decimalToNanos(dollars)));
}

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: { data?: { code?: string }; message: string }) => e,
  );
}

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app.url, 'Lifecycle Owner');
  await db().execute('update app_user set organization_limit = 100 where id = ?', [owner.user.id]);
});
afterAll(async () => {
  await app?.close();
});

describe('payment methods', () => {
  it('adds card, US bank account and SEPA debit; sets the default; removes one', async () => {
    const orgId = await newOrg('Methods');
    await addMethod(orgId, 'card');
    await addMethod(orgId, 'us_bank_account');
    await addMethod(orgId, 'sepa_debit');
    const methods = await owner.client.billing.paymentMethods.list.query({ orgId });
    expect(methods.map((m) => m.type).sort()).toEqual(['card', 'sepa_debit', 'us_bank_account']);
    expect(methods.filter((m) => m.isDefault).map((m) => m.type)).toEqual(['card']);
    const sepa = methods.find((m) => m.type === 'sepa_debit')!;
    await owner.client.billing.paymentMethods.setDefault.mutate({ orgId, paymentMethodId: sepa.id });
    expect((await owner.client.billing.paymentMethods.list.query({ orgId })).find((m) => m.isDefault)?.id).toBe(sepa.id);
    await owner.client.billing.paymentMethods.remove.mutate({ orgId, paymentMethodId: sepa.id });
    await fakeStripe(app).drain();
    const after = await owner.client.billing.paymentMethods.list.query({ orgId });
    expect(after.map((m) => m.id)).not.toContain(sepa.id);
    expect(after.some((m) => m.isDefault)).toBe(false);
    // Another organization's payment method is not found here.
    const other = await newOrg('Methods Other');
    const err = await failure(owner.client.billing.paymentMethods.setDefault.mutate({ orgId: other, paymentMethodId: after[0]!.id }));
    expect(err.data?.code).toBe('NOT_FOUND');
  });
});

describe('payment methods seen by many viewers', () => {
  it('asks Stripe once per change, not once per viewer, on every instance, and never shows a stale list', async () => {
    const b = await startTestApp({ databaseUrl: app.databaseUrl });
    try {
      const onB = browserClient(b.url);
      for (const [k, v] of owner.cookies) onB.cookies.set(k, v);
      const orgId = await newOrg('Methods Many Viewers');
      await addMethod(orgId, 'card');
      await fakeStripe(app).drain();
      let seenA = 0;
      let seenB = 0;
      const billingEvent = (t: string) => t === 'billing.updated' || t === 'credits.changed';
      const offA = app.services.bus.subscribeOrg(orgId, { deliver: (e) => void (billingEvent(e.type) && seenA++), resync: () => {} });
      const offB = b.services.bus.subscribeOrg(orgId, { deliver: (e) => void (billingEvent(e.type) && seenB++), resync: () => {} });
      const storedBefore = Number((await sql<{ n: number }>(app, `select count(*)::int as n from org_event where org_id = ? and type in ('billing.updated', 'credits.changed')`, [orgId]))[0]!.n);
      seenA = seenB = storedBefore;
      const askedA = vi.spyOn(app.services.billing.stripe.customers, 'listPaymentMethods');
      const askedB = vi.spyOn(b.services.billing.stripe.customers, 'listPaymentMethods');
      const count = async (who: BrowserLike) => (await who.client.billing.overview.query({ orgId })).paymentMethods.length;
      // Ten viewers on each instance: one Stripe call per instance.
      expect(await Promise.all(Array.from({ length: 10 }, () => count(owner)))).toEqual(Array(10).fill(1));
      expect(await Promise.all(Array.from({ length: 10 }, () => count(onB)))).toEqual(Array(10).fill(1));
      expect([askedA.mock.calls.length, askedB.mock.calls.length]).toEqual([1, 1]);

      // A method added at Stripe (its webhook lands on A) shows on both instances.
      await addMethod(orgId, 'sepa_debit');
      await fakeStripe(app).drain();
      expect(await count(owner)).toBe(2);
      await waitFor(async () => (await count(onB)) === 2, 5_000, 'instance B to drop its cached list');

      // Removed on B: B's very next list no longer has it (no waiting for the event), nor, once the event arrives, A's.
      const [sepa] = (await onB.client.billing.paymentMethods.list.query({ orgId })).filter((m) => m.type === 'sepa_debit');
      await onB.client.billing.paymentMethods.remove.mutate({ orgId, paymentMethodId: sepa!.id });
      expect(await count(onB)).toBe(1);
      await waitFor(async () => (await count(owner)) === 1, 5_000, 'instance A to drop its cached list');
      // Stripe's own webhook for the removal lands later and evicts again (rightly): wait until both
      // instances have seen every billing event stored for the organization before counting calls.
      await Promise.all([fakeStripe(app).drain(), fakeStripe(b).drain()]);
      const stored = async () => Number((await sql<{ n: number }>(app, `select count(*)::int as n from org_event where org_id = ? and type in ('billing.updated', 'credits.changed')`, [orgId]))[0]!.n);
      await waitFor(async () => seenA >= (await stored()) && seenB >= (await stored()), 5_000, 'both instances to see every billing event');
      await count(owner);
      await count(onB);
      const calls = askedA.mock.calls.length + askedB.mock.calls.length;
      expect(await count(owner)).toBe(1);
      expect(await count(onB)).toBe(1);
      expect(askedA.mock.calls.length + askedB.mock.calls.length).toBe(calls);
      askedA.mockRestore();
      askedB.mockRestore();
      offA();
      offB();
    } finally {
      await b.close();
    }
  });
});

describe('plans', () => {
  it('upgrades to Pro (invoice event before the subscription event), cancels at period end, downgrades when it ends', async () => {
    const orgId = await newOrg('Plans');
    const { checkoutUrl } = (await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' })) as { checkoutUrl: string };
    const sessionId = checkoutUrl.split('/checkout/')[1]!;
    await fakeStripe(app).completeCheckout(sessionId, 'card', { invoiceFirst: true });
    await fakeStripe(app).drain();
    const org = await owner.client.organization.get.query({ orgId });
    expect(org).toMatchObject({ plan: 'pro', billingCycle: 'yearly' });
    const overview = await owner.client.billing.overview.query({ orgId });
    expect(overview.subscription).toMatchObject({ status: 'active', cancelAtPeriodEnd: false });
    // No second subscription while one is live: the same cycle is refused (another cycle switches
    // this one in place: tests/integration/billing-subscriptions.test.ts).
    expect((await failure(owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' }))).data?.code).toBe('PRECONDITION_FAILED');
    const { items } = await owner.client.billing.transactions.query({ orgId, type: 'plan_charge' });
    expect(items).toEqual([expect.objectContaining({ amount: '0.00', description: expect.stringContaining('$500.00 paid') })]);

    await owner.client.billing.cancelSubscription.mutate({ orgId });
    await fakeStripe(app).drain();
    expect((await owner.client.organization.get.query({ orgId })).plan).toBe('pro');
    expect((await owner.client.billing.overview.query({ orgId })).subscription?.cancelAtPeriodEnd).toBe(true);

    // Pro allows more projects than Free (100 against 10): go past Free's 10, then end the subscription.
    for (let i = 0; i < 11; i++) await owner.client.project.create.mutate({ orgId, name: `P${i}` });
    await fakeStripe(app).cancelSubscription(overview.subscription!.id!);
    await fakeStripe(app).drain();
    expect((await owner.client.organization.get.query({ orgId })).plan).toBe('free');
    // Existing data is kept; new creation beyond Free limits is refused.
    expect(await owner.client.project.list.query({ orgId })).toHaveLength(12);
    const refused = await failure(owner.client.project.create.mutate({ orgId, name: 'One too many' }));
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(refused.message).toMatch(/Free plan allows 10 projects/);
  });
});

describe('refunds', () => {
  it('refuses an owner crediting back usage (a support action); support credits it back once', async () => {
    const orgId = await newOrg('Credit Back');
    await buy(orgId, 10);
    await spend(orgId, '1.234567891');
    const usage = (await owner.client.billing.transactions.query({ orgId, type: 'usage' })).items[0]!;
    const refused = await failure(owner.client.billing.refund.mutate({ orgId, transactionId: usage.id, reason: 'upstream outage' }));
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(refused.message).toMatch(/credited back by support/);
    expect(await balance(orgId)).toBe(decimalToNanos('10') - decimalToNanos('1.234567891'));
    // What `npm run admin -- billing:credit-back` runs.
    const result = await runCommand(app.services, null, (work) => creditBackUsage(work, orgId, usage.id, 'upstream outage'));
    expect(result.credits).toBe('10.00');
    await expect(runCommand(app.services, null, (work) => creditBackUsage(work, orgId, usage.id, 'again'))).rejects.toThrow(/already credited back/);
    expect(await balance(orgId)).toBe(decimalToNanos('10'));
  });

  it('refunds a recent purchase while at most 10% is spent; refuses after 14 days or above 10%', async () => {
    const orgId = await newOrg('Refunds');
    await buy(orgId, 100);
    await buy(orgId, 50);
    await buy(orgId, 20);
    const purchases = (await owner.client.billing.transactions.query({ orgId, type: 'purchase' })).items; // newest first
    const [p20, p50, p100] = purchases;
    await spend(orgId, '6');
    // 6 of 20 spent since the $20 purchase (30%): refused.
    const tooMuch = await failure(owner.client.billing.refund.mutate({ orgId, transactionId: p20!.id, reason: 'changed my mind' }));
    expect(tooMuch.data?.code).toBe('PRECONDITION_FAILED');
    expect(tooMuch.message).toMatch(/more than 10%/);
    // 6 of 100 spent since the $100 purchase (6%): the unspent $94 is refunded.
    const refunded = await owner.client.billing.refund.mutate({ orgId, transactionId: p100!.id, reason: 'bought too much' });
    expect(refunded.amount).toBe('94.00');
    expect(await balance(orgId)).toBe(decimalToNanos('70'));
    // Older than 14 days: refused.
    await db().execute(`update credit_ledger set created_at = now() - interval '15 days' where id = ?`, [p50!.id]);
    const old = await failure(owner.client.billing.refund.mutate({ orgId, transactionId: p50!.id, reason: 'late' }));
    expect(old.message).toMatch(/within 14 days/);
    await fakeStripe(app).drain(); // the charge.refunded webhook finds the refund already in the ledger
    expect(await balance(orgId)).toBe(decimalToNanos('70'));
  });

  it('records a dashboard refund once when its webhook arrives at the same moment', async () => {
    const orgId = await newOrg('Refund Race');
    await buy(orgId, 30);
    const purchase = (await owner.client.billing.transactions.query({ orgId, type: 'purchase' })).items[0]!;
    await fakeStripe(app).drain();
    // Once Stripe has made the refund, hold the organization row: the charge.refunded webhook
    // queues on it first, then the refund action (recording the refund) queues behind it; then
    // both go. Whichever comes second must find the refund recorded rather than record it again.
    const lockWaiters = async () => {
      const rows = await db().execute<{ n: string }[]>(
        `select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return Number(rows[0]!.n);
    };
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holder: Promise<void> = Promise.resolve();
    const fake = fakeStripe(app);
    const createRefund = fake.createRefund;
    fake.createRefund = async (...args) => {
      await new Promise<void>((locked) => {
        holder = db().transactional(async (em) => {
          await em.execute('select id from organization where id = ? for update', [orgId]);
          locked();
          await released;
        });
      });
      const made = await createRefund.apply(fake, args);
      await waitFor(async () => (await lockWaiters()) >= 1, 10_000, 'the webhook to wait on the organization');
      return made;
    };
    let refund: Promise<{ amount: string }>;
    try {
      refund = owner.client.billing.refund.mutate({ orgId, transactionId: purchase.id, reason: 'ordered twice' });
      await waitFor(async () => (await lockWaiters()) >= 2, 10_000, 'the refund action to wait behind it');
    } finally {
      fake.createRefund = createRefund;
    }
    release();
    await holder;
    expect((await refund).amount).toBe('30.00');
    await fakeStripe(app).drain();
    const refunds = (await owner.client.billing.transactions.query({ orgId, type: 'refund' })).items;
    expect(refunds).toEqual([expect.objectContaining({ amount: '-30.00', description: `Refund of purchase #${purchase.id}: ordered twice` })]);
    expect(await balance(orgId)).toBe(0n);
  });

  it('keeps the ledger right for a refund made in the Stripe dashboard', async () => {
    const orgId = await newOrg('Dashboard Refund');
    await buy(orgId, 40);
    const pi = (await owner.client.billing.transactions.query({ orgId })).items[0]!.paymentIntentId!;
    await fakeStripe(app).createRefund({ payment_intent: pi, amount: 1500 }, true);
    await fakeStripe(app).drain();
    expect(await balance(orgId)).toBe(decimalToNanos('25'));
    const refunds = (await owner.client.billing.transactions.query({ orgId, type: 'refund' })).items;
    expect(refunds).toEqual([expect.objectContaining({ amount: '-15.00', description: expect.stringContaining('made in Stripe') })]);
  });
});

describe('auto top-up', () => {
  it('tops up within seconds of crossing the threshold, one payment in flight', async () => {
    const orgId = await newOrg('Auto Top-Up');
    const refused = await failure(owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 50 }));
    expect(refused.message).toMatch(/add a payment method first/);
    expect((await failure(owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 5 }))).data?.code).toBe('BAD_REQUEST');
    await buy(orgId, 15); // saves the card as default
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 50 });
    // 20 parallel deductions cross the threshold together.
    await Promise.all(Array.from({ length: 20 }, () => spend(orgId, '0.5')));
    const started = Date.now();
    await waitFor(async () => (await balance(orgId)) === decimalToNanos('55'), 5_000, 'the auto top-up');
    expect(Date.now() - started).toBeLessThan(5_000);
    const attempts = await db().execute<{ status: string }[]>('select status from auto_top_up_attempt where org_id = ?', [orgId]);
    expect(attempts).toEqual([{ status: 'succeeded' }]);
    expect((await owner.client.billing.transactions.query({ orgId, type: 'auto_topup' })).items).toHaveLength(1);
  });

  it('records a declined card, backs off 1 h doubling to 24 h, and gives up after 7 days', async () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(n) / 3600_000)).toEqual([1, 2, 4, 8, 16, 24, 24]);
    const orgId = await newOrg('Declines');
    await addMethod(orgId, 'card_declined');
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 50 });
    await waitFor(async () => {
      const rows = await db().execute<{ status: string }[]>('select status from auto_top_up_attempt where org_id = ?', [orgId]);
      return rows.length === 1 && rows[0]!.status === 'failed';
    }, 5_000, 'the declined attempt');
    // Backing off: another trigger does nothing.
    expect(await triggerAutoTopUp(app.services, orgId)).toBe('backing off');
    const overview = await owner.client.billing.overview.query({ orgId });
    expect(overview.autoTopUp.lastAttempt).toMatchObject({ status: 'failed', failureReason: 'Your card was declined.' });
    // Seven days of failures later, the next failure turns auto top-up off.
    await db().execute(`update auto_top_up_attempt set created_at = now() - interval '7 days', next_retry_at = now() - interval '1 minute' where org_id = ?`, [orgId]);
    expect(await triggerAutoTopUp(app.services, orgId)).toBe('failed');
    const after = await owner.client.billing.overview.query({ orgId });
    expect(after.autoTopUp.enabled).toBe(false);
    expect(after.autoTopUp.disabledReason).toMatch(/turned off after 7 days/);
    const mails = await db().execute<{ subject: string }[]>(`select subject from email_outbox where recipient = ? and subject = 'Auto top-up was turned off'`, [owner.email]);
    expect(mails).toHaveLength(1);
  });

  it('asks the owner to pay on-session when the bank requires authentication', async () => {
    const orgId = await newOrg('SCA');
    await addMethod(orgId, 'card_requires_action');
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 10, amount: 50 });
    await waitFor(async () => (await owner.client.billing.overview.query({ orgId })).autoTopUp.lastAttempt?.status === 'requires_action', 5_000, 'requires_action');
    const mails = await db().execute<{ subject: string }[]>(`select subject from email_outbox where recipient = ? and subject = 'Confirm your auto top-up payment'`, [owner.email]);
    expect(mails.length).toBeGreaterThan(0);
  });
});

describe('budget alerts', () => {
  it('notifies once per crossing and re-arms when the condition clears', async () => {
    const orgId = await newOrg('Alerts');
    await buy(orgId, 30);
    await owner.client.billing.budgetAlerts.set.mutate({ orgId, kind: 'balance_below', threshold: 20 });
    await owner.client.billing.budgetAlerts.set.mutate({ orgId, kind: 'monthly_spend_above', threshold: 5 });
    const count = async (subject: string) =>
      (await db().execute(`select id from email_outbox where recipient = ? and subject = ? and body like ?`, [owner.email, subject, '%Alerts%'])).length;
    await spend(orgId, '4');
    expect(await count('Monthly spend alert')).toBe(0);
    await spend(orgId, '2'); // spend 6 > 5
    await spend(orgId, '1');
    expect(await count('Monthly spend alert')).toBe(1);
    await spend(orgId, '4'); // balance 19 < 20
    await spend(orgId, '1');
    expect(await count('Low credit balance')).toBe(1);
    const listed = await owner.client.billing.budgetAlerts.list.query({ orgId });
    expect(listed.alerts.find((a) => a.kind === 'balance_below')?.triggered).toBe(true);
    await buy(orgId, 10); // back above 20: re-armed
    expect((await owner.client.billing.budgetAlerts.list.query({ orgId })).alerts.find((a) => a.kind === 'balance_below')?.triggered).toBe(false);
    await spend(orgId, '9'); // 28 -> 19: crosses again
    expect(await count('Low credit balance')).toBe(2);
  });
});

describe('concurrency', () => {
  it('500 usage deductions + 5 purchases + duplicate webhooks: balance == ledger == expected; one auto top-up in flight', async () => {
    const orgId = await newOrg('Stress');
    await buy(orgId, 100);
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: true, threshold: 40, amount: 50 });
    const fake = fakeStripe(app);
    const sessions = await Promise.all(Array.from({ length: 5 }, () => owner.client.billing.purchaseCredits.mutate({ orgId, amount: 10 })));
    let inFlightMax = 0;
    const sample = async () => {
      const rows = await db().execute<{ n: string }[]>(`select count(*) as n from auto_top_up_attempt where org_id = ? and status = 'pending'`, [orgId]);
      inFlightMax = Math.max(inFlightMax, Number(rows[0]!.n));
    };
    const watcher = setInterval(() => void sample(), 5);
    const cost = 239_999_999n; // just under 24 cents, in nanos: 500 of them take the balance below 40
    await Promise.all([
      ...Array.from({ length: 500 }, () => runCommand(app.services, null, (work) => deductUsage(work, orgId, cost))),
      ...sessions.map((s) => payCheckout(app, s.checkoutUrl)),
    ]);
    const events = fake.sentEvents.filter((e) => (e.data.object.metadata?.orgId ?? '') === orgId);
    await Promise.all(events.flatMap((e) => [fake.deliver(e, 1), fake.deliver(e, 1)]));
    await waitFor(async () => {
      const rows = await db().execute<{ n: string }[]>(`select count(*) as n from auto_top_up_attempt where org_id = ? and status = 'pending'`, [orgId]);
      return Number(rows[0]!.n) === 0;
    });
    clearInterval(watcher);
    await fake.drain();
    const topUps = await db().execute<{ n: string }[]>(`select count(*) as n from credit_ledger where org_id = ? and type = 'auto_topup'`, [orgId]);
    const expected = decimalToNanos('100') + 5n * decimalToNanos('10') - 500n * cost + BigInt(topUps[0]!.n) * decimalToNanos('50');
    expect(await balance(orgId)).toBe(expected);
    expect(inFlightMax).toBeLessThanOrEqual(1);
    const attempts = await db().execute<{ n: string }[]>(`select count(*) as n from auto_top_up_attempt where org_id = ?`, [orgId]);
    expect(Number(attempts[0]!.n)).toBe(Number(topUps[0]!.n));
    expect(Number(topUps[0]!.n)).toBeGreaterThanOrEqual(1);
  });
});
