/**
 * Stripe webhooks: the signature is verified on the raw body; each event is applied exactly once
 * (stripe_event's primary key, claimed in the same transaction as the ledger entry, plus unique
 * payment intent / refund ids on the ledger). Objects whose latest state matters (subscriptions)
 * are fetched from Stripe before the transaction, so events arriving out of order end right.
 */
import type Stripe from 'stripe';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { centsToNanos, loadBillingState, organizationOf } from './account.js';
import { postLedgerEntry } from './ledger.js';
import { recordRefund } from './refunds.js';
import { recordAutoTopUpOutcome } from './auto-top-up.js';
import { applySubscription, subscriptionIdOfInvoice } from './subscriptions.js';
import { ownerEmails } from './notify.js';
import { fingerprintOf } from './payment-methods.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';
import type { LedgerEntry, StripeEvent } from './entities.js';

export type WebhookResult = { status: number; body: Record<string, unknown> };

interface Prepared {
  subscription?: Stripe.Subscription | null;
  paymentMethodId?: string | null;
  /** Saved methods with the same fingerprint as a newly attached one, detached at Stripe already. */
  duplicatesDetached?: string[];
  /** The one of them kept. */
  keptPaymentMethod?: string;
  /** A method whose payment failed, detached at Stripe already (it is not kept as usable). */
  failedMethodDetached?: string | null;
}

const idOf = (v: string | { id: string } | null | undefined) => (typeof v === 'string' ? v : (v?.id ?? null));

/**
 * One saved payment method per card or account: when a method is attached whose fingerprint other
 * saved methods share, only the newest of them stays (the freshest expiry); the others are
 * detached and the default, if it was one of them, moves to the one kept. Order-independent and
 * idempotent (a redelivered or late event finds the same newest one). Stripe calls, before the
 * transaction.
 */
async function detachDuplicates(services: Services, pm: Stripe.PaymentMethod): Promise<Pick<Prepared, 'duplicatesDetached' | 'keptPaymentMethod'>> {
  const customer = idOf(pm.customer);
  const fingerprint = fingerprintOf(pm);
  if (!customer || !fingerprint) return {};
  const stripe = services.billing.stripe;
  const saved = (await stripe.customers.listPaymentMethods(customer, { limit: 100 })).data;
  const same = saved.filter((other) => fingerprintOf(other) === fingerprint);
  if (same.length <= 1) return {};
  const keep = same.reduce((a, b) => (b.created > a.created || (b.created === a.created && b.id > a.id) ? b : a));
  const older = same.filter((other) => other.id !== keep.id);
  const customerObj = await stripe.customers.retrieve(customer);
  const currentDefault = 'deleted' in customerObj && customerObj.deleted ? null : idOf(customerObj.invoice_settings?.default_payment_method);
  if (currentDefault && older.some((o) => o.id === currentDefault)) {
    await stripe.customers.update(customer, { invoice_settings: { default_payment_method: keep.id } });
  }
  for (const other of older) await stripe.paymentMethods.detach(other.id);
  return { duplicatesDetached: older.map((o) => o.id), keptPaymentMethod: keep.id };
}

/** A purchase's card declined or bank debit failed: the method is not kept for later charges. */
async function detachFailedMethod(services: Services, pi: Stripe.PaymentIntent): Promise<string | null> {
  if (pi.metadata?.kind !== 'credits') return null;
  const pmId = idOf(pi.payment_method);
  if (!pmId) return null;
  const stripe = services.billing.stripe;
  const pm = await stripe.paymentMethods.retrieve(pmId).catch((err: unknown) => {
    services.log.warn({ err, paymentMethod: pmId }, 'could not read the payment method of a failed payment');
    return null;
  });
  if (!pm?.customer) return pmId;
  await stripe.paymentMethods.detach(pmId);
  return pmId;
}

/** Network reads done before the transaction opens. */
async function prepare(services: Services, event: Stripe.Event): Promise<Prepared> {
  const stripe = services.billing.stripe;
  const obj = event.data.object as unknown as Record<string, any>;
  switch (event.type) {
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
      return { subscription: await stripe.subscriptions.retrieve(obj.id).catch(() => obj as Stripe.Subscription) };
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const subId = subscriptionIdOfInvoice(obj as Stripe.Invoice);
      return { subscription: subId ? await stripe.subscriptions.retrieve(subId) : null };
    }
    case 'checkout.session.completed': {
      if (obj.mode === 'subscription' && obj.subscription) return { subscription: await stripe.subscriptions.retrieve(String(obj.subscription)) };
      if (obj.mode === 'setup' && obj.setup_intent) {
        const seti = await stripe.setupIntents.retrieve(String(obj.setup_intent));
        return { paymentMethodId: typeof seti.payment_method === 'string' ? seti.payment_method : (seti.payment_method?.id ?? null) };
      }
      return {};
    }
    case 'payment_method.attached':
      return await detachDuplicates(services, obj as Stripe.PaymentMethod);
    case 'payment_intent.payment_failed':
      return { failedMethodDetached: await detachFailedMethod(services, obj as Stripe.PaymentIntent) };
    default:
      return {};
  }
}

