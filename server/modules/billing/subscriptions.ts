/** Pro subscriptions: Stripe's latest subscription state becomes the organization's plan. */
import type Stripe from 'stripe';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Work } from '../../events/unit-of-work.js';
import { notFound, precondition } from '../../trpc/errors.js';
import { loadBillingState } from './account.js';
import type { BillingProvider } from './provider.js';

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
    const after = await em.execute<{ version: number; name: string; billing_email: string | null; retention_level: 'none' | 'retain' }[]>(
      'select version, name, billing_email, retention_level from organization where id = ?',
      [orgId],
    );
    const o = after[0]!;
    work.emit(orgId, { type: 'organization.updated', version: o.version, name: o.name, billingEmail: o.billing_email, retentionLevel: o.retention_level, plan });
  }
  work.emit(orgId, { type: 'billing.updated', reason: 'subscription' });
}

/** Cancel at period end: Pro stays until then; the `customer.subscription.deleted` event applies Free. */
export async function cancelSubscription(em: EntityManager, provider: BillingProvider, orgId: string) {
  const state = await loadBillingState(em, orgId);
  if (!state.subscription.id || !state.subscription.status || !LIVE_STATUSES.has(state.subscription.status)) {
    throw notFound('active subscription');
  }
  if (state.subscription.cancelAtPeriodEnd) throw precondition('the subscription is already set to end at the close of this period');
  const sub = await provider.stripe.subscriptions.update(state.subscription.id, { cancel_at_period_end: true });
  await em.execute('update organization set subscription_cancel_at_period_end = true where id = ? and subscription_id = ?', [orgId, sub.id]);
  return { cancelAtPeriodEnd: true, periodEnd: periodEnd(sub) };
}
