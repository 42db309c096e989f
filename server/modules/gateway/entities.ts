import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Organization } from '../organizations/entities.js';
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

/**
 * Responses (POST /v1/responses) of models the gateway translates, kept while the organization's
 * retention level is `retain` so `previous_response_id` can rebuild the conversation and
 * GET /v1/responses/{id} can serve them: the conversation's input items (history first) and the
 * Response object. Cleared by the retention job once the level drops (server/modules/usage/retention.ts).
 */
export const StoredResponse = defineEntity({
  name: 'StoredResponse',
  tableName: 'stored_response',
  properties: {
    id: p.string().length(80).primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    projectId: references(Project, 'project_id').deleteRule('cascade'),
    provider: p.string().length(40),
    model: p.string().length(200),
    items: p.json<unknown>(),
    response: p.json<unknown>(),
    createdAt: p.datetime().index(),
  },
  indexes: [{ properties: ['orgId'] }, { properties: ['projectId'] }],
});
export type StoredResponseEntity = InferEntity<typeof StoredResponse>;
