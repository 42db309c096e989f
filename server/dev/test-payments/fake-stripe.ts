/**
 * The local test-payment provider: a small Stripe-compatible HTTP API (the subset we use) that the
 * real `stripe` SDK talks to, plus a checkout page where a person completes or fails a payment.
 * Whatever happens produces Stripe-shaped events, signed like Stripe's, POSTed to our own webhook:
 * the same code path real payments take. Used when no STRIPE_SECRET_KEY is set, and by the tests.
 * It refuses to run in production.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { createHash, createHmac } from 'node:crypto';
import qs from 'qs';
import type { MikroORM } from '@mikro-orm/postgresql';
import { FakeStripeStore, newId, type StripeObject } from './store.js';

/** How a test payment method behaves when charged. */
export type TestMethod = 'card' | 'card_declined' | 'card_requires_action' | 'us_bank_account' | 'sepa_debit' | 'bank_failure';

export const TEST_METHODS: Record<TestMethod, { label: string; type: 'card' | 'us_bank_account' | 'sepa_debit'; details: Record<string, unknown> }> = {
  card: { label: 'Visa ending 4242 (succeeds)', type: 'card', details: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034 } },
  card_declined: { label: 'Visa ending 0002 (declined)', type: 'card', details: { brand: 'visa', last4: '0002', exp_month: 12, exp_year: 2034 } },
  card_requires_action: {
    label: 'Mastercard ending 3184 (needs 3-D Secure when charged later)',
    type: 'card',
    details: { brand: 'mastercard', last4: '3184', exp_month: 12, exp_year: 2034 },
  },
  us_bank_account: { label: 'US bank account ending 6789 (ACH, settles in a few seconds)', type: 'us_bank_account', details: { bank_name: 'STRIPE TEST BANK', last4: '6789' } },
  sepa_debit: { label: 'SEPA Direct Debit ending 3000 (settles in a few seconds)', type: 'sepa_debit', details: { bank_code: '37040044', country: 'DE', last4: '3000' } },
  bank_failure: { label: 'US bank account ending 1116 (payment fails when it settles)', type: 'us_bank_account', details: { bank_name: 'STRIPE TEST BANK', last4: '1116' } },
};

export interface PriceInfo { unitAmount: number; interval: 'month' | 'year'; product: string }

export interface FakeStripeOptions {
  orm: MikroORM;
  webhookSecret: string;
  /** Where events go (our own /api/stripe/webhook); read at send time, so it can be set after listen. */
  webhookUrl: () => string | null;
  /** Public base URL of the checkout pages (e.g. http://localhost:3000/test-payments). */
  checkoutBaseUrl: () => string;
  prices: Record<string, PriceInfo>;
  /** Delay before bank debits settle (ms). */
  settleDelayMs?: number;
  log?: { warn(o: unknown, m?: string): void };
}

class StripeApiError extends Error {
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(String(body.message));
  }
}

const now = () => Math.floor(Date.now() / 1000);

export function signPayload(secret: string, payload: string, timestamp = now()): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

export class FakeStripe {
  readonly store: FakeStripeStore;
  private queue: Promise<void> = Promise.resolve();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Every event sent, in order (for tests and the dev console). */
  readonly sentEvents: StripeObject[] = [];
  private server: FastifyInstance | null = null;
  apiPort = 0;

  constructor(private readonly opts: FakeStripeOptions) {
    if (process.env.NODE_ENV === 'production') {
      throw new Error('the local test-payment provider is refused when NODE_ENV=production; set STRIPE_SECRET_KEY');
    }
    this.store = new FakeStripeStore(opts.orm);
  }

  // ---------------------------------------------------------------- events

  /** Queues a signed event to our webhook; delivery is in order, retried on failure like Stripe does. */
  async emit(type: string, object: StripeObject, extra: Record<string, unknown> = {}): Promise<StripeObject> {
    const event: StripeObject = {
      id: newId('evt'),
      object: 'event',
      api_version: '2026-10-28.endive',
      created: now(),
      livemode: false,
      type,
      data: { object, ...extra },
      pending_webhooks: 1,
    };
    await this.store.put(event);
    this.sentEvents.push(event);
    this.queue = this.queue.then(async () => void (await this.deliver(event))).catch(() => {});
    return event;
  }

