import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';
import { Project } from '../projects/entities.js';

/** A project's gateway key. Only SHA-256 of the key is stored; `prefix` is the part people see. */
export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_key',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    projectId: references(Project, 'project_id').deleteRule('cascade'),
    name: p.string().length(80),
    prefix: p.string().length(20),
    keyHash: p.blob().unique(),
    /** Requests per minute allowed for this key (null: unlimited). */
    rpmLimit: p.integer().nullable(),
    createdBy: references(User, 'created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    revokedBy: references(User, 'revoked_by').nullable().deleteRule('set null'),
  },
  indexes: [{ name: 'api_key_project_id_index', expression: `create index "api_key_project_id_index" on "api_key" ("project_id", "created_at" desc)` }],
});
export type ApiKeyEntity = InferEntity<typeof ApiKey>;