/** Stripe's signature tolerance (the SDK refuses older timestamps but not future ones). */
const SIGNATURE_TOLERANCE_S = 300;
/** No payment, refund or invoice we take is above this (the largest purchase is $1,000,000). */
export const MAX_WEBHOOK_AMOUNT_CENTS = 100_000_000;
const AMOUNT_FIELDS = ['amount', 'amount_total', 'amount_received', 'amount_paid', 'amount_due', 'amount_refunded'] as const;

function badAmount(value: unknown): boolean {
  return value !== undefined && value !== null && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_WEBHOOK_AMOUNT_CENTS);
}

/**
 * Why a correctly signed event is still refused (null: it is acceptable): a timestamp in the
 * future, a malformed envelope, or an amount that is negative, fractional or absurd. Refused
 * events answer 400 and change nothing (not even the stripe_event claim).
 */
export function refusalOf(event: Stripe.Event, signature: string, nowMs = Date.now()): string | null {
  const nowS = Math.floor(nowMs / 1000);
  const t = Number(/(?:^|,)t=(\d+)/.exec(signature)?.[1]);
  if (!Number.isFinite(t) || t > nowS + SIGNATURE_TOLERANCE_S) return 'the signature timestamp is in the future';
  const e = event as unknown as Record<string, unknown>;
  if (typeof e.id !== 'string' || e.id.length === 0 || e.id.length > 255) return 'the event has no valid id';
  if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > 255) return 'the event has no valid type';
  if (typeof e.created === 'number' && e.created > nowS + SIGNATURE_TOLERANCE_S) return 'the event was created in the future';
  const data = e.data as { object?: unknown } | undefined;
  if (!data || typeof data.object !== 'object' || data.object === null || Array.isArray(data.object)) return 'the event has no data object';
  const obj = data.object as Record<string, unknown>;
  for (const field of AMOUNT_FIELDS) if (badAmount(obj[field])) return `the event's ${field} is not a valid amount`;
  const refunds = (obj.refunds as { data?: unknown } | undefined)?.data;
  if (refunds !== undefined && !Array.isArray(refunds)) return 'the event has a malformed refund list';
  for (const r of (refunds as Record<string, unknown>[] | undefined) ?? []) {
    if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || badAmount(r.amount) || r.amount === undefined) return 'the event has a malformed refund';
  }
  if (obj.metadata !== undefined && obj.metadata !== null && (typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) return 'the event has malformed metadata';
  return null;
}

export async function handleStripeWebhook(services: Services, rawBody: Buffer, signature: string | undefined): Promise<WebhookResult> {
  let event: Stripe.Event;
  try {
    event = services.billing.stripe.webhooks.constructEvent(rawBody, signature ?? '', services.billing.webhookSecret);
  } catch {
    return { status: 400, body: { error: 'invalid or missing Stripe signature' } };
  }
  const refused = refusalOf(event, signature ?? '');
  if (refused) {
    services.log.warn({ event: (event as { id?: unknown }).id, type: (event as { type?: unknown }).type, refused }, 'signed Stripe webhook refused');
    return { status: 400, body: { error: refused } };
  }
  const prepared = await prepare(services, event);
  // Two events about one payment can race to credit it; the loser hits a unique index and, retried,
  // finds the work done.
  for (let attempt = 1; ; attempt++) {
    try {
      return { status: 200, body: { received: true, outcome: await applyOnce(services, event, prepared) } };
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException) || attempt >= 3) throw err;
    }
  }
}

async function applyOnce(services: Services, event: Stripe.Event, prepared: Prepared): Promise<string> {
  return runCommand(services, null, async (work) => {
    const claimed = await work.em.execute<RowOf<typeof StripeEvent, 'id'>[]>(
      'insert into stripe_event (id, type, processed_at) values (?, ?, now()) on conflict (id) do nothing returning id',
      [event.id, event.type],
    );
    if (claimed.length === 0) return 'duplicate';
    const orgId = await applyEvent(work, services, event, prepared);
    if (orgId) await work.em.execute('update stripe_event set org_id = ? where id = ?', [orgId, event.id]);
    return orgId ? 'applied' : 'ignored';
  });
}

