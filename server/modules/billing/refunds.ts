/**
 * Refunds return credits. Two kinds:
 * - credit back a usage charge (support only, `npm run admin -- billing:credit-back`, with a reason):
 *   the usage amount returns to the balance; an owner's `billing.refund` on usage is FORBIDDEN;
 * - refund a purchase (owner): within 14 days and while at most 10% of its credits are spent (usage in
 *   flight included: see refundPurchase); the unspent part is refunded through Stripe and the same
 *   credits leave the balance.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { badRequest, conflict, forbidden, notFound, precondition } from '../../errors.js';
import { centsToNanos, nanosToCents } from './account.js';
import { postLedgerEntry } from './ledger.js';
import type { RowOf } from '../../db/rows.js';
import type { LedgerEntry } from './entities.js';
import type { Organization } from '../organizations/entities.js';

export const REFUND_WINDOW_DAYS = 14;
export const REFUND_MAX_SPENT_PERCENT = 10n;

type EntryRow = RowOf<typeof LedgerEntry, 'id' | 'type' | 'status' | 'amount_nanos' | 'payment_intent_id' | 'created_at'>;

async function loadEntry(em: EntityManager, orgId: string, id: string): Promise<EntryRow> {
  const rows = await em.execute<EntryRow[]>('select id, type, status, amount_nanos, payment_intent_id, created_at from credit_ledger where id = ? and org_id = ?', [id, orgId]);
  if (!rows[0]) throw notFound('transaction');
  return rows[0];
}

export async function creditBackUsage(work: Work, orgId: string, transactionId: string, reason: string) {
  const entry = await loadEntry(work.em, orgId, transactionId);
  if (entry.type !== 'usage' || entry.status !== 'completed') throw badRequest('only usage charges can be credited back');
  const already = await work.em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(`select id from credit_ledger where related_entry_id = ? and type = 'usage_credit'`, [entry.id]);
  if (already.length > 0) throw conflict('this usage charge was already credited back');
  const amount = -BigInt(entry.amount_nanos);
  const posted = await postLedgerEntry(work, orgId, {
    type: 'usage_credit',
    amountNanos: amount,
    description: `Credit back of usage #${entry.id}: ${reason}`,
    relatedEntryId: entry.id,
  });
  work.audit(orgId, 'billing.usage_credited_back', { type: 'transaction', id: entry.id }, null, { amount: nanosToDecimal(amount), reason });
  return { transactionId: posted.id, amount: nanosToDecimal(amount), credits: nanosToDecimal(posted.balanceAfterNanos) };
}

/** Net usage (usage minus credit-backs) posted after `entryId`. */
async function spentSince(em: EntityManager, orgId: string, entryId: string): Promise<bigint> {
  const rows = await em.execute<{ spent: string | null }[]>(
    `select -coalesce(sum(amount_nanos), 0) as spent from credit_ledger
      where org_id = ? and id > ? and status = 'completed' and type in ('usage', 'usage_credit')`,
    [orgId, entryId],
  );
  const spent = BigInt(rows[0]?.spent ?? 0);
  return spent > 0n ? spent : 0n;
}

/**
 * How long a refund waits, after it has taken the credits out of the balance, for usage already in
 * flight to be recorded. The gateway's meter commits a call's usage within ~200 ms of its response (GATEWAY_BATCH_WINDOW_MS)
 * (longer while a batch is retried); a refund settles once no usage has been posted for the
 * organization during this quiet period (or after REFUND_SETTLE_MAX_MS).
 */
export const REFUND_SETTLE_QUIET_MS = 400;
export const REFUND_SETTLE_MAX_MS = 10_000;

