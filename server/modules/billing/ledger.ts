/**
 * The credit ledger. The only way an organization's credits change: one UPDATE of the balance
 * (which row-locks the organization until commit) and one ledger row carrying the balance after,
 * in the caller's transaction. So the balance equals the sum of the ledger at every commit.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { nanosToDecimal } from '../../../shared/money.js';
import type { SqlWork } from '../../events/unit-of-work.js';
import { badRequest, notFound } from '../../errors.js';
import type { LedgerEntry, LedgerType } from './entities.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';
import { observeLedgerPosting } from '../../observability/metrics.js';

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

/** What an observer is told of a balance change, with the organization's facts read in the same statement. */
export interface BalanceChange {
  balanceAfterNanos: bigint;
  deltaNanos: bigint;
  type: LedgerType;
  /** Auto top-up is on and the balance is now under its threshold. */
  topUpDue: boolean;
  /** The organization has budget alerts configured. */
  hasAlerts: boolean;
}

/**
 * Told of every balance change inside its transaction (budget alerts, auto top-up). The list is
 * `work.deps.balanceObservers`, built by createServices (server/services.ts): whoever posts with
 * the services object (server, admin CLI, jobs, tests) runs the same observers.
 */
export type BalanceObserver = (work: SqlWork, orgId: string, change: BalanceChange) => Promise<void>;

export interface PostedEntry {
  id: string;
  balanceAfterNanos: bigint;
}

// One statement: the balance UPDATE (row-locking the organization until commit), the ledger row
// carrying the balance after, and what the balance observers need to know, in one round trip.
const POST_ENTRY = `with balance as (
    update organization set credits_nanos = credits_nanos + ?::bigint where id = ?
    returning id, credits_nanos,
      (auto_top_up_enabled and credits_nanos < auto_top_up_threshold_nanos) as top_up_due,
      exists (select 1 from budget_alert a where a.org_id = organization.id) as has_alerts
  ), entry as (
    insert into credit_ledger (org_id, type, amount_nanos, balance_after_nanos, status, description, actor_id,
       stripe_event_id, payment_intent_id, invoice_id, refund_id, request_count, related_entry_id, created_at)
    select balance.id, ?, ?::bigint, balance.credits_nanos, ?, ?, ?, ?, ?, ?, ?, ?, ?, now() from balance
    returning id
  )
  select entry.id, balance.credits_nanos, balance.top_up_due, balance.has_alerts from entry, balance`;

/** Posts one entry and moves the balance by its amount (a failed/pending entry moves nothing). */
export async function postLedgerEntry(work: SqlWork, orgId: string, posting: LedgerPosting): Promise<PostedEntry> {
  const { em } = work;
  const status = posting.status ?? 'completed';
  const delta = status === 'completed' ? posting.amountNanos : 0n;
  const rows = await em.execute<(RowOf<typeof LedgerEntry, 'id'> & RowOf<typeof Organization, 'credits_nanos'> & { top_up_due: boolean | null; has_alerts: boolean })[]>(POST_ENTRY, [
    delta.toString(),
    orgId,
    posting.type,
    posting.amountNanos.toString(),
    status,
    posting.description.slice(0, 500),
    work.actorId,
    posting.stripeEventId ?? null,
    posting.paymentIntentId ?? null,
    posting.invoiceId ?? null,
    posting.refundId ?? null,
    posting.requestCount ?? null,
    posting.relatedEntryId ?? null,
  ]);
  const row = rows[0];
  if (!row) throw notFound('organization');
  work.afterCommit(() => observeLedgerPosting(posting.type, status));
  const balanceAfter = BigInt(row.credits_nanos);
  if (delta !== 0n) {
    work.emit(orgId, { type: 'credits.changed', credits: nanosToDecimal(balanceAfter) });
    const change: BalanceChange = { balanceAfterNanos: balanceAfter, deltaNanos: delta, type: posting.type, topUpDue: row.top_up_due === true, hasAlerts: row.has_alerts };
    for (const observe of work.deps.balanceObservers) await observe(work, orgId, change);
  }
  return { id: String(row.id), balanceAfterNanos: balanceAfter };
}

/**
 * The only way usage takes credits (the gateway calls this, usually with a batch of requests).
 * The balance may go below zero by the cost of requests already served; new credit-paid requests
 * are refused while it is at or below zero.
 */
export async function deductUsage(work: SqlWork, orgId: string, costNanos: bigint, meta: { requestCount?: number; description?: string } = {}): Promise<PostedEntry> {
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
