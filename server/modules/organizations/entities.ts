import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { ROLES } from '../../../shared/permissions.js';
import { PLAN_IDS } from '../../../shared/plans.js';

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
    creditsNanos: p.bigint('bigint'),
    /** Operator override of the projects-per-organization limit (null: the plan's). */
    projectLimit: p.integer().nullable(),
    version: p.integer().version(),
    createdBy: p.uuid().nullable(),
    createdAt: p.datetime(),
  },
});
export type OrganizationEntity = InferEntity<typeof Organization>;

export const Membership = defineEntity({
  name: 'Membership',
  tableName: 'membership',
  properties: {
    id: p.uuid().primary(),
    orgId: p.uuid(),
    userId: p.uuid().index(),
    role: p.enum([...ROLES]),
    createdAt: p.datetime(),
  },
  uniques: [{ properties: ['orgId', 'userId'] }],
});
export type MembershipEntity = InferEntity<typeof Membership>;
