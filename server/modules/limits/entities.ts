import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';
import { LIMIT_PERIODS } from '../../../shared/limits.js';

/** A member's budget in one organization (team.setBudget): their keys together spend at most this per period. */
export const MemberBudget = defineEntity({
  name: 'MemberBudget',
  tableName: 'member_budget',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    userId: references(User, 'user_id').deleteRule('cascade').primary().index(),
    amountNanos: p.bigint('bigint'),
    period: p.enum([...LIMIT_PERIODS]),
    updatedAt: p.datetime(),
  },
});
export type MemberBudgetEntity = InferEntity<typeof MemberBudget>;

/**
 * One limit's accounting in one period (`scope`: `key:<id>`, `member:<org>:<user>`, `day:<org>`,
 * `month:<org>`, `balance:<org>`, `slots:<org>`; `periodStart` the epoch for lifetime ones): what was
 * spent (committed by the usage meter) and what gateway instances hold leased right now.
 */
export const SpendCounter = defineEntity({
  name: 'SpendCounter',
  tableName: 'spend_counter',
  properties: {
    scope: p.string().length(120).primary(),
    periodStart: p.datetime().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    spentNanos: p.bigint('bigint').default(0),
    leasedNanos: p.bigint('bigint').default(0),
  },
});
export type SpendCounterEntity = InferEntity<typeof SpendCounter>;

/** A slice of one limit leased by one gateway instance; expired (the instance stopped heartbeating): reclaimed. */
export const SpendLease = defineEntity({
  name: 'SpendLease',
  tableName: 'spend_lease',
  properties: {
    id: p.uuid().primary(),
    scope: p.string().length(120),
    periodStart: p.datetime(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    amountNanos: p.bigint('bigint'),
    expiresAt: p.datetime(),
  },
  indexes: [{ properties: ['scope', 'periodStart'] }],
});
export type SpendLeaseEntity = InferEntity<typeof SpendLease>;
