/** Payment methods live at Stripe; we keep only which one is the default. */
import type Stripe from 'stripe';
import type { EntityManager } from '@mikro-orm/postgresql';
import { runCommand } from '../../events/unit-of-work.js';
import { notFound } from '../../errors.js';
import { loadBillingState } from './account.js';
import type { BillingProvider } from './provider.js';
import type { EventBus } from '../../events/bus.js';
import type { Services } from '../../services.js';

export function paymentMethodView(pm: Stripe.PaymentMethod, defaultId: string | null) {
  // `type` as a plain string: Stripe's type name would leak into the emitted router declarations.
  const base = { id: pm.id, type: pm.type as string, isDefault: pm.id === defaultId };
  if (pm.type === 'card' && pm.card) return { ...base, label: `${pm.card.brand[0]!.toUpperCase()}${pm.card.brand.slice(1)} •••• ${pm.card.last4}`, brand: pm.card.brand, last4: pm.card.last4, expiry: `${String(pm.card.exp_month).padStart(2, '0')}/${pm.card.exp_year}` };
  if (pm.type === 'us_bank_account' && pm.us_bank_account) return { ...base, label: `${pm.us_bank_account.bank_name ?? 'Bank account'} •••• ${pm.us_bank_account.last4}`, brand: pm.us_bank_account.bank_name ?? 'US bank account', last4: pm.us_bank_account.last4 ?? '', expiry: null };
  if (pm.type === 'sepa_debit' && pm.sepa_debit) return { ...base, label: `SEPA Direct Debit •••• ${pm.sepa_debit.last4}`, brand: 'SEPA Direct Debit', last4: pm.sepa_debit.last4 ?? '', expiry: null };
  return { ...base, label: pm.type, brand: pm.type, last4: '', expiry: null };
}

/**
 * Stripe's list of an organization's payment methods, kept per instance. Without it every member
 * on the billing page, and every refetch a live billing event causes, is a Stripe API call (Stripe
 * limits those per second). An entry is dropped when the organization's `billing.updated` or
 * `credits.changed` event arrives (from any instance, through the bus: every change to payment
 * methods, ours or Stripe's webhooks, emits one), when the bus may have missed events, and after
 * PAYMENT_METHODS_TTL_MS for changes made at Stripe that no webhook announces.
 */
const PAYMENT_METHODS_TTL_MS = 60_000;
const MAX_CACHED_ORGS = 10_000;

type CachedList = { customerId: string; at: number; list: Promise<Stripe.PaymentMethod[]>; unsubscribe: () => void };

export class PaymentMethodCache {
  private readonly entries = new Map<string, CachedList>();

  constructor(private readonly bus: Pick<EventBus, 'subscribeOrg' | 'isListening'>) {}

  get(orgId: string, customerId: string, load: () => Promise<Stripe.PaymentMethod[]>): Promise<Stripe.PaymentMethod[]> {
    const hit = this.entries.get(orgId);
    if (hit && hit.customerId === customerId && Date.now() - hit.at < PAYMENT_METHODS_TTL_MS && this.bus.isListening()) return hit.list;
    this.evict(orgId);
    if (this.entries.size >= MAX_CACHED_ORGS) this.evict(this.entries.keys().next().value as string);
    const unsubscribe = this.bus.subscribeOrg(orgId, {
      deliver: (event) => {
        if (event.type === 'billing.updated' || event.type === 'credits.changed' || event.type === 'organization.deleted') this.evict(orgId);
      },
      resync: () => this.evict(orgId),
    });
    const entry: CachedList = { customerId, at: Date.now(), list: load(), unsubscribe };
    this.entries.set(orgId, entry);
    entry.list.catch(() => {
      if (this.entries.get(orgId) === entry) this.evict(orgId);
    });
    return entry.list;
  }

  evict(orgId: string): void {
    const entry = this.entries.get(orgId);
    if (!entry) return;
    this.entries.delete(orgId);
    entry.unsubscribe();
  }
}

