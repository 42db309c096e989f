/**
 * Auto top-up: when the balance falls below the threshold, one off-session PaymentIntent for the
 * default payment method. "One in flight per organization" is a partial unique index on pending
 * attempts, so it holds across instances. Failures back off 1 h doubling to 24 h; after 7 days of
 * failures auto top-up turns itself off and the owners are told why.
 */
import { failureHandler } from '../../observability/failures.js';
import type Stripe from 'stripe';
import { randomUUID } from 'node:crypto';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { badRequest, precondition } from '../../errors.js';
import { centsToNanos, loadBillingState, nanosToCents } from './account.js';
import { postLedgerEntry, type BalanceObserver } from './ledger.js';
import { ownerEmails } from './notify.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';
import type { AutoTopUpAttempt, LedgerEntry } from './entities.js';

export const AUTO_TOP_UP_GIVE_UP_MS = 7 * 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

/** 1 h, 2 h, 4 h ... capped at 24 h, for the n-th consecutive failure (n >= 1). */
export function retryDelayMs(consecutiveFailures: number): number {
  return Math.min(HOUR_MS * 2 ** Math.max(0, consecutiveFailures - 1), 24 * HOUR_MS);
}

export async function updateAutoTopUp(work: Work, orgId: string, input: { enabled: boolean; thresholdCents: number; amountCents: number }) {
  const { em } = work;
  const state = await loadBillingState(em, orgId, { lock: true });
  if (input.enabled && !state.defaultPaymentMethodId) {
    throw precondition('add a payment method first: auto top-up charges your default payment method');
  }
  // It runs when credits fall below the threshold (down to $0): only an amount above the threshold
  // brings the balance back over it; a smaller one would charge again and again.
  if (input.enabled && input.amountCents <= input.thresholdCents) {
    const amount = formatDollars(nanosToDecimal(centsToNanos(input.amountCents)));
    const threshold = formatDollars(nanosToDecimal(centsToNanos(input.thresholdCents)));
    throw badRequest(`an auto top-up of ${amount} cannot lift the balance above its ${threshold} threshold (it runs when credits fall below ${threshold}); choose an amount above ${threshold} or a lower threshold`);
  }
  await em.execute(
    `update organization set auto_top_up_enabled = ?, auto_top_up_threshold_nanos = ?::bigint, auto_top_up_amount_nanos = ?::bigint,
       auto_top_up_disabled_reason = case when ? then null else auto_top_up_disabled_reason end where id = ?`,
    [input.enabled, centsToNanos(input.thresholdCents).toString(), centsToNanos(input.amountCents).toString(), input.enabled, orgId],
  );
  const before = { enabled: state.autoTopUp.enabled, threshold: nanosToDecimal(state.autoTopUp.thresholdNanos), amount: nanosToDecimal(state.autoTopUp.amountNanos) };
  const after = { enabled: input.enabled, threshold: nanosToDecimal(centsToNanos(input.thresholdCents)), amount: nanosToDecimal(centsToNanos(input.amountCents)) };
  work.audit(orgId, 'billing.auto_top_up_updated', { type: 'organization', id: orgId }, before, after);
  work.emit(orgId, { type: 'billing.updated', reason: 'auto_top_up' });
  // Turning it on while already below the threshold tops up now.
  if (input.enabled) work.afterCommit(() => void triggerAutoTopUp(work.deps as Services, orgId).catch(failureHandler(work.deps.log, 'auto top-up trigger', { orgId })));
  return after;
}

/** The balance observer for auto top-up: a balance that drops below an enabled threshold starts a top-up right after commit. */
export const autoTopUpObserver: BalanceObserver = async (work, orgId, change) => {
  if (change.deltaNanos >= 0n || !change.topUpDue) return;
  if ('billing' in work.deps) work.afterCommit(() => void triggerAutoTopUp(work.deps as Services, orgId).catch(failureHandler(work.deps.log, 'auto top-up trigger', { orgId })));
};

type Claim = { attemptId: string; amountCents: number; customer: string; paymentMethod: string } | { skipped: string };

/** Claims the single in-flight slot, if a top-up is due. */
async function claimAttempt(services: Services, orgId: string): Promise<Claim> {
  return runCommand(services, null, async (work) => {
    const { em } = work;
    // The row lock orders this claim after any credit in flight, so a top-up that just landed is seen.
    const state = await loadBillingState(em, orgId, { lock: true });
    if (!state.autoTopUp.enabled) return { skipped: 'disabled' };
    if (state.creditsNanos >= state.autoTopUp.thresholdNanos) return { skipped: 'above threshold' };
    if (!state.defaultPaymentMethodId || !state.stripeCustomerId) return { skipped: 'no payment method' };
    const waiting = await em.execute<RowOf<typeof AutoTopUpAttempt, 'id'>[]>(
      `select id from auto_top_up_attempt where org_id = ? and status in ('failed', 'requires_action') and next_retry_at > now()
        and created_at = (select max(created_at) from auto_top_up_attempt where org_id = ?)`,
      [orgId, orgId],
    );
    if (waiting.length > 0) return { skipped: 'backing off' };
    const attemptId = randomUUID();
    const inserted = await em.execute<RowOf<typeof AutoTopUpAttempt, 'id'>[]>(
      `insert into auto_top_up_attempt (id, org_id, status, amount_nanos, created_at, updated_at)
       values (?, ?, 'pending', ?::bigint, now(), now()) on conflict do nothing returning id`,
      [attemptId, orgId, state.autoTopUp.amountNanos.toString()],
    );
    if (inserted.length === 0) return { skipped: 'in flight' };
    return { attemptId, amountCents: nanosToCents(state.autoTopUp.amountNanos), customer: state.stripeCustomerId, paymentMethod: state.defaultPaymentMethodId };
  });
}

