/** Payment methods live at Stripe; we keep only which one is the default. */
import type Stripe from 'stripe';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Work } from '../../events/unit-of-work.js';
import { notFound } from '../../trpc/errors.js';
import { loadBillingState } from './account.js';
import type { BillingProvider } from './provider.js';

export function paymentMethodView(pm: Stripe.PaymentMethod, defaultId: string | null) {
  const base = { id: pm.id, type: pm.type, isDefault: pm.id === defaultId };
  if (pm.type === 'card' && pm.card) return { ...base, label: `${pm.card.brand[0]!.toUpperCase()}${pm.card.brand.slice(1)} •••• ${pm.card.last4}`, brand: pm.card.brand, last4: pm.card.last4, expiry: `${String(pm.card.exp_month).padStart(2, '0')}/${pm.card.exp_year}` };
  if (pm.type === 'us_bank_account' && pm.us_bank_account) return { ...base, label: `${pm.us_bank_account.bank_name ?? 'Bank account'} •••• ${pm.us_bank_account.last4}`, brand: pm.us_bank_account.bank_name ?? 'US bank account', last4: pm.us_bank_account.last4 ?? '', expiry: null };
  if (pm.type === 'sepa_debit' && pm.sepa_debit) return { ...base, label: `SEPA Direct Debit •••• ${pm.sepa_debit.last4}`, brand: 'SEPA Direct Debit', last4: pm.sepa_debit.last4 ?? '', expiry: null };
  return { ...base, label: pm.type, brand: pm.type, last4: '', expiry: null };
}

export async function listPaymentMethods(em: EntityManager, provider: BillingProvider, orgId: string) {
  const state = await loadBillingState(em, orgId);
  if (!state.stripeCustomerId) return [];
  const list = await provider.stripe.customers.listPaymentMethods(state.stripeCustomerId, { limit: 50 });
  return list.data.map((pm) => paymentMethodView(pm, state.defaultPaymentMethodId));
}

async function ownedPaymentMethod(em: EntityManager, provider: BillingProvider, orgId: string, paymentMethodId: string) {
  const state = await loadBillingState(em, orgId);
  const pm = state.stripeCustomerId ? await provider.stripe.paymentMethods.retrieve(paymentMethodId).catch(() => null) : null;
  const owner = typeof pm?.customer === 'string' ? pm.customer : pm?.customer?.id;
  if (!pm || !owner || owner !== state.stripeCustomerId) throw notFound('payment method');
  return { pm, state };
}

export async function setDefaultPaymentMethod(work: Work, provider: BillingProvider, orgId: string, paymentMethodId: string) {
  const { state } = await ownedPaymentMethod(work.em, provider, orgId, paymentMethodId);
  await provider.stripe.customers.update(state.stripeCustomerId!, { invoice_settings: { default_payment_method: paymentMethodId } });
  await work.em.execute('update organization set default_payment_method_id = ? where id = ?', [paymentMethodId, orgId]);
  work.audit(orgId, 'billing.payment_method_default', { type: 'payment_method', id: paymentMethodId }, { id: state.defaultPaymentMethodId }, { id: paymentMethodId });
  work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
  return { ok: true as const };
}

export async function removePaymentMethod(work: Work, provider: BillingProvider, orgId: string, paymentMethodId: string) {
  const { state } = await ownedPaymentMethod(work.em, provider, orgId, paymentMethodId);
  await provider.stripe.paymentMethods.detach(paymentMethodId);
  if (state.defaultPaymentMethodId === paymentMethodId) {
    await work.em.execute('update organization set default_payment_method_id = null where id = ?', [orgId]);
  }
  work.audit(orgId, 'billing.payment_method_removed', { type: 'payment_method', id: paymentMethodId }, null, null);
  work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
  return { ok: true as const };
}
