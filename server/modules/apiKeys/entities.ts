import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

/** A project's gateway key. Only SHA-256 of the key is stored; `prefix` is the part people see. */
export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_key',
  properties: {
    id: p.uuid().primary(),
    orgId: p.uuid(),
    projectId: p.uuid(),
    name: p.string(),
    prefix: p.string(),
    keyHash: p.blob().unique(),
    /** Requests per minute allowed for this key (null: unlimited). */
    rpmLimit: p.integer().nullable(),
    createdBy: p.uuid().nullable(),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    revokedBy: p.uuid().nullable(),
  },
});
export type ApiKeyEntity = InferEntity<typeof ApiKey>;