async function creditPayment(work: Work, orgId: string, type: 'purchase' | 'auto_topup', pi: { id: string; amountCents: number }, eventId: string) {
  // Locked first, so two events for one payment (or the auto top-up's own crediting) take turns.
  await work.em.execute('select id from organization where id = ? for update', [orgId]);
  const exists = await work.em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(
    `select id from credit_ledger where payment_intent_id = ? and type in ('purchase', 'auto_topup') and status = 'completed'`,
    [pi.id],
  );
  if (exists.length > 0) return; // the other event for this payment already credited it
  const amount = centsToNanos(pi.amountCents);
  await postLedgerEntry(work, orgId, {
    type,
    amountNanos: amount,
    description: type === 'purchase' ? `Credits purchase: ${formatDollars(nanosToDecimal(amount))}` : `Auto top-up: ${formatDollars(nanosToDecimal(amount))}`,
    paymentIntentId: pi.id,
    stripeEventId: eventId,
  });
}

async function setDefaultPaymentMethodIfNone(work: Work, services: Services, orgId: string, paymentMethodId: string | null | undefined) {
  if (!paymentMethodId) return;
  const updated = await work.em.execute<RowOf<typeof Organization, 'id'>[]>(
    'update organization set default_payment_method_id = ? where id = ? and default_payment_method_id is null returning id',
    [paymentMethodId, orgId],
  );
  if (updated.length > 0) {
    const state = await loadBillingState(work.em, orgId);
    work.afterCommit(async () => {
      if (state.stripeCustomerId) {
        await services.billing.stripe.customers.update(state.stripeCustomerId, { invoice_settings: { default_payment_method: paymentMethodId } });
      }
    });
    work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
  }
}

const piId = (v: string | { id: string } | null | undefined) => (typeof v === 'string' ? v : (v?.id ?? null));

