import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

export const AuditEntry = defineEntity({
  name: 'AuditEntry',
  tableName: 'audit_log',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    orgId: p.uuid(),
    actorId: p.uuid().nullable(),
    action: p.string(),
    targetType: p.string(),
    targetId: p.string().nullable(),
    before: p.json<Record<string, unknown>>().nullable(),
    after: p.json<Record<string, unknown>>().nullable(),
    createdAt: p.datetime(),
  },
});
export type AuditEntryEntity = InferEntity<typeof AuditEntry>;
