import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Project } from '../projects/entities.js';

/** Cached responses of non-streaming requests, shared by every instance (server/modules/gateway/cache.ts). */
export const ResponseCacheEntry = defineEntity({
  name: 'ResponseCacheEntry',
  tableName: 'response_cache',
  properties: {
    projectId: references(Project, 'project_id').deleteRule('cascade').primary(),
    keyHash: p.blob().primary(),
    provider: p.string().length(40),
    model: p.string().length(200),
    response: p.json<unknown>(),
    inputTokens: p.integer(),
    outputTokens: p.integer(),
    cachedTokens: p.integer(),
    createdAt: p.datetime(),
    expiresAt: p.datetime().index(),
  },
});
export type ResponseCacheEntryEntity = InferEntity<typeof ResponseCacheEntry>;