/** Applies one event; returns the organization it concerned (null when ignored). */
async function applyEvent(work: Work, services: Services, event: Stripe.Event, prepared: Prepared): Promise<string | null> {
  const { em } = work;
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const session = event.data.object;
      const orgId = await organizationOf(em, session);
      if (!orgId) return null;
      if (session.mode === 'payment' && session.metadata?.kind === 'credits') {
        const paymentIntent = piId(session.payment_intent);
        if (session.payment_status === 'paid' && paymentIntent && session.amount_total != null) {
          await creditPayment(work, orgId, 'purchase', { id: paymentIntent, amountCents: session.amount_total }, event.id);
        } else if (event.type === 'checkout.session.completed') {
          work.emit(orgId, { type: 'billing.updated', reason: 'payment_processing' });
        }
      } else if (session.mode === 'setup') {
        await setDefaultPaymentMethodIfNone(work, services, orgId, prepared.paymentMethodId);
        work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
      } else if (session.mode === 'subscription' && prepared.subscription) {
        await applySubscription(work, orgId, prepared.subscription);
      }
      return orgId;
    }
    case 'checkout.session.async_payment_failed': {
      const session = event.data.object;
      const orgId = await organizationOf(em, session);
      if (!orgId || session.metadata?.kind !== 'credits') return orgId;
      const amount = centsToNanos(session.amount_total ?? 0);
      await postLedgerEntry(work, orgId, {
        type: 'purchase',
        status: 'failed',
        amountNanos: amount,
        description: `Credits purchase failed: the ${formatDollars(nanosToDecimal(amount))} bank debit did not go through`,
        paymentIntentId: piId(session.payment_intent),
        stripeEventId: event.id,
      });
      work.emit(orgId, { type: 'billing.updated', reason: 'payment_failed' });
      return orgId;
    }
    case 'payment_intent.succeeded': {
      const pi = event.data.object;
      const orgId = await organizationOf(em, pi);
      if (!orgId) return null;
      const kind = pi.metadata?.kind;
      if (kind === 'credits' || kind === 'auto_topup') {
        await creditPayment(work, orgId, kind === 'credits' ? 'purchase' : 'auto_topup', { id: pi.id, amountCents: pi.amount_received || pi.amount }, event.id);
        if (pi.setup_future_usage === 'off_session' || kind === 'auto_topup') await setDefaultPaymentMethodIfNone(work, services, orgId, piId(pi.payment_method));
        if (kind === 'auto_topup') await recordAutoTopUpOutcome(work, services, orgId, pi.metadata.attemptId, { status: 'succeeded', paymentIntentId: pi.id });
      }
      return orgId;
    }
    case 'payment_intent.payment_failed':
    case 'payment_intent.requires_action': {
      const pi = event.data.object;
      const orgId = await organizationOf(em, pi);
      if (orgId && prepared.failedMethodDetached) {
        await em.execute('update organization set default_payment_method_id = null where id = ? and default_payment_method_id = ?', [orgId, prepared.failedMethodDetached]);
        work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
      }
      if (!orgId || pi.metadata?.kind !== 'auto_topup') return orgId;
      await recordAutoTopUpOutcome(work, services, orgId, pi.metadata.attemptId, {
        status: event.type === 'payment_intent.requires_action' ? 'requires_action' : 'failed',
        paymentIntentId: pi.id,
        reason: pi.last_payment_error?.message ?? 'the payment failed',
      });
      return orgId;
    }
    case 'charge.refunded': {
      const charge = event.data.object;
      const orgId = await organizationOf(em, charge);
      if (!orgId) return null;
      // Only payments that bought credits give credits back (found through the ledger, since
      // Stripe does not copy a PaymentIntent's metadata onto its charge).
      const credited = await em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(
        `select id from credit_ledger where payment_intent_id = ? and type in ('purchase', 'auto_topup') and status = 'completed'`,
        [piId(charge.payment_intent)],
      );
      if (credited.length === 0) return orgId;
      for (const refund of charge.refunds?.data ?? []) {
        if (refund.status !== 'succeeded' && refund.status !== 'pending') continue;
        // A refund made from the dashboard carries its purchase and reason in metadata, so it reads
        // the same whether this webhook or the dashboard's action records it first.
        const purchaseEntryId = refund.metadata?.orgId === orgId ? (refund.metadata?.ledgerEntryId ?? null) : null;
        await recordRefund(work, orgId, {
          refundId: refund.id,
          amountNanos: centsToNanos(refund.amount),
          paymentIntentId: piId(charge.payment_intent)!,
          purchaseEntryId: purchaseEntryId && credited.some((c) => String(c.id) === purchaseEntryId) ? purchaseEntryId : null,
          reason: purchaseEntryId ? (refund.metadata?.note ?? null) : null,
          stripeEventId: event.id,
        });
      }
      return orgId;
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const sub = prepared.subscription ?? event.data.object;
      const orgId = await organizationOf(em, sub);
      if (!orgId) return null;
      await applySubscription(work, orgId, sub);
      return orgId;
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const invoice = event.data.object;
      const orgId = await organizationOf(em, { metadata: invoice.parent?.subscription_details?.metadata ?? invoice.metadata, customer: invoice.customer });
      if (!orgId) return null;
      if (prepared.subscription) await applySubscription(work, orgId, prepared.subscription);
      const paid = centsToNanos(event.type === 'invoice.paid' ? invoice.amount_paid : invoice.amount_due);
      await postLedgerEntry(work, orgId, {
        type: 'plan_charge',
        amountNanos: 0n,
        status: event.type === 'invoice.paid' ? 'completed' : 'failed',
        description:
          event.type === 'invoice.paid'
            ? paid === 0n
              ? `Pro plan: invoice ${invoice.number ?? ''} settled with nothing to pay (credit for unused time; credits unchanged)`.replace('  ', ' ')
              : `Pro plan: ${formatDollars(nanosToDecimal(paid))} paid by card (credits unchanged)`
            : `Pro plan: the ${formatDollars(nanosToDecimal(paid))} payment failed`,
        invoiceId: invoice.id ?? null,
        stripeEventId: event.id,
      });
      if (event.type === 'invoice.payment_failed') {
        for (const to of await ownerEmails(em, orgId)) {
          work.email(to, 'Your Pro plan payment failed', `The payment of ${formatDollars(nanosToDecimal(paid))} for the Pro plan failed. Update the payment method on the Billing page to keep Pro.`);
        }
      }
      work.emit(orgId, { type: 'billing.updated', reason: 'invoice' });
      return orgId;
    }
    case 'setup_intent.succeeded': {
      const seti = event.data.object;
      const orgId = await organizationOf(em, seti);
      if (!orgId) return null;
      await setDefaultPaymentMethodIfNone(work, services, orgId, piId(seti.payment_method));
      return orgId;
    }
    case 'payment_method.attached': {
      // Saved during a purchase, a setup or outside the dashboard: every viewer's list must show it.
      const orgId = await organizationOf(em, { customer: event.data.object.customer });
      if (!orgId) return null;
      if (prepared.duplicatesDetached?.length) {
        await em.execute('update organization set default_payment_method_id = ? where id = ? and default_payment_method_id = any(?::text[])', [
          prepared.keptPaymentMethod,
          orgId,
          `{${prepared.duplicatesDetached.join(',')}}`,
        ]);
      }
      work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
      return orgId;
    }
    case 'payment_method.detached': {
      const pm = event.data.object;
      const previous = (event.data.previous_attributes as { customer?: string } | undefined)?.customer ?? null;
      const orgId = await organizationOf(em, { customer: previous });
      if (!orgId) return null;
      await em.execute('update organization set default_payment_method_id = null where id = ? and default_payment_method_id = ?', [orgId, pm.id]);
      work.emit(orgId, { type: 'billing.updated', reason: 'payment_method' });
      return orgId;
    }
    default:
      return null; // not an event we act on: acknowledged and ignored
  }
}

