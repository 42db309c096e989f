/** Pro subscriptions: Stripe's latest subscription state becomes the organization's plan. */
import type Stripe from 'stripe';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { badRequest, notFound, precondition } from '../../errors.js';
import { nanosToDecimal } from '../../../shared/money.js';
import { centsToNanos } from './account.js';
import { loadBillingState } from './account.js';
import type { BillingProvider } from './provider.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';

const LIVE_STATUSES = new Set(['active', 'trialing', 'past_due']);

export function subscriptionIdOfInvoice(invoice: Stripe.Invoice): string | null {
  const fromParent = invoice.parent?.subscription_details?.subscription;
  const legacy = (invoice as unknown as { subscription?: string | { id: string } | null }).subscription;
  const value = fromParent ?? legacy ?? null;
  return typeof value === 'string' ? value : (value?.id ?? null);
}

function periodEnd(sub: Stripe.Subscription): Date | null {
  const item = sub.items?.data?.[0] as (Stripe.SubscriptionItem & { current_period_end?: number }) | undefined;
  const legacy = (sub as unknown as { current_period_end?: number }).current_period_end;
  const end = item?.current_period_end ?? legacy;
  return end ? new Date(end * 1000) : null;
}

function cycleOf(sub: Stripe.Subscription): 'monthly' | 'yearly' {
  return sub.items?.data?.[0]?.price?.recurring?.interval === 'year' ? 'yearly' : 'monthly';
}

/**
 * Applies the subscription's current state. Events for an older subscription of the same
 * organization do not undo a newer one; Enterprise (set by the operator) is never overridden.
 */
export async function applySubscription(work: Work, orgId: string, sub: Stripe.Subscription): Promise<void> {
  const { em } = work;
  const state = await loadBillingState(em, orgId, { lock: true });
  const live = LIVE_STATUSES.has(sub.status);
  if (state.subscription.id && state.subscription.id !== sub.id && !live) return;
  const plan = state.plan === 'enterprise' ? 'enterprise' : live ? 'pro' : 'free';
  const cycle = live ? cycleOf(sub) : null;
  await em.execute(
    `update organization set plan = ?, billing_cycle = ?, subscription_id = ?, subscription_status = ?, subscription_period_end = ?,
       subscription_cancel_at_period_end = ?, version = version + case when plan <> ? or billing_cycle is distinct from ? then 1 else 0 end
     where id = ?`,
    [plan, cycle, sub.id, sub.status, periodEnd(sub), sub.cancel_at_period_end, plan, cycle, orgId],
  );
  if (plan !== state.plan || cycle !== state.billingCycle) {
    work.audit(orgId, 'billing.plan_changed', { type: 'organization', id: orgId }, { plan: state.plan, billingCycle: state.billingCycle }, { plan, billingCycle: cycle });
    const after = await em.execute<RowOf<typeof Organization, 'version' | 'name' | 'billing_email' | 'retention_level'>[]>(
      'select version, name, billing_email, retention_level from organization where id = ?',
      [orgId],
    );
    const o = after[0]!;
    work.emit(orgId, { type: 'organization.updated', version: o.version, name: o.name, billingEmail: o.billing_email, retentionLevel: o.retention_level, plan });
  }
  work.emit(orgId, { type: 'billing.updated', reason: 'subscription' });
}

/**
 * Cancel at period end: Pro stays until then; the `customer.subscription.deleted` event applies Free.
 * Stripe is told first (idempotent), then the change, its audit entry and event commit together.
 */