/** Starts a top-up if one is due. Safe to call from anywhere, any number of times, on any instance. */
export async function triggerAutoTopUp(services: Services, orgId: string): Promise<string> {
  const claim = await claimAttempt(services, orgId);
  if ('skipped' in claim) return claim.skipped;
  return chargeAttempt(services, orgId, claim);
}

async function chargeAttempt(services: Services, orgId: string, claim: { attemptId: string; amountCents: number; customer: string; paymentMethod: string }): Promise<string> {
  let pi: Stripe.PaymentIntent;
  try {
    pi = await services.billing.stripe.paymentIntents.create(
      {
        amount: claim.amountCents,
        currency: 'usd',
        customer: claim.customer,
        payment_method: claim.paymentMethod,
        off_session: true,
        confirm: true,
        description: 'LLM Gateway auto top-up',
        metadata: { orgId, kind: 'auto_topup', attemptId: claim.attemptId },
      },
      { idempotencyKey: `auto-topup-${claim.attemptId}` },
    );
  } catch (err) {
    const e = err as { type?: string; code?: string; message?: string; raw?: { payment_intent?: Stripe.PaymentIntent } };
    const needsCustomer = e.code === 'authentication_required';
    if (e.type === 'StripeCardError' || e.raw?.payment_intent) {
      await runCommand(services, null, (work) =>
        recordAutoTopUpOutcome(work, services, orgId, claim.attemptId, {
          status: needsCustomer ? 'requires_action' : 'failed',
          paymentIntentId: e.raw?.payment_intent?.id ?? null,
          reason: e.message ?? 'the payment was declined',
        }),
      );
      return needsCustomer ? 'requires_action' : 'failed';
    }
    // Stripe unreachable or an API error: count it as a failure so the backoff applies.
    await runCommand(services, null, (work) =>
      recordAutoTopUpOutcome(work, services, orgId, claim.attemptId, { status: 'failed', paymentIntentId: null, reason: `the payment could not be started: ${e.message ?? 'unknown error'}` }),
    );
    return 'failed';
  }
  await services.orm.em.fork().execute('update auto_top_up_attempt set payment_intent_id = ?, updated_at = now() where id = ?', [pi.id, claim.attemptId]);
  if (pi.status === 'succeeded') {
    // Credit at once from Stripe's answer; the payment_intent.succeeded webhook finds it done. The
    // organization row lock orders this against that webhook, so whichever comes second sees the other.
    await runCommand(services, null, async (work) => {
      await work.em.execute('select id from organization where id = ? for update', [orgId]);
      const done = await work.em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(
        `select id from credit_ledger where payment_intent_id = ? and type = 'auto_topup' and status = 'completed'`,
        [pi.id],
      );
      if (done.length === 0) {
        const amount = centsToNanos(pi.amount_received || pi.amount);
        await postLedgerEntry(work, orgId, { type: 'auto_topup', amountNanos: amount, description: `Auto top-up: ${formatDollars(nanosToDecimal(amount))}`, paymentIntentId: pi.id });
      }
      await recordAutoTopUpOutcome(work, services, orgId, claim.attemptId, { status: 'succeeded', paymentIntentId: pi.id });
    }).catch((err) => {
      // The payment succeeded at Stripe; its webhook credits it if this could not.
      services.log.error({ err, orgId, paymentIntentId: pi.id }, 'auto top-up: crediting from the payment answer failed; the webhook will credit it');
    });
    return 'succeeded';
  }
  return pi.status; // processing (bank debit): the webhook settles it
}

