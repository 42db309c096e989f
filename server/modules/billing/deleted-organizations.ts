/** Deleted organizations' financial records, for the operator (`npm run admin -- org:deleted [orgId]`). */
import type { Sql } from '../../events/unit-of-work.js';
import { nanosToDecimal } from '../../../shared/money.js';
import { notFound } from '../../errors.js';
import type { RowOf } from '../../db/rows.js';
import type { AuditEntry } from '../audit/entities.js';
import type { AutoTopUpAttempt, DeletedOrganization, LedgerEntry, StripeEvent } from './entities.js';

type DeletedRow = RowOf<
  typeof DeletedOrganization,
  'id' | 'name' | 'plan' | 'billing_email' | 'stripe_customer_id' | 'subscription_id' | 'subscription_cancellation' | 'forfeited_credits_nanos' | 'created_at' | 'deleted_at'
> & { deleted_by_email: string | null };

const SELECT_DELETED = `select d.id, d.name, d.plan, d.billing_email, d.stripe_customer_id, d.subscription_id, d.subscription_cancellation,
    d.forfeited_credits_nanos, d.created_at, d.deleted_at, u.email as deleted_by_email
  from deleted_organization d left join app_user u on u.id = d.deleted_by`;

function deletedView(r: DeletedRow) {
  return {
    id: r.id,
    name: r.name,
    plan: r.plan,
    billingEmail: r.billing_email,
    stripeCustomerId: r.stripe_customer_id,
    subscriptionId: r.subscription_id,
    subscription: r.subscription_cancellation,
    forfeitedCredits: nanosToDecimal(BigInt(r.forfeited_credits_nanos)),
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
    deletedBy: r.deleted_by_email,
  };
}

/** Newest first. */
export async function listDeletedOrganizations(em: Sql, limit = 200) {
  const rows = await em.execute<DeletedRow[]>(`${SELECT_DELETED} order by d.deleted_at desc limit ?`, [limit]);
  return rows.map(deletedView);
}

/** One deleted organization with its ledger, payments (Stripe events), refunds, auto top-up attempts and audit trail. */
export async function deletedOrganizationRecords(em: Sql, orgId: string) {
  const rows = await em.execute<DeletedRow[]>(`${SELECT_DELETED} where d.id = ?`, [orgId]);
  if (!rows[0]) throw notFound('deleted organization');
  const ledger = await em.execute<RowOf<typeof LedgerEntry, 'id' | 'type' | 'status' | 'amount_nanos' | 'balance_after_nanos' | 'description' | 'payment_intent_id' | 'refund_id' | 'created_at'>[]>(
    `select id, type, status, amount_nanos, balance_after_nanos, description, payment_intent_id, refund_id, created_at
       from credit_ledger where org_id = ? order by id`,
    [orgId],
  );
  const ledgerView = ledger.map((l) => ({
    id: String(l.id),
    createdAt: l.created_at,
    type: l.type,
    status: l.status,
    amount: nanosToDecimal(BigInt(l.amount_nanos)),
    balanceAfter: nanosToDecimal(BigInt(l.balance_after_nanos)),
    description: l.description,
    paymentIntentId: l.payment_intent_id,
    refundId: l.refund_id,
  }));
  const stripeEvents = await em.execute<RowOf<typeof StripeEvent, 'id' | 'type' | 'processed_at'>[]>(
    'select id, type, processed_at from stripe_event where org_id = ? order by processed_at',
    [orgId],
  );
  const autoTopUps = await em.execute<RowOf<typeof AutoTopUpAttempt, 'id' | 'status' | 'amount_nanos' | 'payment_intent_id' | 'failure_reason' | 'created_at'>[]>(
    'select id, status, amount_nanos, payment_intent_id, failure_reason, created_at from auto_top_up_attempt where org_id = ? order by created_at',
    [orgId],
  );
  const audit = await em.execute<(RowOf<typeof AuditEntry, 'id' | 'action' | 'target_type' | 'target_id' | 'created_at'> & { actor_email: string | null })[]>(
    `select a.id, a.action, a.target_type, a.target_id, u.email as actor_email, a.created_at
       from audit_log a left join app_user u on u.id = a.actor_id where a.org_id = ? order by a.id`,
    [orgId],
  );
  return {
    organization: deletedView(rows[0]),
    ledger: ledgerView,
    payments: ledgerView.filter((l) => l.type === 'purchase' || l.type === 'auto_topup' || l.type === 'plan_charge'),
    refunds: ledgerView.filter((l) => l.type === 'refund'),
    stripeEvents: stripeEvents.map((e) => ({ id: e.id, type: e.type, processedAt: e.processed_at })),
    autoTopUps: autoTopUps.map((a) => ({ id: a.id, status: a.status, amount: nanosToDecimal(BigInt(a.amount_nanos)), paymentIntentId: a.payment_intent_id, failureReason: a.failure_reason, createdAt: a.created_at })),
    audit: audit.map((a) => ({ id: String(a.id), createdAt: a.created_at, action: a.action, target: `${a.target_type}${a.target_id ? `:${a.target_id}` : ''}`, actor: a.actor_email })),
  };
}