export async function cancelSubscription(services: Services, actorId: string | null, orgId: string) {
  const state = await loadBillingState(services.orm.em.fork(), orgId);
  if (!state.subscription.id || !state.subscription.status || !LIVE_STATUSES.has(state.subscription.status)) {
    throw notFound('active subscription');
  }
  if (state.subscription.cancelAtPeriodEnd) throw precondition('the subscription is already set to end at the close of this period');
  // No fixed idempotency key: cancel and resume may alternate, and a key reused for the second
  // cancel would replay the first answer without telling Stripe. Setting the flag is idempotent
  // itself; the SDK adds a key of its own to its retries.
  const sub = await services.billing.stripe.subscriptions.update(state.subscription.id, { cancel_at_period_end: true });
  return runCommand(services, actorId, async (work) => {
    await work.em.execute('update organization set subscription_cancel_at_period_end = true where id = ? and subscription_id = ?', [orgId, sub.id]);
    work.audit(orgId, 'billing.subscription_canceled', { type: 'subscription', id: sub.id }, { cancelAtPeriodEnd: false }, { cancelAtPeriodEnd: true, periodEnd: periodEnd(sub) });
    work.emit(orgId, { type: 'billing.updated', reason: 'subscription' });
    return { cancelAtPeriodEnd: true, periodEnd: periodEnd(sub) };
  });
}

/** Whether the subscription still renews (deleting the organization cancels it). */
export function isLiveSubscription(status: string | null): boolean {
  return !!status && LIVE_STATUSES.has(status);
}

/**
 * Ends a subscription now (the organization is being deleted). Called before the deletion's
 * transaction; idempotent, so a retried deletion cancels nothing twice.
 */
export async function cancelSubscriptionNow(provider: BillingProvider, subscriptionId: string): Promise<{ status: string; canceledAt: Date | null }> {
  const sub = await provider.stripe.subscriptions.cancel(subscriptionId, { prorate: false }, { idempotencyKey: `delete-org-cancel-${subscriptionId}` });
  return { status: sub.status, canceledAt: sub.canceled_at ? new Date(sub.canceled_at * 1000) : null };
}

async function liveSubscriptionOf(services: Services, orgId: string) {
  const state = await loadBillingState(services.orm.em.fork(), orgId);
  if (state.plan === 'enterprise') throw precondition('this organization is on Enterprise; contact us to change its billing');
  if (!state.subscription.id || !isLiveSubscription(state.subscription.status)) throw notFound('active subscription');
  return { state, subscriptionId: state.subscription.id };
}

/** A card error from Stripe (the SDK's StripeCardError), in words for the owner. */
function paymentRefused(err: unknown): Error | null {
  const e = err as { type?: string; message?: string };
  if (e?.type === 'StripeCardError') return precondition(`the payment for the switch did not go through (${e.message ?? 'card declined'}); update the default payment method and try again`);
  return null;
}

/**
 * Switches an active Pro subscription between monthly and yearly (Stripe's subscription update:
 * the item moves to the other price; a new interval restarts the period today, the unused part
 * of the current one is credited and the rest invoiced and charged now: `always_invoice`;
 * `error_if_incomplete` leaves the subscription as it was when the payment fails). The new state
 * is applied here; the webhooks that follow find it applied (one audit entry, one plan change).
 */
export async function switchBillingCycle(services: Services, actorId: string, orgId: string, cycle: 'monthly' | 'yearly') {
  const { state, subscriptionId } = await liveSubscriptionOf(services, orgId);
  if (state.subscription.cancelAtPeriodEnd) throw precondition('the subscription ends at the close of this period; resume it before switching between monthly and yearly');
  if (state.billingCycle === cycle) throw precondition(`the subscription is already billed ${cycle}`);
  const stripe = services.billing.stripe;
  const current = await stripe.subscriptions.retrieve(subscriptionId);
  const item = current.items.data[0];
  if (!item) throw badRequest('the subscription has no item to switch');
  const price = cycle === 'yearly' ? services.billing.prices.yearly : services.billing.prices.monthly;
  let sub: Stripe.Subscription;
  try {
    sub = await stripe.subscriptions.update(
      subscriptionId,
      { items: [{ id: item.id, price }], proration_behavior: 'always_invoice', payment_behavior: 'error_if_incomplete', expand: ['latest_invoice'] },
      // Retries of this switch (same item, same period) are one switch at Stripe.
      { idempotencyKey: `switch-cycle-${subscriptionId}-${item.id}-${(item as { current_period_start?: number }).current_period_start ?? ''}-${price}` },
    );
  } catch (err) {
    throw paymentRefused(err) ?? err;
  }
  // The switch's invoice: the latest one, when it is new (expanded by Stripe, else read).
  const before = typeof current.latest_invoice === 'string' ? current.latest_invoice : (current.latest_invoice?.id ?? null);
  const latest = sub.latest_invoice;
  const latestId = typeof latest === 'string' ? latest : (latest?.id ?? null);
  const invoice = latestId && latestId !== before ? (typeof latest === 'object' && latest ? latest : await stripe.invoices.retrieve(latestId)) : null;
  return runCommand(services, actorId, async (work) => {
    await applySubscription(work, orgId, sub);
    return {
      billingCycle: cycleOf(sub),
      periodEnd: periodEnd(sub),
      invoice: invoice ? { id: invoice.id, number: invoice.number ?? null, amount: nanosToDecimal(centsToNanos(invoice.amount_paid ?? 0)) } : null,
    };
  });
}

