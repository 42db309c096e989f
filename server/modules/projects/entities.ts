import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Organization } from '../organizations/entities.js';
import type { ProjectRoutingInput } from '../../../shared/schemas.js';

export const Project = defineEntity({
  name: 'Project',
  tableName: 'project',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    name: p.string(),
    isDefault: p.boolean().default(false),
    mode: p.enum(['credits', 'provider-keys', 'hybrid'] as const),
    cachingEnabled: p.boolean().default(false),
    cacheTtlSeconds: p.integer().default(300),
    /** Browser origins (scheme://host[:port]) allowed to call /v1 with this project's keys; empty: any. */
    allowedOrigins: p.array<string>(),
    /** Routing settings as set (project.update {routing}); left-out fields take the defaults (gateway/runtime.ts DEFAULT_ROUTING). */
    routing: p.json<ProjectRoutingInput>().defaultRaw(`'{}'`),
    createdAt: p.datetime(),
  },
});
export type ProjectEntity = InferEntity<typeof Project>;
