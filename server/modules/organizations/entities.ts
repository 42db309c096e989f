import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { ROLES } from '../../../shared/permissions.js';
import { PLAN_IDS } from '../../../shared/plans.js';
import { LIMIT_PERIODS } from '../../../shared/limits.js';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';

export const Organization = defineEntity({
  name: 'Organization',
  tableName: 'organization',
  properties: {
    id: p.uuid().primary(),
    name: p.string(),
    billingEmail: p.string().nullable(),
    plan: p.enum([...PLAN_IDS]),
    billingCycle: p.string().nullable(),
    retentionLevel: p.enum(['none', 'retain'] as const),
    /** Balance in integer nano-dollars; always equals the sum of the credit ledger. */
    creditsNanos: p.bigint('bigint').default(0),
    /** Operator override of the projects-per-organization limit (null: the plan's). */
    projectLimit: p.integer().nullable(),
    version: p.integer().version(),
    createdBy: references(User, 'created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
    // Billing state (server/modules/billing).
    stripeCustomerId: p.string().nullable(),
    defaultPaymentMethodId: p.string().nullable(),
    autoTopUpEnabled: p.boolean().default(false),
    /** Auto top-up charges when the balance falls below this (nano-dollars). */
    autoTopUpThresholdNanos: p.bigint('bigint').defaultRaw(`'10000000000'::bigint`),
    autoTopUpAmountNanos: p.bigint('bigint').defaultRaw(`'50000000000'::bigint`),
    /** Why auto top-up turned itself off (a declined card), shown to the owner. */
    autoTopUpDisabledReason: p.string().length(500).nullable(),
    subscriptionId: p.string().nullable(),
    subscriptionStatus: p.string().length(50).nullable(),
    subscriptionPeriodEnd: p.datetime().nullable(),
    subscriptionCancelAtPeriodEnd: p.boolean().default(false),
    // Spend limits (server/modules/limits, issue #12): developers' default budget, caps on credits, calls in flight.
    developerBudgetNanos: p.bigint('bigint').nullable(),
    developerBudgetPeriod: p.enum([...LIMIT_PERIODS]).nullable(),
    dailySpendCapNanos: p.bigint('bigint').nullable(),
    monthlySpendCapNanos: p.bigint('bigint').nullable(),
    maxConcurrentCalls: p.integer().nullable(),
  },
  uniques: [
    {
      name: 'organization_stripe_customer_unique',
      expression: `create unique index "organization_stripe_customer_unique" on "organization" ("stripe_customer_id") where "stripe_customer_id" is not null`,
    },
  ],
});
export type OrganizationEntity = InferEntity<typeof Organization>;

export const Membership = defineEntity({
  name: 'Membership',
  tableName: 'membership',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    userId: references(User, 'user_id').deleteRule('cascade').index(),
    role: p.enum([...ROLES]),
    createdAt: p.datetime(),
  },
  uniques: [{ properties: ['orgId', 'userId'] }],
});
export type MembershipEntity = InferEntity<typeof Membership>;