/** The services payment-method code runs with: the provider and this process's cache (built by createServices). */
type PaymentMethodServices = Pick<Services, 'billing' | 'paymentMethods'>;

export async function listPaymentMethods(em: EntityManager, services: PaymentMethodServices, orgId: string) {
  const state = await loadBillingState(em, orgId);
  const customerId = state.stripeCustomerId;
  if (!customerId) return [];
  const list = await services.paymentMethods.get(orgId, customerId, async () => (await services.billing.stripe.customers.listPaymentMethods(customerId, { limit: 50 })).data);
  return list.map((pm) => paymentMethodView(pm, state.defaultPaymentMethodId));
}

function nullIfMissing(err: unknown): null {
  const e = err as { code?: string; statusCode?: number };
  if (e?.code === 'resource_missing' || e?.statusCode === 404) return null;
  throw err;
}

async function ownedPaymentMethod(em: EntityManager, provider: BillingProvider, orgId: string, paymentMethodId: string) {
  const state = await loadBillingState(em, orgId);
  // Only Stripe's "no such payment method" means not found; an outage must not pass for one.
  const pm = state.stripeCustomerId ? await provider.stripe.paymentMethods.retrieve(paymentMethodId).catch(nullIfMissing) : null;
  const owner = typeof pm?.customer === 'string' ? pm.customer : pm?.customer?.id;
  if (!pm || !owner || owner !== state.stripeCustomerId) throw notFound('payment method');
  return { pm, state };
}

/**
 * Makes a saved payment method the default. Stripe is called first (idempotent: setting the same
 * default twice is harmless), then the change, its audit entry and event commit together: no
 * network call runs while the transaction holds a connection or a lock.
 */
export async function setDefaultPaymentMethod(services: Services, actorId: string | null, orgId: string, paymentMethodId: string) {
  const provider = services.billing;
  const { state } = await ownedPaymentMethod(services.orm.em.fork(), provider, orgId, paymentMethodId);
  // Setting a default is idempotent by nature; the SDK's own idempotency key covers its retries.
  await provider.stripe.customers.update(state.stripeCustomerId!, { invoice_settings: { default_payment_method: paymentMethodId } });
  return runCommand(services, actorId, async (work) => {
    const before = await loadBillingState(work.em, orgId, { lock: true });
    await work.em.execute('update organization set default_payment_method_id = ? where id = ?', [paymentMethodId, orgId]);
    // This instance's next list must not wait for the event to come back from the bus.
    work.afterCommit(() => services.paymentMethods.evict(orgId));
    work.audit(orgId, 'billing.payment_method_default', { type: 'payment_method', id: paymentMethodId }, { id: before.defaultPaymentMethodId }, { id: paymentMethodId });
    work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
    return { ok: true as const };
  });
}

/** Removes a saved payment method: detached at Stripe first, then recorded (audit, event) in one unit of work. */
export async function removePaymentMethod(services: Services, actorId: string | null, orgId: string, paymentMethodId: string) {
  const provider = services.billing;
  await ownedPaymentMethod(services.orm.em.fork(), provider, orgId, paymentMethodId);
  await provider.stripe.paymentMethods.detach(paymentMethodId);
  return runCommand(services, actorId, async (work) => {
    await work.em.execute('update organization set default_payment_method_id = null where id = ? and default_payment_method_id = ?', [orgId, paymentMethodId]);
    work.afterCommit(() => services.paymentMethods.evict(orgId));
    work.audit(orgId, 'billing.payment_method_removed', { type: 'payment_method', id: paymentMethodId }, null, null);
    work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
    return { ok: true as const };
  });
}

/** The fingerprint Stripe gives the same card or account however often it is saved. */
export function fingerprintOf(pm: Stripe.PaymentMethod): string | null {
  const details = (pm as unknown as Record<string, { fingerprint?: string | null } | undefined>)[pm.type];
  return details?.fingerprint ? `${pm.type}:${details.fingerprint}` : null;
}