/** Records how an attempt ended (idempotent: only a pending attempt changes). */
export async function recordAutoTopUpOutcome(
  work: Work,
  services: Services,
  orgId: string,
  attemptId: string | undefined,
  outcome: { status: 'succeeded' | 'failed' | 'requires_action'; paymentIntentId: string | null; reason?: string },
): Promise<void> {
  if (!attemptId) return;
  const { em } = work;
  const updated = await em.execute<RowOf<typeof AutoTopUpAttempt, 'id'>[]>(
    `update auto_top_up_attempt set status = ?, payment_intent_id = coalesce(?, payment_intent_id), failure_reason = ?, updated_at = now()
      where id = ? and org_id = ? and status = 'pending' returning id`,
    [outcome.status, outcome.paymentIntentId, outcome.reason ?? null, attemptId, orgId],
  );
  if (updated.length === 0 || outcome.status === 'succeeded') {
    if (updated.length > 0) work.emit(orgId, { type: 'billing.updated', reason: 'auto_top_up' });
    return;
  }
  // Consecutive failures since the last success decide the backoff and when to give up.
  const history = await em.execute<RowOf<typeof AutoTopUpAttempt, 'status' | 'created_at'>[]>(
    `select status, created_at from auto_top_up_attempt where org_id = ? and status <> 'pending' order by created_at desc limit 200`,
    [orgId],
  );
  const streak: Date[] = [];
  for (const h of history) {
    if (h.status === 'succeeded') break;
    streak.push(new Date(h.created_at));
  }
  const firstFailure = streak.at(-1) ?? new Date();
  const emails = await ownerEmails(em, orgId);
  const reason = outcome.reason ?? 'the payment failed';
  if (Date.now() - firstFailure.getTime() >= AUTO_TOP_UP_GIVE_UP_MS) {
    const why = `Auto top-up was turned off after 7 days of failed payments (last error: ${reason}). Update the payment method and turn it on again.`;
    await em.execute('update organization set auto_top_up_enabled = false, auto_top_up_disabled_reason = ? where id = ?', [why.slice(0, 500), orgId]);
    for (const to of emails) work.email(to, 'Auto top-up was turned off', why);
    work.audit(orgId, 'billing.auto_top_up_disabled', { type: 'organization', id: orgId }, { enabled: true }, { enabled: false, reason: why });
    work.emit(orgId, { type: 'auto_top_up.failed', reason: why, disabled: true });
    return;
  }
  const needsCustomer = outcome.status === 'requires_action';
  const delay = needsCustomer ? 24 * HOUR_MS : retryDelayMs(streak.length);
  await em.execute('update auto_top_up_attempt set next_retry_at = ? where id = ?', [new Date(Date.now() + delay), attemptId]);
  if (streak.length === 1 || needsCustomer) {
    const text = needsCustomer
      ? `Your bank asks you to confirm the auto top-up payment. Open the Billing page and buy credits to confirm it on-session (${reason}).`
      : `An auto top-up payment failed: ${reason}. We will retry with increasing delays; check the payment method on the Billing page.`;
    for (const to of emails) work.email(to, needsCustomer ? 'Confirm your auto top-up payment' : 'Auto top-up payment failed', text);
  }
  work.emit(orgId, { type: 'auto_top_up.failed', reason: needsCustomer ? `Your bank needs you to confirm this payment: ${reason}` : reason, disabled: false });
}

/** The latest attempt, for the billing page. */
export async function latestAttempt(work: Pick<Work, 'em'>, orgId: string) {
  const rows = await work.em.execute<RowOf<typeof AutoTopUpAttempt, 'status' | 'failure_reason' | 'next_retry_at' | 'created_at' | 'amount_nanos'>[]>(
    'select status, failure_reason, next_retry_at, created_at, amount_nanos from auto_top_up_attempt where org_id = ? order by created_at desc limit 1',
    [orgId],
  );
  const r = rows[0];
  return r ? { status: r.status, failureReason: r.failure_reason, nextRetryAt: r.next_retry_at, at: r.created_at, amount: nanosToDecimal(BigInt(r.amount_nanos)) } : null;
}

/** The safety net run by a job every minute: due organizations, and attempts stuck before Stripe answered. */
export async function sweepAutoTopUps(services: Services): Promise<number> {
  const em = services.orm.em.fork();
  const due = await em.execute<RowOf<typeof Organization, 'id'>[]>(
    `select id from organization where auto_top_up_enabled and credits_nanos < auto_top_up_threshold_nanos and default_payment_method_id is not null`,
  );
  let started = 0;
  for (const { id } of due) if ((await triggerAutoTopUp(services, id)) === 'succeeded') started++;
  const stuck = await em.execute<RowOf<typeof AutoTopUpAttempt, 'id' | 'org_id' | 'amount_nanos'>[]>(
    `select id, org_id, amount_nanos from auto_top_up_attempt where status = 'pending' and payment_intent_id is null and updated_at < now() - interval '10 minutes'`,
  );
  for (const s of stuck) {
    const state = await loadBillingState(em, s.org_id);
    if (!state.stripeCustomerId || !state.defaultPaymentMethodId) continue;
    // Same idempotency key: Stripe answers with the intent it already made, or makes it now.
    await chargeAttempt(services, s.org_id, { attemptId: s.id, amountCents: nanosToCents(BigInt(s.amount_nanos)), customer: state.stripeCustomerId, paymentMethod: state.defaultPaymentMethodId });
  }
  return started;
}
