/**
 * The credit ledger. The only way an organization's credits change: one UPDATE of the balance
 * (which row-locks the organization until commit) and one ledger row carrying the balance after,
 * in the caller's transaction. So the balance equals the sum of the ledger at every commit.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { nanosToDecimal } from '../../../shared/money.js';
import type { Work } from '../../events/unit-of-work.js';
import { badRequest, notFound } from '../../trpc/errors.js';
import type { LedgerType } from './entities.js';

export interface LedgerPosting {
  type: LedgerType;
  /** Signed integer nano-dollars. */
  amountNanos: bigint;
  description: string;
  status?: 'completed' | 'pending' | 'failed';
  stripeEventId?: string | null;
  paymentIntentId?: string | null;
  invoiceId?: string | null;
  refundId?: string | null;
  requestCount?: number | null;
  relatedEntryId?: string | null;
}

/** Told of every balance change inside its transaction (budget alerts, auto top-up). */
export type BalanceObserver = (work: Work, orgId: string, change: { balanceAfterNanos: bigint; deltaNanos: bigint; type: LedgerType }) => Promise<void>;
const observers: BalanceObserver[] = [];
export function onBalanceChanged(observer: BalanceObserver): void {
  if (!observers.includes(observer)) observers.push(observer);
}

export interface PostedEntry {
  id: string;
  balanceAfterNanos: bigint;
}

/** Posts one entry and moves the balance by its amount (a failed/pending entry moves nothing). */
export async function postLedgerEntry(work: Work, orgId: string, posting: LedgerPosting): Promise<PostedEntry> {
  const { em } = work;
  const status = posting.status ?? 'completed';
  const delta = status === 'completed' ? posting.amountNanos : 0n;
  const balance = await em.execute<{ credits_nanos: string }[]>(
    'update organization set credits_nanos = credits_nanos + ?::bigint where id = ? returning credits_nanos',
    [delta.toString(), orgId],
  );
  if (balance.length === 0) throw notFound('organization');
  const balanceAfter = BigInt(balance[0]!.credits_nanos);
  const inserted = await em.execute<{ id: string }[]>(
    `insert into credit_ledger (org_id, type, amount_nanos, balance_after_nanos, status, description, actor_id,
       stripe_event_id, payment_intent_id, invoice_id, refund_id, request_count, related_entry_id, created_at)
     values (?, ?, ?::bigint, ?::bigint, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()) returning id`,
    [
      orgId,
      posting.type,
      posting.amountNanos.toString(),
      balanceAfter.toString(),
      status,
      posting.description.slice(0, 500),
      work.actorId,
      posting.stripeEventId ?? null,
      posting.paymentIntentId ?? null,
      posting.invoiceId ?? null,
      posting.refundId ?? null,
      posting.requestCount ?? null,
      posting.relatedEntryId ?? null,
    ],
  );
  if (delta !== 0n) {
    work.emit(orgId, { type: 'credits.changed', credits: nanosToDecimal(balanceAfter) });
    for (const observe of observers) await observe(work, orgId, { balanceAfterNanos: balanceAfter, deltaNanos: delta, type: posting.type });
  }
  return { id: String(inserted[0]!.id), balanceAfterNanos: balanceAfter };
}

/**
 * The only way usage takes credits (the gateway calls this, usually with a batch of requests).
 * The balance may go below zero by the cost of requests already served; new credit-paid requests
 * are refused while it is at or below zero.
 */
export async function deductUsage(work: Work, orgId: string, costNanos: bigint, meta: { requestCount?: number; description?: string } = {}): Promise<PostedEntry> {
  if (costNanos < 0n) throw badRequest('usage cost cannot be negative');
  const requests = meta.requestCount ?? 1;
  return postLedgerEntry(work, orgId, {
    type: 'usage',
    amountNanos: -costNanos,
    description: meta.description ?? `Usage: ${requests} request${requests === 1 ? '' : 's'}`,
    requestCount: requests,
  });
}

/** Balance and ledger sum side by side (they must always be equal). */
export async function ledgerCheck(em: EntityManager, orgId: string): Promise<{ balanceNanos: bigint; ledgerSumNanos: bigint }> {
  const rows = await em.execute<{ balance: string; total: string | null }[]>(
    `select o.credits_nanos as balance,
            (select coalesce(sum(amount_nanos), 0) from credit_ledger where org_id = o.id and status = 'completed') as total
       from organization o where o.id = ?`,
    [orgId],
  );
  if (!rows[0]) throw notFound('organization');
  return { balanceNanos: BigInt(rows[0].balance), ledgerSumNanos: BigInt(rows[0].total ?? 0) };
}
