/**
 * Pro subscriptions after Checkout: switching monthly/yearly in place (Stripe's subscription update
 * with proration, invoiced and paid now), resuming a pending cancellation, and the invoices with
 * their hosted page and PDF. Real `stripe` SDK against the local Stripe-compatible server; the
 * webhooks that follow each change apply it once (one audit entry, one plan change).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, type BrowserLike } from '../helpers/client.js';
import { fakeStripe } from '../helpers/billing.js';
import { raiseOrganizationLimit, sql } from '../helpers/db-state.js';

let app: TestApp;
let owner: BrowserLike & { user: { id: string }; email: string };
let admin: BrowserLike & { user: { id: string }; email: string };

beforeAll(async () => {
  app = await startTestApp();
  [owner, admin] = await Promise.all([signUp(app.url, 'Subs Owner'), signUp(app.url, 'Subs Admin')]);
  await raiseOrganizationLimit(app, owner.user.id, 100);
});
afterAll(async () => {
  await app?.close();
});

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: { data?: { code?: string }; message: string }) => e,
  );
}

/** A new organization on Pro (checkout paid by `method`), with the admin as a member. */
async function proOrg(name: string, cycle: 'monthly' | 'yearly' = 'monthly') {
  const orgId = (await owner.client.organization.create.mutate({ name })).organization.id;
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: admin.email, role: 'admin' });
  await admin.client.team.acceptInvitation.mutate({ token: inviteUrl.split('/invite/')[1]! });
  const started = (await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: cycle })) as { checkoutUrl: string };
  await fakeStripe(app).completeCheckout(started.checkoutUrl.split('/checkout/')[1]!, 'card');
  await fakeStripe(app).drain();
  expect(await owner.client.organization.get.query({ orgId })).toMatchObject({ plan: 'pro', billingCycle: cycle });
  return orgId;
}

const planChanges = async (orgId: string) =>
  (await sql<{ after: { plan: string; billingCycle: string | null } }>(app, `select after from audit_log where org_id = ? and action = 'billing.plan_changed' order by id`, [orgId])).map((r) => r.after);

async function subscriptionAtStripe(orgId: string) {
  const [row] = await sql<{ subscription_id: string }>(app, 'select subscription_id from organization where id = ?', [orgId]);
  return app.services.billing.stripe.subscriptions.retrieve(row!.subscription_id);
}