/** The owner's refund action: purchases only. Crediting back usage is a support action (`npm run admin -- billing:credit-back`). */
export async function refundTransaction(services: Services, orgId: string, actorId: string, transactionId: string, reason: string) {
  const rows = await services.orm.em.fork().execute<RowOf<typeof LedgerEntry, 'type'>[]>('select type from credit_ledger where id = ? and org_id = ?', [transactionId, orgId]);
  const type = rows[0]?.type;
  if (!type) throw notFound('transaction');
  if (type === 'usage') {
    throw forbidden('usage charges are credited back by support, not from the dashboard; contact support with the transaction id and what went wrong');
  }
  if (type === 'purchase' || type === 'auto_topup') return refundPurchase(services, orgId, actorId, transactionId, reason);
  throw badRequest('only credit purchases can be refunded');
}

/**
 * A refund entry (held or recorded) of a purchase (`?` = the purchase's id, then its payment
 * intent) that was not given back by a later release entry pointing at it.
 */
export const OPEN_REFUND_SQL = `h.type = 'refund' and h.status = 'completed' and h.amount_nanos < 0
  and (h.related_entry_id = ? or h.payment_intent_id = ?)
  and h.amount_nanos + coalesce((select sum(r.amount_nanos) from credit_ledger r where r.related_entry_id = h.id and r.type = 'refund'), 0) < 0`;

interface PurchaseCheck {
  entry: EntryRow;
  purchased: bigint;
  spent: bigint;
}

/** The refund rules on what is committed now (run under the organization's row lock). */
async function checkRefundable(em: Work['em'], orgId: string, transactionId: string): Promise<PurchaseCheck> {
  const entry = await loadEntry(em, orgId, transactionId);
  if (!['purchase', 'auto_topup'].includes(entry.type) || entry.status !== 'completed' || !entry.payment_intent_id) {
    throw badRequest('only credit purchases can be refunded');
  }
  const ageMs = Date.now() - new Date(entry.created_at).getTime();
  if (ageMs > REFUND_WINDOW_DAYS * 86400_000) throw precondition(`purchases can be refunded within ${REFUND_WINDOW_DAYS} days; this one is older`);
  const purchased = BigInt(entry.amount_nanos);
  const refunded = await em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(`select h.id from credit_ledger h where ${OPEN_REFUND_SQL} limit 1`, [entry.id, entry.payment_intent_id]);
  if (refunded.length > 0) throw conflict('this purchase was already refunded');
  const spent = await spentSince(em as EntityManager, orgId, entry.id);
  tooMuchSpent(spent, purchased);
  return { entry, purchased, spent };
}

function tooMuchSpent(spent: bigint, purchased: bigint) {
  if (spent * 100n > purchased * REFUND_MAX_SPENT_PERCENT) {
    throw precondition(`more than ${REFUND_MAX_SPENT_PERCENT}% of this purchase's credits are spent (${formatDollars(nanosToDecimal(spent))} of ${formatDollars(nanosToDecimal(purchased))}), so it can no longer be refunded`);
  }
}

async function lastUsageId(services: Services, orgId: string): Promise<string> {
  const rows = await services.orm.em.fork().execute<{ id: string | null }[]>(`select max(id) as id from credit_ledger where org_id = ? and type = 'usage'`, [orgId]);
  return String(rows[0]?.id ?? '0');
}

/**
 * Waits until no usage has been posted for the organization for REFUND_SETTLE_QUIET_MS, or twice
 * the meter's batch window when that is longer (a call answered just before the hold commits within
 * one window plus its commit).
 */
async function usageSettled(services: Services, orgId: string): Promise<void> {
  const quietMs = Math.max(REFUND_SETTLE_QUIET_MS, 2 * services.config.gateway.batchWindowMs);
  const deadline = Date.now() + REFUND_SETTLE_MAX_MS;
  let last = await lastUsageId(services, orgId);
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await lastUsageId(services, orgId);
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) return;
  }
}