/** Undoes a pending cancellation before the period ends: the subscription renews again. */
export async function resumeSubscription(services: Services, actorId: string, orgId: string) {
  const { state, subscriptionId } = await liveSubscriptionOf(services, orgId);
  if (!state.subscription.cancelAtPeriodEnd) throw precondition('the subscription is not set to end; there is nothing to resume');
  // A raw row: the timestamp may arrive as text.
  if (state.subscription.periodEnd && new Date(state.subscription.periodEnd).getTime() <= Date.now()) {
    throw precondition('the period has ended; subscribe again from the Billing page');
  }
  const sub = await services.billing.stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: false });
  return runCommand(services, actorId, async (work) => {
    // The webhook that follows (or came first) sets the same flag and writes no audit entry: this is the one.
    await work.em.execute('update organization set subscription_cancel_at_period_end = false where id = ? and subscription_id = ?', [orgId, sub.id]);
    work.audit(orgId, 'billing.subscription_resumed', { type: 'subscription', id: sub.id }, { cancelAtPeriodEnd: true }, { cancelAtPeriodEnd: false, periodEnd: periodEnd(sub) });
    work.emit(orgId, { type: 'billing.updated', reason: 'subscription' });
    return { cancelAtPeriodEnd: sub.cancel_at_period_end, periodEnd: periodEnd(sub) };
  });
}

const INVOICE_PAGE = 20;

/** `billing.invoices`: the organization's Stripe invoices, newest first, 20 a page (cursor: the last id). */
export async function listInvoices(services: Services, orgId: string, cursor?: string) {
  const state = await loadBillingState(services.orm.em.fork(), orgId);
  if (!state.stripeCustomerId) {
    if (cursor) throw badRequest('unknown invoice cursor');
    return { items: [], nextCursor: null };
  }
  const page = await services.billing.stripe.invoices.list({ customer: state.stripeCustomerId, limit: INVOICE_PAGE, ...(cursor ? { starting_after: cursor } : {}) }).catch((err: unknown) => {
    // An unknown cursor (another customer's invoice, or a made-up id) is the caller's mistake.
    if ((err as { type?: string }).type === 'StripeInvalidRequestError' && cursor) throw badRequest('unknown invoice cursor');
    throw err;
  });
  const items = page.data.map((inv) => ({
    id: inv.id!,
    number: inv.number ?? null,
    amount: nanosToDecimal(centsToNanos(inv.total ?? inv.amount_due)),
    amountPaid: nanosToDecimal(centsToNanos(inv.amount_paid)),
    currency: inv.currency,
    status: inv.status ?? 'draft',
    reason: inv.billing_reason ?? null,
    // The service period is on the lines (an invoice's own period_* is the one before it, for renewals).
    periodStart: new Date(Math.min(...(inv.lines?.data?.length ? inv.lines.data.map((l) => l.period.start) : [inv.period_start])) * 1000),
    periodEnd: new Date(Math.max(...(inv.lines?.data?.length ? inv.lines.data.map((l) => l.period.end) : [inv.period_end])) * 1000),
    createdAt: new Date(inv.created * 1000),
    hostedUrl: inv.hosted_invoice_url ?? null,
    pdfUrl: inv.invoice_pdf ?? null,
  }));
  return { items, nextCursor: page.has_more ? (items.at(-1)?.id ?? null) : null };
}
