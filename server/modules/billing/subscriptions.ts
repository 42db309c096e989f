/** Pro subscriptions: Stripe's latest subscription state becomes the organization's plan. */
import type Stripe from 'stripe';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { notFound, precondition } from '../../errors.js';
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
  const sub = await services.billing.stripe.subscriptions.update(state.subscription.id, { cancel_at_period_end: true }, { idempotencyKey: `cancel-at-period-end-${state.subscription.id}` });
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