  async deliver(event: StripeObject, attempts = 6): Promise<boolean> {
    const payload = JSON.stringify(event);
    for (let attempt = 0; attempt < attempts; attempt++) {
      const url = this.opts.webhookUrl();
      if (!url) return false;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'stripe-signature': signPayload(this.opts.webhookSecret, payload) },
          body: payload,
        });
        if (res.ok) return true;
      } catch {
        // endpoint down: retry
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    this.opts.log?.warn({ event: event.id, type: event.type }, 'test-payment provider could not deliver an event');
    return false;
  }

  /** Waits until every queued event has been delivered (tests). */
  async drain(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.queue;
      await current;
    } while (current !== this.queue);
  }

  private later(ms: number, fn: () => Promise<unknown>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn().catch(() => {});
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------- objects

  private async mustGet(id: string, what: string): Promise<StripeObject> {
    const obj = await this.store.get(id);
    if (!obj || obj.deleted) throw new StripeApiError(404, { type: 'invalid_request_error', code: 'resource_missing', message: `No such ${what}: '${id}'` });
    return obj;
  }

  async createCustomer(params: Record<string, any>): Promise<StripeObject> {
    return this.store.put({
      id: newId('cus'),
      object: 'customer',
      created: now(),
      email: params.email ?? null,
      name: params.name ?? null,
      metadata: params.metadata ?? {},
      invoice_settings: { default_payment_method: null },
    });
  }

  async updateCustomer(id: string, params: Record<string, any>): Promise<StripeObject> {
    const customer = await this.mustGet(id, 'customer');
    if (params.email !== undefined) customer.email = params.email;
    if (params.name !== undefined) customer.name = params.name;
    if (params.metadata) customer.metadata = { ...customer.metadata, ...params.metadata };
    if (params.invoice_settings?.default_payment_method !== undefined) {
      const pmId = params.invoice_settings.default_payment_method || null;
      if (pmId) {
        const pm = await this.mustGet(pmId, 'payment_method');
        if (pm.customer !== id) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'The payment method is not attached to this customer.' });
      }
      customer.invoice_settings = { ...customer.invoice_settings, default_payment_method: pmId };
    }
    return this.store.put(customer);
  }

  async createPaymentMethod(customerId: string, method: TestMethod): Promise<StripeObject> {
    const spec = TEST_METHODS[method];
    const pm = await this.store.put({
      id: newId('pm'),
      object: 'payment_method',
      created: now(),
      type: spec.type,
      // Like Stripe: the same card or account always has the same fingerprint.
      [spec.type]: { ...spec.details, fingerprint: `fp_test_${createHash('sha256').update(method).digest('hex').slice(0, 16)}` },
      customer: customerId,
      metadata: { test_behavior: method },
    });
    // Stripe tells the webhook whenever a payment method is attached to a customer.
    await this.emit('payment_method.attached', pm);
    return pm;
  }

  async listPaymentMethods(customerId: string, type?: string): Promise<StripeObject> {
    const all = await this.store.find('payment_method', { customer: customerId });
    const data = all.filter((pm) => !type || pm.type === type).reverse();
    return { object: 'list', id: 'list', data, has_more: false, url: `/v1/customers/${customerId}/payment_methods` };
  }

  async detachPaymentMethod(id: string): Promise<StripeObject> {
    const pm = await this.mustGet(id, 'payment_method');
    const customerId = pm.customer;
    pm.customer = null;
    await this.store.put(pm);
    if (customerId) {
      const customer = await this.store.get(customerId);
      if (customer?.invoice_settings?.default_payment_method === id) {
        customer.invoice_settings.default_payment_method = null;
        await this.store.put(customer);
      }
    }
    await this.emit('payment_method.detached', pm, { previous_attributes: { customer: customerId } });
    return pm;
  }

  async createCheckoutSession(params: Record<string, any>): Promise<StripeObject> {
    const mode = params.mode as 'payment' | 'setup' | 'subscription';
    if (!['payment', 'setup', 'subscription'].includes(mode)) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'Invalid mode' });
    if (!params.success_url) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'Missing required param: success_url.' });
    let amountTotal = 0;
    let price: (PriceInfo & { id: string }) | null = null;
    for (const item of (params.line_items ?? []) as Record<string, any>[]) {
      const quantity = Number(item.quantity ?? 1);
      if (item.price) {
        const p = this.opts.prices[item.price];
        if (!p) throw new StripeApiError(400, { type: 'invalid_request_error', code: 'resource_missing', message: `No such price: '${item.price}'` });
        price = { ...p, id: item.price };
        amountTotal += p.unitAmount * quantity;
      } else if (item.price_data) {
        const unit = Number(item.price_data.unit_amount);
        if (!Number.isInteger(unit) || unit < 0) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'Invalid unit_amount' });
        amountTotal += unit * quantity;
      }
    }
    const id = newId('cs');
    return this.store.put({
      id,
      object: 'checkout.session',
      created: now(),
      mode,
      status: 'open',
      payment_status: mode === 'setup' ? 'no_payment_required' : 'unpaid',
      url: `${this.opts.checkoutBaseUrl()}/checkout/${id}`,
      customer: params.customer ?? null,
      customer_email: params.customer_email ?? null,
      amount_total: mode === 'setup' ? null : amountTotal,
      currency: params.currency ?? 'usd',
      metadata: params.metadata ?? {},
      client_reference_id: params.client_reference_id ?? null,
      success_url: params.success_url,
      cancel_url: params.cancel_url ?? null,
      payment_method_types: params.allowed_payment_method_types ?? params.payment_method_types ?? ['card'],
      payment_intent: null,
      setup_intent: null,
      subscription: null,
      invoice: null,
      // not Stripe fields: what to create on completion
      _line_items: params.line_items ?? [],
      _payment_intent_data: params.payment_intent_data ?? {},
      _subscription_data: params.subscription_data ?? {},
      _price: price,
    });
  }

  private async createCharge(pi: StripeObject): Promise<StripeObject> {
    return this.store.put({
      id: newId('ch'),
      object: 'charge',
      created: now(),
      amount: pi.amount,
      amount_refunded: 0,
      currency: pi.currency,
      customer: pi.customer,
      payment_intent: pi.id,
      payment_method: pi.payment_method,
      metadata: pi.metadata,
      paid: true,
      refunded: false,
      status: 'succeeded',
      refunds: { object: 'list', data: [], has_more: false },
    });
  }

  /** Charges `pm` now. Cards decide at once; bank debits go to `processing` and settle later. */
  private async chargePaymentIntent(pi: StripeObject, pm: StripeObject, offSession: boolean): Promise<StripeObject> {
    const behavior = pm.metadata?.test_behavior as TestMethod;
    pi.payment_method = pm.id;
    if (behavior === 'card_declined') {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.', payment_method: pm };
      await this.store.put(pi);
      await this.emit('payment_intent.payment_failed', pi);
      return pi;
    }
    if (behavior === 'card_requires_action' && offSession) {
      pi.status = 'requires_action';
      pi.next_action = { type: 'use_stripe_sdk' };
      pi.last_payment_error = { type: 'card_error', code: 'authentication_required', message: 'This payment requires authentication by the customer.', payment_method: pm };
      await this.store.put(pi);
      await this.emit('payment_intent.requires_action', pi);
      return pi;
    }
    if (pm.type !== 'card') {
      pi.status = 'processing';
      await this.store.put(pi);
      await this.emit('payment_intent.processing', pi);
      this.later(this.opts.settleDelayMs ?? 3000, () => this.settle(pi.id, behavior === 'bank_failure' ? 'fail' : 'succeed'));
      return pi;
    }
    return this.succeed(pi);
  }

  private async succeed(pi: StripeObject): Promise<StripeObject> {
    const charge = await this.createCharge(pi);
    pi.status = 'succeeded';
    pi.latest_charge = charge.id;
    pi.amount_received = pi.amount;
    pi.last_payment_error = null;
    await this.store.put(pi);
    await this.emit('payment_intent.succeeded', pi);
    await this.emit('charge.succeeded', charge);
    return pi;
  }

  /** A bank debit that was `processing` succeeds or fails (checkout sessions get their async events). */
  async settle(paymentIntentId: string, outcome: 'succeed' | 'fail'): Promise<StripeObject> {
    const pi = await this.mustGet(paymentIntentId, 'payment_intent');
    if (pi.status !== 'processing') return pi;
    const session = pi.metadata?._checkout_session ? await this.store.get(pi.metadata._checkout_session) : null;
    if (outcome === 'succeed') {
      await this.succeed(pi);
      if (session) {
        session.payment_status = 'paid';
        await this.store.put(session);
        await this.emit('checkout.session.async_payment_succeeded', session);
      }
    } else {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = { type: 'invalid_request_error', code: 'payment_method_insufficient_funds', message: 'The bank debit failed: insufficient funds.' };
      await this.store.put(pi);
      await this.emit('payment_intent.payment_failed', pi);
      if (session) await this.emit('checkout.session.async_payment_failed', session);
    }
    return pi;
  }

  async createPaymentIntent(params: Record<string, any>): Promise<StripeObject> {
    const amount = Number(params.amount);
    if (!Number.isInteger(amount) || amount < 50) throw new StripeApiError(400, { type: 'invalid_request_error', code: 'amount_too_small', message: 'Amount must be at least $0.50 usd' });
    const pi: StripeObject = {
      id: newId('pi'),
      object: 'payment_intent',
      created: now(),
      amount,
      amount_received: 0,
      currency: params.currency ?? 'usd',
      customer: params.customer ?? null,
      payment_method: params.payment_method ?? null,
      metadata: params.metadata ?? {},
      status: 'requires_payment_method',
      latest_charge: null,
      last_payment_error: null,
      off_session: params.off_session === 'true' || params.off_session === true,
    };
    await this.store.put(pi);
    if (params.confirm === 'true' || params.confirm === true) {
      if (!pi.payment_method) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'A payment method is required to confirm.' });
      const pm = await this.mustGet(pi.payment_method, 'payment_method');
      if (pi.customer && pm.customer !== pi.customer) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'The payment method does not belong to this customer.' });
      const result = await this.chargePaymentIntent(pi, pm, pi.off_session);
      if (result.status === 'requires_payment_method' || (result.status === 'requires_action' && pi.off_session)) {
        // Stripe answers a failed off-session confirmation with a 402 card error carrying the intent.
        throw new StripeApiError(402, { ...result.last_payment_error, payment_intent: result });
      }
      return result;
    }
    return pi;
  }

  /** Refunds part or all of a payment; refunds of one payment take turns, so they never exceed it. */
  async createRefund(params: Record<string, any>, viaDashboard = false): Promise<StripeObject> {
    if (typeof params.payment_intent !== 'string' || !params.payment_intent) throw new StripeApiError(400, { type: 'invalid_request_error', message: 'Missing required param: payment_intent.' });
    return this.store.serialized(`refund:${params.payment_intent}`, () => this.createRefundNow(params, viaDashboard));
  }

  private async createRefundNow(params: Record<string, any>, viaDashboard: boolean): Promise<StripeObject> {
    const pi = await this.mustGet(params.payment_intent, 'payment_intent');
    if (pi.status !== 'succeeded' || !pi.latest_charge) throw new StripeApiError(400, { type: 'invalid_request_error', code: 'charge_not_refundable', message: 'This payment cannot be refunded.' });
    const charge = await this.mustGet(pi.latest_charge, 'charge');
    const remaining = charge.amount - charge.amount_refunded;
    const amount = params.amount === undefined ? remaining : Number(params.amount);
    if (!Number.isInteger(amount) || amount <= 0 || amount > remaining) {
      throw new StripeApiError(400, { type: 'invalid_request_error', code: 'amount_too_large', message: `Refund amount ($${(amount / 100).toFixed(2)}) is greater than unrefunded amount on charge ($${(remaining / 100).toFixed(2)})` });
    }
    // The refunded total moves first, atomically and only within the charge: parallel refunds
    // (here or in another process) can never refund more than was paid.
    const updated = await this.store.addRefunded(charge.id, amount);
    if (!updated) {
      throw new StripeApiError(400, { type: 'invalid_request_error', code: 'charge_already_refunded', message: 'The charge has already been refunded (or the amount is more than what is left).' });
    }
    const refund = await this.store.put({
      id: newId('re'),
      object: 'refund',
      created: now(),
      amount,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: pi.id,
      status: 'succeeded',
      reason: params.reason ?? null,
      metadata: { ...(params.metadata ?? {}), ...(viaDashboard ? { source: 'dashboard' } : {}) },
    });
    const latest = (await this.store.get(charge.id)) ?? updated;
    latest.refunds = { object: 'list', data: [refund, ...(latest.refunds?.data ?? [])], has_more: false };
    await this.store.put(latest);
    Object.assign(charge, latest);
    await this.emit('refund.created', refund);
    await this.emit('charge.refunded', charge);
    return refund;
  }

  private async createSubscription(session: StripeObject, pm: StripeObject): Promise<{ subscription: StripeObject; invoice: StripeObject }> {
    const price = session._price as (PriceInfo & { id: string }) | null;
    const unitAmount = price?.unitAmount ?? Number(session._line_items?.[0]?.price_data?.unit_amount ?? 0);
    const interval = price?.interval ?? session._line_items?.[0]?.price_data?.recurring?.interval ?? 'month';
    const start = now();
    const end = start + (interval === 'year' ? 365 : 30) * 86400;
    const subscription: StripeObject = await this.store.put<StripeObject>({
      id: newId('sub'),
      object: 'subscription',
      created: start,
      customer: session.customer,
      status: 'active',
      cancel_at_period_end: false,
      canceled_at: null,
      default_payment_method: pm.id,
      metadata: { ...(session._subscription_data?.metadata ?? {}) },
      items: {
        object: 'list',
        data: [
          {
            id: newId('si'),
            object: 'subscription_item',
            current_period_start: start,
            current_period_end: end,
            price: { id: price?.id ?? newId('price'), object: 'price', unit_amount: unitAmount, currency: 'usd', recurring: { interval } },
          },
        ],
      },
      latest_invoice: null,
    });
    const invoice = await this.createInvoice(subscription, {
      reason: 'subscription_create',
      lines: [{ description: `1 × ${price?.product ?? 'Pro'} (at $${(unitAmount / 100).toFixed(2)} / ${interval})`, amount: unitAmount, proration: false, start, end }],
      paymentMethod: pm.id,
    });
    subscription.latest_invoice = invoice.id;
    await this.store.put(subscription);
    return { subscription, invoice };
  }

  /** What the checkout page's "Pay" button does. */
  async completeCheckout(sessionId: string, method: TestMethod, opts: { invoiceFirst?: boolean } = {}): Promise<{ session: StripeObject; outcome: 'paid' | 'processing' | 'declined' | 'saved' }> {
    const session = await this.mustGet(sessionId, 'checkout.session');
    if (session.status !== 'open') throw new StripeApiError(400, { type: 'invalid_request_error', message: 'This Checkout Session is no longer open.' });
    if (!session.customer) {
      const customer = await this.createCustomer({ email: session.customer_email, metadata: session.metadata });
      session.customer = customer.id;
    }
    const pm = await this.createPaymentMethod(session.customer, method);

    if (session.mode === 'setup') {
      const seti = await this.store.put({ id: newId('seti'), object: 'setup_intent', created: now(), status: 'succeeded', customer: session.customer, payment_method: pm.id, usage: 'off_session', metadata: session.metadata });
      Object.assign(session, { status: 'complete', setup_intent: seti.id });
      await this.store.put(session);
      await this.emit('checkout.session.completed', session);
      await this.emit('setup_intent.succeeded', seti);
      return { session, outcome: 'saved' };
    }

    if (session.mode === 'subscription') {
      if (method === 'card_declined') return { session, outcome: 'declined' };
      const { subscription, invoice } = await this.createSubscription(session, pm);
      Object.assign(session, { status: 'complete', payment_status: 'paid', subscription: subscription.id, invoice: invoice.id });
      await this.store.put(session);
      if (opts.invoiceFirst) await this.emit('invoice.paid', invoice);
      await this.emit('customer.subscription.created', subscription);
      if (!opts.invoiceFirst) await this.emit('invoice.paid', invoice);
      await this.emit('checkout.session.completed', session);
      return { session, outcome: 'paid' };
    }

    const pid = session._payment_intent_data ?? {};
    let pi: StripeObject = await this.store.put<StripeObject>({
      id: newId('pi'),
      object: 'payment_intent',
      created: now(),
      amount: session.amount_total,
      amount_received: 0,
      currency: session.currency,
      customer: session.customer,
      payment_method: null,
      metadata: { ...(pid.metadata ?? {}), _checkout_session: session.id },
      setup_future_usage: pid.setup_future_usage ?? null,
      status: 'requires_payment_method',
      latest_charge: null,
      last_payment_error: null,
    });
    session.payment_intent = pi.id;
    await this.store.put(session);
    pi = await this.chargePaymentIntent(pi, pm, false);
    if (pi.status === 'requires_payment_method') {
      // Declined: the session stays open; the person may try another method.
      if (!pid.setup_future_usage) await this.detachSilently(pm);
      return { session, outcome: 'declined' };
    }
    session.status = 'complete';
    session.payment_status = pi.status === 'succeeded' ? 'paid' : 'unpaid';
    await this.store.put(session);
    await this.emit('checkout.session.completed', session);
    return { session, outcome: pi.status === 'succeeded' ? 'paid' : 'processing' };
  }

  private async detachSilently(pm: StripeObject): Promise<void> {
    pm.customer = null;
    await this.store.put(pm);
  }

  /**
   * A finalized invoice of a subscription (numbered per customer, with a hosted page and a PDF),
   * paid at once by `paymentMethod` when it has something to pay.
   */
  private async createInvoice(
    sub: StripeObject,
    opts: { reason: string; lines: { description: string; amount: number; proration: boolean; start: number; end: number }[]; paymentMethod: string | null },
  ): Promise<StripeObject> {
    const created = now();
    const customer = await this.store.get(sub.customer);
    const total = opts.lines.reduce((sum, l) => sum + l.amount, 0);
    // A negative total (a downgrade's unused time worth more than the new period) goes to the
    // customer's credit balance, as Stripe does; nothing is charged.
    const amountDue = Math.max(0, total);
    const sequence = Number(customer?._invoice_sequence ?? 0) + 1;
    if (customer) {
      customer._invoice_sequence = sequence;
      if (total < 0) customer.balance = Number(customer.balance ?? 0) + total;
      await this.store.put(customer);
    }
    const id = newId('in');
    const prefix = String(sub.customer).replace(/^cus_test_/, '').slice(0, 8).toUpperCase();
    const base = `${this.opts.checkoutBaseUrl()}/invoices/${id}`;
    return this.store.put({
      id,
      object: 'invoice',
      number: `${prefix}-${String(sequence).padStart(4, '0')}`,
      created,
      customer: sub.customer,
      status: 'paid',
      collection_method: 'charge_automatically',
      subtotal: total,
      total,
      amount_due: amountDue,
      amount_paid: amountDue,
      amount_remaining: 0,
      currency: 'usd',
      billing_reason: opts.reason,
      default_payment_method: opts.paymentMethod,
      parent: { type: 'subscription_details', subscription_details: { subscription: sub.id, metadata: sub.metadata } },
      lines: {
        object: 'list',
        has_more: false,
        data: opts.lines.map((l) => ({
          id: newId('il'),
          object: 'line_item',
          amount: l.amount,
          currency: 'usd',
          description: l.description,
          period: { start: l.start, end: l.end },
          parent: { type: 'subscription_item_details', subscription_item_details: { proration: l.proration, subscription: sub.id } },
        })),
      },
      period_start: Math.min(...opts.lines.map((l) => l.start)),
      period_end: Math.max(...opts.lines.map((l) => l.end)),
      status_transitions: { finalized_at: created, paid_at: created },
      hosted_invoice_url: base,
      invoice_pdf: `${base}/pdf`,
    });
  }

  /** Invoices, newest first, Stripe's list shape (customer/subscription filters, limit, starting_after). */
  async listInvoices(query: Record<string, any>): Promise<StripeObject> {
    const match: Record<string, unknown> = {};
    if (query.customer) match.customer = query.customer;
    let all = (await this.store.find('invoice', match)).sort((a, b) => b.created - a.created || (b.number ?? '').localeCompare(a.number ?? ''));
    if (query.subscription) all = all.filter((i) => i.parent?.subscription_details?.subscription === query.subscription);
    if (query.status) all = all.filter((i) => i.status === query.status);
    const limit = Math.min(100, Math.max(1, Number(query.limit ?? 10)));
    let start = 0;
    if (query.starting_after) {
      const at = all.findIndex((i) => i.id === query.starting_after);
      if (at < 0) throw new StripeApiError(400, { type: 'invalid_request_error', code: 'resource_missing', message: `No such invoice: '${query.starting_after}'` });
      start = at + 1;
    }
    const data = all.slice(start, start + limit);
    return { object: 'list', id: 'list', data, has_more: start + limit < all.length, url: '/v1/invoices' };
  }

  /**
   * Moves the subscription to another price. With a different interval the period restarts now
   * (Stripe resets the billing cycle anchor); the unused part of the old period is credited and
   * the new period charged on one invoice, paid at once (`proration_behavior` other than `none`).
   * `payment_behavior=error_if_incomplete`: a failed payment answers 402 and changes nothing.
   */
  private async changePrice(sub: StripeObject, items: Record<string, any>[], params: Record<string, any>): Promise<StripeObject | null> {
    const item = sub.items.data[0];
    const wanted = items[0]!;
    if (wanted.id && wanted.id !== item.id) throw new StripeApiError(400, { type: 'invalid_request_error', message: `No such subscription item: '${wanted.id}'` });
    const next = this.opts.prices[wanted.price];
    if (!next) throw new StripeApiError(400, { type: 'invalid_request_error', code: 'resource_missing', message: `No such price: '${wanted.price}'` });
    if (wanted.price === item.price.id) return null;
    const behavior = String(params.proration_behavior ?? 'create_prorations');
    if (!['create_prorations', 'always_invoice', 'none'].includes(behavior)) throw new StripeApiError(400, { type: 'invalid_request_error', message: `Invalid proration_behavior: ${behavior}` });
    const t = now();
    const oldStart = item.current_period_start as number;
    const oldEnd = item.current_period_end as number;
    const intervalChanges = next.interval !== item.price.recurring.interval;
    const unused = Math.max(0, Math.min(1, (oldEnd - t) / Math.max(1, oldEnd - oldStart)));
    const credit = Math.round(item.price.unit_amount * unused);
    const newEnd = intervalChanges ? t + (next.interval === 'year' ? 365 : 30) * 86400 : oldEnd;
    const newCharge = intervalChanges ? next.unitAmount : Math.round(next.unitAmount * unused);
    const invoiceNow = behavior === 'always_invoice' || (behavior === 'create_prorations' && intervalChanges);
    let invoice: StripeObject | null = null;
    if (behavior !== 'none' && invoiceNow) {
      const customer = await this.store.get(sub.customer);
      const pmId = sub.default_payment_method ?? customer?.invoice_settings?.default_payment_method ?? null;
      const pm = pmId ? await this.store.get(pmId) : null;
      const amountDue = newCharge - credit;
      if (amountDue > 0 && (!pm || pm.metadata?.test_behavior === 'card_declined')) {
        const error = { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' };
        if (params.payment_behavior === 'error_if_incomplete') throw new StripeApiError(402, error);
      }
      const fmt = (c: number) => `$${(Math.abs(c) / 100).toFixed(2)}`;
      invoice = await this.createInvoice(sub, {
        reason: 'subscription_update',
        lines: [
          { description: `Unused time on ${item.price.recurring.interval === 'year' ? 'yearly' : 'monthly'} Pro (credit of ${fmt(credit)})`, amount: -credit, proration: true, start: t, end: oldEnd },
          { description: `${intervalChanges ? '1 × Pro' : 'Remaining time on Pro'} (at ${fmt(next.unitAmount)} / ${next.interval})`, amount: newCharge, proration: !intervalChanges, start: t, end: newEnd },
        ],
        paymentMethod: pm?.id ?? null,
      });
    }
    item.price = { id: wanted.price, object: 'price', unit_amount: next.unitAmount, currency: 'usd', recurring: { interval: next.interval } };
    if (intervalChanges) {
      item.current_period_start = t;
      item.current_period_end = newEnd;
      sub.billing_cycle_anchor = t;
    }
    if (invoice) sub.latest_invoice = invoice.id;
    return invoice;
  }

  async updateSubscription(id: string, params: Record<string, any>): Promise<StripeObject> {
    const sub = await this.mustGet(id, 'subscription');
    if (sub.status === 'canceled') throw new StripeApiError(400, { type: 'invalid_request_error', message: 'A canceled subscription can only update its cancellation_details and metadata.' });
    const previous: Record<string, unknown> = {};
    const items = Array.isArray(params.items) ? params.items : params.items && typeof params.items === 'object' ? Object.values(params.items) : null;
    const before = JSON.parse(JSON.stringify(sub.items)) as unknown;
    const invoice = items?.length ? await this.changePrice(sub, items as Record<string, any>[], params) : null;
    if (JSON.stringify(sub.items) !== JSON.stringify(before)) previous.items = before;
    if (params.cancel_at_period_end !== undefined) {
      const next = params.cancel_at_period_end === 'true' || params.cancel_at_period_end === true;
      if (next !== sub.cancel_at_period_end) previous.cancel_at_period_end = sub.cancel_at_period_end;
      sub.cancel_at_period_end = next;
      sub.cancel_at = next ? sub.items.data[0].current_period_end : null;
    }
    if (params.metadata) sub.metadata = { ...sub.metadata, ...params.metadata };
    await this.store.put(sub);
    await this.emit('customer.subscription.updated', sub, { previous_attributes: previous });
    if (invoice) {
      await this.emit('invoice.finalized', invoice);
      await this.emit('invoice.paid', invoice);
    }
    return sub;
  }

  /** Ends a subscription now (Stripe does this at period end after cancel_at_period_end). */
  async cancelSubscription(id: string): Promise<StripeObject> {
    const sub = await this.mustGet(id, 'subscription');
    sub.status = 'canceled';
    sub.canceled_at = now();
    sub.ended_at = now();
    await this.store.put(sub);
    await this.emit('customer.subscription.deleted', sub);
    return sub;
  }

  async cancelTimers(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---------------------------------------------------------------- HTTP API

  /** The Stripe-compatible API (the SDK's host/port point here). */
  buildApiServer(): FastifyInstance {
    const app = Fastify({ logger: false });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, qs.parse(body as string, { depth: 10, arrayLimit: 100 }));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
    app.addHook('onRequest', async (req, reply) => {
      if (req.url.startsWith('/_test/')) return;
      const auth = req.headers.authorization ?? '';
      if (!/^Bearer sk_(test|live)_\S+$/.test(auth)) {
        return reply.code(401).send({ error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } });
      }
    });
    app.setErrorHandler((err, _req, reply) => {
      if (err instanceof StripeApiError) return reply.code(err.status).send({ error: err.body });
      return reply.code(500).send({ error: { type: 'api_error', message: String((err as Error).message) } });
    });

    const idem = async (key: string | string[] | undefined, produce: () => Promise<unknown>) => {
      const k = Array.isArray(key) ? key[0] : key;
      const run = async () => {
        try {
          return { status: 200, body: await produce() };
        } catch (err) {
          if (err instanceof StripeApiError) return { status: err.status, body: { error: err.body } };
          throw err;
        }
      };
      return k ? this.store.remember(k, run) : run();
    };
    type Req = { params: Record<string, string>; body: Record<string, any>; query: Record<string, any>; headers: Record<string, string | string[] | undefined> };
    const post = (path: string, fn: (req: Req) => Promise<unknown>) =>
      app.post(path, async (req, reply) => {
        const r = await idem(req.headers['idempotency-key'], () => fn(req as unknown as Req));
        return reply.code(r.status).send(r.body);
      });
    const get = (path: string, fn: (req: Req) => Promise<unknown>) => app.get(path, async (req) => fn(req as unknown as Req));

    post('/v1/customers', (req) => this.createCustomer(req.body ?? {}));
    get('/v1/customers/:id', (req) => this.mustGet(req.params.id!, 'customer'));
    post('/v1/customers/:id', (req) => this.updateCustomer(req.params.id!, req.body ?? {}));
    get('/v1/customers/:id/payment_methods', (req) => this.listPaymentMethods(req.params.id!, req.query.type));
    get('/v1/payment_methods', (req) => this.listPaymentMethods(req.query.customer, req.query.type));
    get('/v1/payment_methods/:id', (req) => this.mustGet(req.params.id!, 'payment_method'));
    post('/v1/payment_methods/:id/detach', (req) => this.detachPaymentMethod(req.params.id!));
    post('/v1/checkout/sessions', (req) => this.createCheckoutSession(req.body ?? {}));
    get('/v1/checkout/sessions/:id', (req) => this.mustGet(req.params.id!, 'checkout.session'));
    post('/v1/payment_intents', (req) => this.createPaymentIntent(req.body ?? {}));
    get('/v1/payment_intents/:id', (req) => this.mustGet(req.params.id!, 'payment_intent'));
    get('/v1/setup_intents/:id', (req) => this.mustGet(req.params.id!, 'setup_intent'));
    get('/v1/charges/:id', (req) => this.mustGet(req.params.id!, 'charge'));
    post('/v1/refunds', (req) => this.createRefund(req.body ?? {}));
    get('/v1/subscriptions/:id', (req) => this.mustGet(req.params.id!, 'subscription'));
    post('/v1/subscriptions/:id', (req) => this.updateSubscription(req.params.id!, req.body ?? {}));
    app.delete('/v1/subscriptions/:id', async (req) => this.cancelSubscription((req.params as { id: string }).id));
    get('/v1/invoices', (req) => this.listInvoices(req.query ?? {}));
    get('/v1/invoices/:id', (req) => this.mustGet(req.params.id!, 'invoice'));

    // Controls for tests and the dev console (not part of Stripe's API).
    post('/_test/checkout/:id/complete', async (req) => this.completeCheckout(req.params.id!, (req.body?.method ?? 'card') as TestMethod, { invoiceFirst: req.body?.invoiceFirst === 'true' }));
    post('/_test/payment_intents/:id/settle', (req) => this.settle(req.params.id!, req.body?.outcome === 'fail' ? 'fail' : 'succeed'));
    post('/_test/refunds', (req) => this.createRefund(req.body ?? {}, true));
    post('/_test/subscriptions/:id/end', (req) => this.cancelSubscription(req.params.id!));
    post('/_test/events/:id/resend', async (req) => ({ delivered: await this.deliver(await this.mustGet(req.params.id!, 'event'), 1) }));
    return app;
  }

  async start(): Promise<number> {
    this.server = this.buildApiServer();
    await this.server.listen({ port: 0, host: '127.0.0.1' });
    const address = this.server.server.address();
    this.apiPort = typeof address === 'object' && address ? address.port : 0;
    return this.apiPort;
  }

  async stop(): Promise<void> {
    await this.cancelTimers();
    await this.server?.close();
    await this.drain().catch(() => {});
  }
}