/**
 * A purchase refund, in three steps so that usage in flight is counted and Stripe is never called
 * inside a transaction:
 * 1. hold: under the organization's row lock, the rules are checked on committed usage and the
 *    unspent part leaves the balance at once (a `refund` entry without a Stripe refund id yet), so
 *    no new call can spend it;
 * 2. settle: once usage already in flight has been recorded (the meter commits within milliseconds
 *    of a response), the rules are checked again counting it. Too much spent: the hold is released
 *    and the refund refused. Some spent: the hold shrinks to what is still unspent. The balance
 *    therefore never goes below zero because of a refund;
 * 3. Stripe refunds exactly the held amount (idempotency key per purchase), then the hold records
 *    the refund id (or the charge.refunded webhook does, whichever comes first).
 */
export async function refundPurchase(services: Services, orgId: string, actorId: string, transactionId: string, reason: string) {
  const hold = await runCommand(services, actorId, async (work) => {
    const locked = await work.em.execute<RowOf<typeof Organization, 'credits_nanos'>[]>('select credits_nanos from organization where id = ? for update', [orgId]);
    if (!locked[0]) throw notFound('organization');
    const { entry, purchased, spent } = await checkRefundable(work.em, orgId, transactionId);
    const amount = centsToNanos(nanosToCents(purchased - spent));
    if (amount <= 0n) throw precondition('nothing left to refund');
    const balance = BigInt(locked[0].credits_nanos);
    if (balance < amount) {
      throw precondition(`the balance (${formatDollars(nanosToDecimal(balance))}) is below the ${formatDollars(nanosToDecimal(amount))} to refund: those credits are already spent`);
    }
    const posted = await postLedgerEntry(work, orgId, {
      type: 'refund',
      amountNanos: -amount,
      description: `Refund of purchase #${entry.id}: ${reason}`,
      paymentIntentId: entry.payment_intent_id,
      relatedEntryId: entry.id,
    });
    return { entry, purchased, amount, holdId: posted.id };
  });

  await usageSettled(services, orgId);

  const settled = await runCommand(services, actorId, async (work) => {
    await work.em.execute('select id from organization where id = ? for update', [orgId]);
    const spent = await spentSince(work.em as EntityManager, orgId, hold.entry.id);
    const keep = spent * 100n > hold.purchased * REFUND_MAX_SPENT_PERCENT ? 0n : centsToNanos(nanosToCents(hold.purchased - spent));
    const release = hold.amount - (keep < hold.amount ? keep : hold.amount);
    if (release > 0n) {
      await postLedgerEntry(work, orgId, {
        type: 'refund',
        amountNanos: release,
        description:
          keep === 0n
            ? `Refund of purchase #${hold.entry.id} refused: usage recorded meanwhile spent more than ${REFUND_MAX_SPENT_PERCENT}%; credits returned`
            : `Refund of purchase #${hold.entry.id}: ${formatDollars(nanosToDecimal(release))} of usage recorded meanwhile stays charged`,
        relatedEntryId: hold.holdId,
      });
    }
    if (keep === 0n) {
      work.audit(orgId, 'billing.refund_refused', { type: 'transaction', id: hold.entry.id }, null, { reason, spent: nanosToDecimal(spent) });
      return { refused: true as const, spent };
    }
    return { refused: false as const, amount: keep };
  });
  if (settled.refused) tooMuchSpent(settled.spent, hold.purchased);
  const amount = (settled as { amount: bigint }).amount;
  const refundCents = nanosToCents(amount);
  let refund: { id: string };
  try {
    refund = await services.billing.stripe.refunds.create(
      { payment_intent: hold.entry.payment_intent_id!, amount: refundCents, reason: 'requested_by_customer', metadata: { orgId, ledgerEntryId: hold.entry.id, note: reason.slice(0, 400) } },
      { idempotencyKey: `refund-${hold.entry.id}` },
    );
  } catch (err) {
    services.log.error({ err, orgId, purchase: hold.entry.id }, 'Stripe refused the refund; its credits return to the balance');
    await runCommand(services, actorId, async (work) => {
      await postLedgerEntry(work, orgId, {
        type: 'refund',
        amountNanos: amount,
        description: `Refund of purchase #${hold.entry.id} failed at the payment provider; credits returned`,
        relatedEntryId: hold.holdId,
      });
      work.audit(orgId, 'billing.refund_failed', { type: 'transaction', id: hold.entry.id }, null, { reason });
    });
    throw precondition('the payment provider could not refund this purchase; its credits are back in the balance. Try again later');
  }
  return runCommand(services, actorId, async (work) => {
    const posted = await recordRefund(work, orgId, {
      refundId: refund.id,
      amountNanos: amount,
      paymentIntentId: hold.entry.payment_intent_id!,
      purchaseEntryId: hold.entry.id,
      reason,
    });
    work.audit(orgId, 'billing.purchase_refunded', { type: 'transaction', id: hold.entry.id }, null, { amount: nanosToDecimal(amount), reason, refundId: refund.id });
    return { refundId: refund.id, amount: nanosToDecimal(amount), credits: nanosToDecimal(posted.balanceAfterNanos) };
  });
}

