import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';

export const LEDGER_TYPES = ['purchase', 'usage', 'usage_credit', 'refund', 'auto_topup', 'adjustment', 'plan_charge'] as const;
export type LedgerType = (typeof LEDGER_TYPES)[number];

/** One change of an organization's credits. The organization's balance always equals the sum of its entries. */
export const LedgerEntry = defineEntity({
  name: 'LedgerEntry',
  tableName: 'credit_ledger',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    /** A plain id, no foreign key: financial records outlive a deleted organization (deleted_organization). */
    orgId: p.uuid(),
    type: p.enum([...LEDGER_TYPES]),
    /** Signed integer nano-dollars. */
    amountNanos: p.bigint('bigint'),
    balanceAfterNanos: p.bigint('bigint'),
    status: p.enum(['completed', 'pending', 'failed'] as const).default('completed'),
    description: p.string().length(500),
    actorId: references(User, 'actor_id').nullable().deleteRule('set null'),
    stripeEventId: p.string().nullable(),
    paymentIntentId: p.string().nullable(),
    invoiceId: p.string().nullable(),
    refundId: p.string().nullable(),
    /** For usage entries: how many metered requests the entry covers. */
    requestCount: p.integer().nullable(),
    /** For credit-backs: the entry being credited back. */
    relatedEntryId: () => references(LedgerEntry, 'related_entry_id').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
  },
  indexes: [
    { name: 'credit_ledger_org_id_id_index', expression: `create index "credit_ledger_org_id_id_index" on "credit_ledger" ("org_id", "id" desc)` },
    // The grouped history reads by time window (migration 20261202030000).
    { name: 'credit_ledger_org_id_created_at_index', expression: `create index "credit_ledger_org_id_created_at_index" on "credit_ledger" ("org_id", "created_at" desc)` },
  ],
  uniques: [
    // A payment intent credits an organization at most once (purchases, auto top-ups).
    {
      name: 'credit_ledger_payment_intent_unique',
      expression: `create unique index "credit_ledger_payment_intent_unique" on "credit_ledger" ("payment_intent_id") where "payment_intent_id" is not null and "type" in ('purchase', 'auto_topup') and "status" = 'completed'`,
    },
    // A Stripe refund is recorded once.
    { name: 'credit_ledger_refund_unique', expression: `create unique index "credit_ledger_refund_unique" on "credit_ledger" ("refund_id") where "refund_id" is not null` },
    // A usage entry is credited back at most once.
    {
      name: 'credit_ledger_credit_back_unique',
      expression: `create unique index "credit_ledger_credit_back_unique" on "credit_ledger" ("related_entry_id") where "type" = 'usage_credit'`,
    },
  ],
});
export type LedgerEntryEntity = InferEntity<typeof LedgerEntry>;

/** A Stripe webhook event already applied: each event is applied exactly once. */
export const StripeEvent = defineEntity({
  name: 'StripeEvent',
  tableName: 'stripe_event',
  properties: {
    id: p.string().primary(),
    type: p.string(),
    /** The organization it concerned, when known (kept as a plain id: the record outlives it). */
    orgId: p.uuid().nullable(),
    processedAt: p.datetime(),
  },
});
export type StripeEventEntity = InferEntity<typeof StripeEvent>;

export const AUTO_TOP_UP_STATUSES = ['pending', 'succeeded', 'failed', 'requires_action'] as const;

/** An auto top-up charge. At most one is in flight (`pending`) per organization, across every instance. */
export const AutoTopUpAttempt = defineEntity({
  name: 'AutoTopUpAttempt',
  tableName: 'auto_top_up_attempt',
  properties: {
    id: p.uuid().primary(),
    /** A plain id, no foreign key: financial records outlive a deleted organization (deleted_organization). */
    orgId: p.uuid(),
    status: p.enum([...AUTO_TOP_UP_STATUSES]),
    amountNanos: p.bigint('bigint'),
    paymentIntentId: p.string().nullable(),
    failureReason: p.string().length(500).nullable(),
    nextRetryAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
  indexes: [
    {
      name: 'auto_top_up_attempt_org_created_index',
      expression: `create index "auto_top_up_attempt_org_created_index" on "auto_top_up_attempt" ("org_id", "created_at" desc)`,
    },
  ],
  uniques: [
    { name: 'auto_top_up_one_in_flight', expression: `create unique index "auto_top_up_one_in_flight" on "auto_top_up_attempt" ("org_id") where "status" = 'pending'` },
  ],
});
export type AutoTopUpAttemptEntity = InferEntity<typeof AutoTopUpAttempt>;

export const BUDGET_ALERT_KINDS = ['balance_below', 'monthly_spend_above'] as const;

/** A budget alert: notifies once per crossing, re-armed when the condition clears. One per kind. */
export const BudgetAlert = defineEntity({
  name: 'BudgetAlert',
  tableName: 'budget_alert',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    kind: p.enum([...BUDGET_ALERT_KINDS]),
    thresholdNanos: p.bigint('bigint'),
    triggered: p.boolean().default(false),
    lastTriggeredAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
  uniques: [{ name: 'budget_alert_org_kind_unique', properties: ['orgId', 'kind'] }],
});
export type BudgetAlertEntity = InferEntity<typeof BudgetAlert>;

/**
 * A deleted organization, archived for the operator and for accounting: its ledger, auto top-up
 * attempts, Stripe events and audit trail keep its id; this row says what it was and what became of
 * its subscription and its credits (`npm run admin -- org:deleted`).
 */
export const DeletedOrganization = defineEntity({
  name: 'DeletedOrganization',
  tableName: 'deleted_organization',
  properties: {
    id: p.uuid().primary(),
    name: p.string(),
    plan: p.enum(['free', 'pro', 'enterprise'] as const),
    billingEmail: p.string().nullable(),
    stripeCustomerId: p.string().nullable(),
    subscriptionId: p.string().nullable(),
    /** What happened to the subscription: `none`, `canceled (<status>)`, or why it could not be. */
    subscriptionCancellation: p.string().length(500),
    /** Integer nano-dollars left in the balance and forfeited by the deletion. */
    forfeitedCreditsNanos: p.bigint('bigint'),
    createdAt: p.datetime(),
    deletedBy: references(User, 'deleted_by').nullable().deleteRule('set null'),
    deletedAt: p.datetime(),
  },
  indexes: [{ name: 'deleted_organization_deleted_at_index', expression: `create index "deleted_organization_deleted_at_index" on "deleted_organization" ("deleted_at" desc)` }],
});
export type DeletedOrganizationEntity = InferEntity<typeof DeletedOrganization>;