describe('switching monthly and yearly', () => {
  it('moves an active monthly subscription to yearly now: unused month credited, a year charged, one invoice, one plan change', async () => {
    const orgId = await proOrg('Switch Yearly');
    const result = (await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' })) as {
      switched: { billingCycle: string; periodEnd: Date; invoice: { number: string; amount: string } | null };
    };
    expect(result.switched.billingCycle).toBe('yearly');
    // Just subscribed: nearly all of the $50 month is unused, so about $450 is charged now.
    expect(Number(result.switched.invoice!.amount)).toBeGreaterThan(449);
    expect(Number(result.switched.invoice!.amount)).toBeLessThanOrEqual(450);
    expect(result.switched.periodEnd.getTime()).toBeGreaterThan(Date.now() + 360 * 86_400_000);

    // Stripe holds the yearly price; the webhooks that follow change nothing more.
    const sub = await subscriptionAtStripe(orgId);
    expect(sub.items.data[0]!.price.id).toBe(app.services.billing.prices.yearly);
    await fakeStripe(app).drain();
    expect(await owner.client.organization.get.query({ orgId })).toMatchObject({ plan: 'pro', billingCycle: 'yearly' });
    expect(await planChanges(orgId)).toEqual([
      { plan: 'pro', billingCycle: 'monthly' },
      { plan: 'pro', billingCycle: 'yearly' },
    ]);
    // A redelivered update event is a duplicate.
    const update = fakeStripe(app).sentEvents.filter((e) => e.type === 'customer.subscription.updated' && e.data.object.id === sub.id).at(-1)!;
    expect(await fakeStripe(app).deliver(update, 1)).toBe(true);
    expect(await planChanges(orgId)).toHaveLength(2);

    // The switch's payment is on the transactions (credits unchanged) and among the invoices.
    const charges = (await owner.client.billing.transactions.query({ orgId, type: 'plan_charge' })).items;
    expect(charges).toHaveLength(2);
    expect(charges[0]).toMatchObject({ amount: '0.00', description: expect.stringContaining(`$${result.switched.invoice!.amount} paid`) });
    const { items } = await owner.client.billing.invoices.query({ orgId });
    expect(items.map((i) => i.reason)).toEqual(['subscription_update', 'subscription_create']);
    expect(items[0]).toMatchObject({ number: result.switched.invoice!.number, status: 'paid', amountPaid: result.switched.invoice!.amount });
    expect(items[1]).toMatchObject({ amount: '50.00', amountPaid: '50.00', status: 'paid' });
  });

  it('moves yearly to monthly: the unused year covers the month (nothing to pay), the rest stays as credit at Stripe', async () => {
    const orgId = await proOrg('Switch Monthly', 'yearly');
    const result = (await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'monthly' })) as { switched: { billingCycle: string; invoice: { amount: string } } };
    expect(result.switched).toMatchObject({ billingCycle: 'monthly', invoice: { amount: '0.00' } });
    await fakeStripe(app).drain();
    expect(await owner.client.organization.get.query({ orgId })).toMatchObject({ plan: 'pro', billingCycle: 'monthly' });
    const [latest] = (await owner.client.billing.invoices.query({ orgId })).items;
    expect(Number(latest!.amount)).toBeLessThan(-449); // $50 - about $500 unused
    expect(latest!.amountPaid).toBe('0.00');
    const [row] = await sql<{ c: string }>(app, 'select stripe_customer_id as c from organization where id = ?', [orgId]);
    const customer = await app.services.billing.stripe.customers.retrieve(row!.c);
    expect((customer as { balance: number }).balance).toBeLessThan(-44_900);
    expect(await planChanges(orgId)).toHaveLength(2);
  });

  it('refuses the cycle it already has, a switch while a cancellation is pending, and a declined payment (nothing changes)', async () => {
    const orgId = await proOrg('Switch Refusals');
    const same = await failure(owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'monthly' }));
    expect(same.data?.code).toBe('PRECONDITION_FAILED');
    expect(same.message).toMatch(/already billed monthly/);

    // The card on file starts declining.
    const sub = await subscriptionAtStripe(orgId);
    const pm = await fakeStripe(app).store.get(String(sub.default_payment_method));
    await fakeStripe(app).store.put({ ...pm!, metadata: { test_behavior: 'card_declined' } });
    const declined = await failure(owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' }));
    expect(declined.data?.code).toBe('PRECONDITION_FAILED');
    expect(declined.message).toMatch(/did not go through .*declined/);
    expect((await subscriptionAtStripe(orgId)).items.data[0]!.price.id).toBe(app.services.billing.prices.monthly);
    expect(await owner.client.organization.get.query({ orgId })).toMatchObject({ billingCycle: 'monthly' });
    expect((await owner.client.billing.invoices.query({ orgId })).items).toHaveLength(1);

    await owner.client.billing.cancelSubscription.mutate({ orgId });
    const pending = await failure(owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' }));
    expect(pending.data?.code).toBe('PRECONDITION_FAILED');
    expect(pending.message).toMatch(/resume it before switching/);
  });

  it('is the owner’s alone; an admin sees the invoices', async () => {
    const orgId = await proOrg('Switch Roles');
    expect((await failure(admin.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' }))).data?.code).toBe('FORBIDDEN');
    expect((await failure(admin.client.billing.resumeSubscription.mutate({ orgId }))).data?.code).toBe('FORBIDDEN');
    expect((await admin.client.billing.invoices.query({ orgId })).items).toHaveLength(1);
  });
});

describe('resuming a cancellation', () => {
  it('undoes cancel at period end before the period ends, at Stripe and here, audited once; cancel and resume alternate', async () => {
    const orgId = await proOrg('Resume');
    await owner.client.billing.cancelSubscription.mutate({ orgId });
    await fakeStripe(app).drain();
    expect((await subscriptionAtStripe(orgId)).cancel_at_period_end).toBe(true);

    const resumed = await owner.client.billing.resumeSubscription.mutate({ orgId });
    expect(resumed.cancelAtPeriodEnd).toBe(false);
    expect(resumed.periodEnd!.getTime()).toBeGreaterThan(Date.now());
    await fakeStripe(app).drain();
    expect((await subscriptionAtStripe(orgId)).cancel_at_period_end).toBe(false);
    expect((await owner.client.billing.overview.query({ orgId })).subscription).toMatchObject({ status: 'active', cancelAtPeriodEnd: false });
    const audited = await sql(app, `select 1 from audit_log where org_id = ? and action = 'billing.subscription_resumed'`, [orgId]);
    expect(audited).toHaveLength(1);

    const again = await failure(owner.client.billing.resumeSubscription.mutate({ orgId }));
    expect(again.data?.code).toBe('PRECONDITION_FAILED');
    expect(again.message).toMatch(/nothing to resume/);

    // A second cancellation reaches Stripe too (no stale idempotent answer).
    await owner.client.billing.cancelSubscription.mutate({ orgId });
    expect((await subscriptionAtStripe(orgId)).cancel_at_period_end).toBe(true);
    await owner.client.billing.resumeSubscription.mutate({ orgId });
    expect((await subscriptionAtStripe(orgId)).cancel_at_period_end).toBe(false);
  });

  it('says there is no subscription on Free', async () => {
    const orgId = (await owner.client.organization.create.mutate({ name: 'Resume Free' })).organization.id;
    const refused = await failure(owner.client.billing.resumeSubscription.mutate({ orgId }));
    expect(refused.data?.code).toBe('NOT_FOUND');
  });
});

describe('invoices', () => {
  it('lists invoices newest first with a hosted page and a PDF; pages with a cursor; refuses an unknown cursor', async () => {
    const orgId = await proOrg('Invoices');
    await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'yearly' });
    await owner.client.billing.changePlan.mutate({ orgId, plan: 'pro', billingCycle: 'monthly' });
    const { items, nextCursor } = await owner.client.billing.invoices.query({ orgId });
    expect(items).toHaveLength(3);
    expect(nextCursor).toBeNull();
    expect(new Set(items.map((i) => i.number)).size).toBe(3);
    for (const invoice of items) {
      expect(invoice.periodEnd.getTime()).toBeGreaterThan(invoice.periodStart.getTime());
      const page = await fetch(invoice.hostedUrl!);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(`Invoice ${invoice.number}`);
      const pdf = await fetch(invoice.pdfUrl!);
      expect(pdf.headers.get('content-type')).toBe('application/pdf');
      expect(pdf.headers.get('content-disposition')).toMatch(/attachment; filename="invoice-.+\.pdf"/);
      const bytes = Buffer.from(await pdf.arrayBuffer());
      expect(bytes.subarray(0, 8).toString('latin1')).toBe('%PDF-1.4');
      expect(bytes.toString('latin1')).toContain(`Invoice number: ${invoice.number}`);
      expect(bytes.toString('latin1').trimEnd().endsWith('%%EOF')).toBe(true);
    }
    // Pages of Stripe's list: starting after an invoice gives the older ones.
    const older = await app.services.billing.stripe.invoices.list({ customer: String((await subscriptionAtStripe(orgId)).customer), limit: 1, starting_after: items[0]!.id });
    expect(older.data.map((i) => i.id)).toEqual([items[1]!.id]);
    expect(older.has_more).toBe(true);
    expect((await owner.client.billing.invoices.query({ orgId, cursor: items[1]!.id })).items.map((i) => i.id)).toEqual([items[2]!.id]);
    const unknown = await failure(owner.client.billing.invoices.query({ orgId, cursor: 'in_test_unknown0000' }));
    expect(unknown.data?.code).toBe('BAD_REQUEST');
  });

  it('is empty for an organization that never paid', async () => {
    const orgId = (await owner.client.organization.create.mutate({ name: 'No Invoices' })).organization.id;
    expect(await owner.client.billing.invoices.query({ orgId })).toEqual({ items: [], nextCursor: null });
  });
});
