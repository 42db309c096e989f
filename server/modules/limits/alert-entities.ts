import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Organization } from '../organizations/entities.js';

export const LIMIT_SCOPES = ['apiKey', 'member', 'dailyCap', 'monthlyCap'] as const;

/**
 * The alert state of one spend limit: the highest threshold (50, 80, 100) notified in the period
 * starting at `periodStart` (the epoch for a lifetime limit) for the amount `limitNanos`. An
 * observation in a later period, or with another amount, starts from nothing again (re-armed).
 */
export const LimitAlert = defineEntity({
  name: 'LimitAlert',
  tableName: 'limit_alert',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    scope: p.enum([...LIMIT_SCOPES]).primary(),
    /** The key's id, the member's user id, or the organization's id for its caps (no foreign key: keys and members come and go). */
    subjectId: p.uuid().primary(),
    periodStart: p.datetime(),
    limitNanos: p.bigint('bigint'),
    notifiedThreshold: p.integer(),
    notifiedAt: p.datetime(),
  },
});
export type LimitAlertEntity = InferEntity<typeof LimitAlert>;
