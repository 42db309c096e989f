import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

export const LEDGER_TYPES = ['purchase', 'usage', 'usage_credit', 'refund', 'auto_topup', 'adjustment', 'plan_charge'] as const;
export type LedgerType = (typeof LEDGER_TYPES)[number];

/** One change of an organization's credits. The organization's balance always equals the sum of its entries. */
export const LedgerEntry = defineEntity({
  name: 'LedgerEntry',
  tableName: 'credit_ledger',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    orgId: p.uuid(),
    type: p.enum([...LEDGER_TYPES]),
    /** Signed integer nano-dollars. */
    amountNanos: p.bigint('bigint'),
    balanceAfterNanos: p.bigint('bigint'),
    status: p.enum(['completed', 'pending', 'failed'] as const),
    description: p.string(),
    actorId: p.uuid().nullable(),
    stripeEventId: p.string().nullable(),
    paymentIntentId: p.string().nullable(),
    invoiceId: p.string().nullable(),
    refundId: p.string().nullable(),
    /** For usage entries: how many metered requests the entry covers. */
    requestCount: p.integer().nullable(),
    /** For credit-backs: the entry being credited back. */
    relatedEntryId: p.bigint('string').nullable(),
    createdAt: p.datetime(),
  },
});
export type LedgerEntryEntity = InferEntity<typeof LedgerEntry>;
