/** An organization's billing state and its Stripe customer. */
import type { EntityManager } from '@mikro-orm/postgresql';
import type Stripe from 'stripe';
import { notFound } from '../../errors.js';
import type { BillingProvider } from './provider.js';
import type { Row as TableRow } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';

export interface BillingState {
  id: string;
  name: string;
  plan: 'free' | 'pro' | 'enterprise';
  billingCycle: string | null;
  billingEmail: string | null;
  creditsNanos: bigint;
  stripeCustomerId: string | null;
  defaultPaymentMethodId: string | null;
  autoTopUp: { enabled: boolean; thresholdNanos: bigint; amountNanos: bigint; disabledReason: string | null };
  subscription: { id: string | null; status: string | null; periodEnd: Date | null; cancelAtPeriodEnd: boolean };
}

/** `select * from organization`, typed from the entity. */
type Row = TableRow<typeof Organization>;

export async function loadBillingState(em: EntityManager, orgId: string, opts: { lock?: boolean } = {}): Promise<BillingState> {
  const rows = await em.execute<Row[]>(`select * from organization where id = ?${opts.lock ? ' for update' : ''}`, [orgId]);
  const r = rows[0];
  if (!r) throw notFound('organization');
  return {
    id: r.id,
    name: r.name,
    plan: r.plan,
    billingCycle: r.billing_cycle,
    billingEmail: r.billing_email,
    creditsNanos: BigInt(r.credits_nanos),
    stripeCustomerId: r.stripe_customer_id,
    defaultPaymentMethodId: r.default_payment_method_id,
    autoTopUp: {
      enabled: r.auto_top_up_enabled,
      thresholdNanos: BigInt(r.auto_top_up_threshold_nanos),
      amountNanos: BigInt(r.auto_top_up_amount_nanos),
      disabledReason: r.auto_top_up_disabled_reason,
    },
    subscription: {
      id: r.subscription_id,
      status: r.subscription_status,
      periodEnd: r.subscription_period_end,
      cancelAtPeriodEnd: r.subscription_cancel_at_period_end,
    },
  };
}

/**
 * The organization's Stripe customer, created on first need. The idempotency key makes parallel
 * first purchases create one customer; the conditional update keeps the first one stored.
 */
export async function ensureCustomer(em: EntityManager, provider: BillingProvider, orgId: string): Promise<string> {
  const state = await loadBillingState(em, orgId);
  if (state.stripeCustomerId) return state.stripeCustomerId;
  const customer = await provider.stripe.customers.create(
    { name: state.name, email: state.billingEmail ?? undefined, metadata: { orgId } },
    { idempotencyKey: `customer-${orgId}` },
  );
  await em.execute('update organization set stripe_customer_id = ? where id = ? and stripe_customer_id is null', [customer.id, orgId]);
  const after = await loadBillingState(em, orgId);
  return after.stripeCustomerId!;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Which organization a Stripe object belongs to: its metadata, else its customer. */
export async function organizationOf(em: EntityManager, obj: { metadata?: Stripe.Metadata | null; customer?: string | Stripe.Customer | Stripe.DeletedCustomer | null }): Promise<string | null> {
  const fromMeta = obj.metadata?.orgId;
  if (fromMeta && UUID.test(fromMeta)) {
    const rows = await em.execute<Pick<Row, 'id'>[]>('select id from organization where id = ?', [fromMeta]);
    if (rows[0]) return rows[0].id;
  }
  const customer = typeof obj.customer === 'string' ? obj.customer : obj.customer?.id;
  if (customer) {
    const rows = await em.execute<Pick<Row, 'id'>[]>('select id from organization where stripe_customer_id = ?', [customer]);
    if (rows[0]) return rows[0].id;
  }
  return null;
}

export function centsToNanos(cents: number | bigint): bigint {
  return BigInt(cents) * 10_000_000n;
}

export function nanosToCents(nanos: bigint): number {
  return Number(nanos / 10_000_000n);
}
