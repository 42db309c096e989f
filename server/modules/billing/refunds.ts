/**
 * Refunds return credits. Two kinds:
 * - credit back a usage charge (owner or operator, with a reason): the usage amount returns to the balance;
 * - refund a purchase (owner): within 14 days and while at most 10% of its credits are spent; the
 *   unspent part is refunded through Stripe and the same credits leave the balance.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../trpc/context.js';
import { badRequest, conflict, notFound, precondition } from '../../trpc/errors.js';
import { centsToNanos, nanosToCents } from './account.js';
import { postLedgerEntry } from './ledger.js';

export const REFUND_WINDOW_DAYS = 14;
export const REFUND_MAX_SPENT_PERCENT = 10n;

interface EntryRow {
  id: string;
  type: string;
  status: string;
  amount_nanos: string;
  payment_intent_id: string | null;
  created_at: Date;
}

async function loadEntry(em: EntityManager, orgId: string, id: string): Promise<EntryRow> {
  const rows = await em.execute<EntryRow[]>('select id, type, status, amount_nanos, payment_intent_id, created_at from credit_ledger where id = ? and org_id = ?', [id, orgId]);
  if (!rows[0]) throw notFound('transaction');
  return rows[0];
}

export async function creditBackUsage(work: Work, orgId: string, transactionId: string, reason: string) {
  const entry = await loadEntry(work.em, orgId, transactionId);
  if (entry.type !== 'usage' || entry.status !== 'completed') throw badRequest('only usage charges can be credited back');
  const already = await work.em.execute<{ id: string }[]>(`select id from credit_ledger where related_entry_id = ? and type = 'usage_credit'`, [entry.id]);
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

export async function refundPurchase(services: Services, orgId: string, actorId: string, transactionId: string, reason: string) {
  const em = services.orm.em.fork();
  const entry = await loadEntry(em, orgId, transactionId);
  if (!['purchase', 'auto_topup'].includes(entry.type) || entry.status !== 'completed' || !entry.payment_intent_id) {
    throw badRequest('only credit purchases can be refunded');
  }
  const ageMs = Date.now() - new Date(entry.created_at).getTime();
  if (ageMs > REFUND_WINDOW_DAYS * 86400_000) throw precondition(`purchases can be refunded within ${REFUND_WINDOW_DAYS} days; this one is older`);
  const purchased = BigInt(entry.amount_nanos);
  const refundedRows = await em.execute<{ total: string | null }[]>(
    `select -coalesce(sum(amount_nanos), 0) as total from credit_ledger where payment_intent_id = ? and type = 'refund' and status = 'completed'`,
    [entry.payment_intent_id],
  );
  if (BigInt(refundedRows[0]?.total ?? 0) > 0n) throw conflict('this purchase was already refunded');
  const spent = await spentSince(em, orgId, entry.id);
  if (spent * 100n > purchased * REFUND_MAX_SPENT_PERCENT) {
    throw precondition(`more than ${REFUND_MAX_SPENT_PERCENT}% of this purchase's credits are spent (${formatDollars(nanosToDecimal(spent))} of ${formatDollars(nanosToDecimal(purchased))}), so it can no longer be refunded`);
  }
  // Refund what is unspent, in whole cents.
  const refundCents = nanosToCents(purchased - spent);
  if (refundCents <= 0) throw precondition('nothing left to refund');
  const refund = await services.billing.stripe.refunds.create(
    { payment_intent: entry.payment_intent_id, amount: refundCents, reason: 'requested_by_customer', metadata: { orgId, ledgerEntryId: entry.id, note: reason.slice(0, 400) } },
    { idempotencyKey: `refund-${entry.id}` },
  );
  const amount = centsToNanos(refundCents);
  return runCommand(services, actorId, async (work) => {
    // Stripe's charge.refunded webhook may record this refund at the same moment; recordRefund
    // serialises the two on the organization row, and whichever comes second finds it recorded.
    const posted = await recordRefund(work, orgId, {
      refundId: refund.id,
      amountNanos: amount,
      paymentIntentId: entry.payment_intent_id!,
      purchaseEntryId: entry.id,
      reason,
    });
    work.audit(orgId, 'billing.purchase_refunded', { type: 'transaction', id: entry.id }, null, { amount: nanosToDecimal(amount), reason, refundId: refund.id });
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
  const locked = await work.em.execute<{ credits_nanos: string }[]>('select credits_nanos from organization where id = ? for update', [orgId]);
  if (!locked[0]) throw notFound('organization');
  const seen = await work.em.execute<{ id: string; balance_after_nanos: string }[]>('select id, balance_after_nanos from credit_ledger where refund_id = ?', [r.refundId]);
  if (seen[0]) return { id: String(seen[0].id), balanceAfterNanos: BigInt(locked[0].credits_nanos), created: false };
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