export interface RefundRecord {
  refundId: string;
  amountNanos: bigint;
  paymentIntentId: string;
  /** The purchase refunded from the dashboard (from the refund's metadata when a webhook records it). */
  purchaseEntryId?: string | null;
  reason?: string | null;
  stripeEventId?: string;
}

/**
 * Puts a Stripe refund on the ledger once. Both the dashboard's refund action and the
 * charge.refunded webhook call this; the organization row lock makes the check and the insert one
 * step, so neither trips over the other's unique refund id. A refund made from the dashboard reads
 * the same whichever of the two records it.
 */
export async function recordRefund(work: Work, orgId: string, r: RefundRecord): Promise<{ id: string; balanceAfterNanos: bigint; created: boolean }> {
  const locked = await work.em.execute<RowOf<typeof Organization, 'credits_nanos'>[]>('select credits_nanos from organization where id = ? for update', [orgId]);
  if (!locked[0]) throw notFound('organization');
  const seen = await work.em.execute<RowOf<typeof LedgerEntry, 'id' | 'balance_after_nanos'>[]>('select id, balance_after_nanos from credit_ledger where refund_id = ?', [r.refundId]);
  if (seen[0]) return { id: String(seen[0].id), balanceAfterNanos: BigInt(locked[0].credits_nanos), created: false };
  if (r.purchaseEntryId) {
    // A refund from the dashboard already took its credits out of the balance (its hold): it only
    // gets the Stripe refund's id.
    const holds = await work.em.execute<RowOf<typeof LedgerEntry, 'id'>[]>(`select h.id from credit_ledger h where h.refund_id is null and ${OPEN_REFUND_SQL} order by h.id desc limit 1`, [
      r.purchaseEntryId,
      r.paymentIntentId,
    ]);
    if (holds[0]) {
      await work.em.execute('update credit_ledger set refund_id = ?, stripe_event_id = coalesce(stripe_event_id, ?) where id = ?', [r.refundId, r.stripeEventId ?? null, holds[0].id]);
      work.emit(orgId, { type: 'billing.updated', reason: 'refund' });
      return { id: String(holds[0].id), balanceAfterNanos: BigInt(locked[0].credits_nanos), created: false };
    }
  }
  const description = r.purchaseEntryId
    ? `Refund of purchase #${r.purchaseEntryId}${r.reason ? `: ${r.reason}` : ''}`
    : `Refund of ${formatDollars(nanosToDecimal(r.amountNanos))} (made in Stripe)`;
  const posted = await postLedgerEntry(work, orgId, {
    type: 'refund',
    amountNanos: -r.amountNanos,
    description,
    paymentIntentId: r.paymentIntentId,
    refundId: r.refundId,
    relatedEntryId: r.purchaseEntryId ?? undefined,
    stripeEventId: r.stripeEventId,
  });
  return { ...posted, created: true };
}
