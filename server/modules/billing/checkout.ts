/** Owner actions that go through Stripe Checkout: buy credits, add a payment method, subscribe to Pro. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDollars } from '../../../shared/money.js';
import { PLANS } from '../../../shared/plans.js';
import { badRequest, precondition } from '../../errors.js';
import { ensureCustomer, loadBillingState } from './account.js';
import type { BillingProvider } from './provider.js';
import { runCommand } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';

export const PAYMENT_METHOD_TYPES = ['card', 'us_bank_account', 'sepa_debit'] as const;

function billingPage(appUrl: string, orgId: string, outcome: string) {
  return `${appUrl}/org/${orgId}/billing?checkout=${outcome}`;
}

/**
 * Credits are added by the signed webhook when the payment succeeds, never by the redirect. The
 * Checkout Session is created first (Stripe, outside any transaction); the request is then
 * recorded in one unit of work (audit entry, live event).
 */
/** `returnBase`: where Stripe sends the user back (APP_URL, or the allowed origin they came from; see server/auth/app-url.ts). */
export async function purchaseCredits(services: Services, actorId: string, orgId: string, amountCents: number, returnBase: string = services.appUrl) {
  const provider = services.billing;
  const customer = await ensureCustomer(services.orm.em.fork(), provider, orgId);
  const metadata = { orgId, kind: 'credits', credits_cents: String(amountCents), requested_by: actorId };
  const session = await provider.stripe.checkout.sessions.create({
    mode: 'payment',
    customer,
    client_reference_id: orgId,
    allowed_payment_method_types: [...PAYMENT_METHOD_TYPES],
    line_items: [
      {
        quantity: 1,
        price_data: {
          currency: 'usd',
          unit_amount: amountCents,
          product_data: { name: `${formatDollars((amountCents / 100).toFixed(2))} of LLM Gateway credits` },
        },
      },
    ],
    // Saves the payment method for later off-session use (auto top-up).
    payment_intent_data: { setup_future_usage: 'off_session', metadata },
    metadata,
    success_url: billingPage(returnBase, orgId, 'success'),
    cancel_url: billingPage(returnBase, orgId, 'canceled'),
  });
  if (!session.url) throw new Error('Stripe returned a Checkout Session without a URL');
  const checkoutUrl = session.url;
  return runCommand(services, actorId, (work) => {
    work.audit(orgId, 'billing.purchase_started', { type: 'checkout_session', id: session.id }, null, { amount: formatDollars((amountCents / 100).toFixed(2)) });
    work.emit(orgId, { type: 'billing.updated', reason: 'checkout_started' });
    return Promise.resolve({ checkoutUrl, sessionId: session.id });
  });
}

export async function addPaymentMethod(em: EntityManager, provider: BillingProvider, appUrl: string, orgId: string) {
  const customer = await ensureCustomer(em, provider, orgId);
  const session = await provider.stripe.checkout.sessions.create({
    mode: 'setup',
    customer,
    currency: 'usd',
    allowed_payment_method_types: [...PAYMENT_METHOD_TYPES],
    metadata: { orgId, kind: 'payment_method' },
    success_url: billingPage(appUrl, orgId, 'payment-method-added'),
    cancel_url: billingPage(appUrl, orgId, 'canceled'),
  });
  if (!session.url) throw new Error('Stripe returned a Checkout Session without a URL');
  return { checkoutUrl: session.url };
}

export async function subscribeToPro(em: EntityManager, provider: BillingProvider, appUrl: string, orgId: string, cycle: 'monthly' | 'yearly') {
  const state = await loadBillingState(em, orgId);
  if (state.plan === 'enterprise') throw precondition('this organization is on Enterprise; contact support to change its plan');
  if (state.subscription.id && state.subscription.status && !['canceled', 'incomplete_expired'].includes(state.subscription.status)) {
    throw precondition('this organization already has a subscription; cancel it or wait for it to end before starting another');
  }
  if (!PLANS.pro.priceCents) throw badRequest('the Pro plan has no price');
  const customer = await ensureCustomer(em, provider, orgId);
  const metadata = { orgId, kind: 'subscription', plan: 'pro', cycle };
  const session = await provider.stripe.checkout.sessions.create({
    mode: 'subscription',
    customer,
    line_items: [{ price: cycle === 'yearly' ? provider.prices.yearly : provider.prices.monthly, quantity: 1 }],
    subscription_data: { metadata },
    metadata,
    success_url: billingPage(appUrl, orgId, 'subscribed'),
    cancel_url: billingPage(appUrl, orgId, 'canceled'),
  });
  if (!session.url) throw new Error('Stripe returned a Checkout Session without a URL');
  return { checkoutUrl: session.url };
}
