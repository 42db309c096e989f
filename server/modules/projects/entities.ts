import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

export const Project = defineEntity({
  name: 'Project',
  tableName: 'project',
  properties: {
    id: p.uuid().primary(),
    orgId: p.uuid().index(),
    name: p.string(),
    isDefault: p.boolean(),
    mode: p.enum(['credits', 'provider-keys', 'hybrid'] as const),
    cachingEnabled: p.boolean(),
    cacheTtlSeconds: p.integer(),
    createdAt: p.datetime(),
  },
});
export type ProjectEntity = InferEntity<typeof Project>;
