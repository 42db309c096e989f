import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';

export const AuditEntry = defineEntity({
  name: 'AuditEntry',
  tableName: 'audit_log',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    /** A plain id, no foreign key: the audit trail outlives a deleted organization (deleted_organization). */
    orgId: p.uuid(),
    actorId: references(User, 'actor_id').nullable().deleteRule('set null'),
    action: p.string(),
    targetType: p.string(),
    targetId: p.string().nullable(),
    before: p.json<Record<string, unknown>>().nullable(),
    after: p.json<Record<string, unknown>>().nullable(),
    createdAt: p.datetime(),
  },
  indexes: [{ name: 'audit_log_org_id_id_index', expression: `create index "audit_log_org_id_id_index" on "audit_log" ("org_id", "id" desc)` }],
});
export type AuditEntryEntity = InferEntity<typeof AuditEntry>;
