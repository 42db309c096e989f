import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Organization } from '../organizations/entities.js';
import { Project } from '../projects/entities.js';
import { LATENCY_BUCKET_COUNT } from '../usage/histogram.js';

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

type HealthDigit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
type HealthBucket = HealthDigit | `${1 | 2}${HealthDigit}` | 30 | 31;
const healthBucket = (column: string) => p.integer().default(0).fieldName(column);
/** `<prefix>_b0`..`<prefix>_b31` bucket counters (bounds: LATENCY_BOUNDS_MS in usage/histogram.ts). */
function healthBuckets<P extends string>(prop: P, column: string): Record<`${P}B${HealthBucket}`, ReturnType<typeof healthBucket>> {
  const props: Record<string, ReturnType<typeof healthBucket>> = {};
  for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) props[`${prop}B${i}`] = healthBucket(`${column}_b${i}`);
  return props as Record<`${P}B${HealthBucket}`, ReturnType<typeof healthBucket>>;
}

/**
 * Upstream attempts per organization, provider, credential and minute, from every gateway instance
 * (server/modules/gateway/health.ts upserts its counts every few seconds, adding them): the shared
 * state of provider health. `credential` is a provider key id or `operator:<provider>:<index>`.
 * Latency and time to first token are histograms (p50/p95); `cooledUntil` shares a key's cool-down.
 * Rows older than a day are deleted by the instances.
 */
export const ProviderHealthMinute = defineEntity({
  name: 'ProviderHealthMinute',
  tableName: 'provider_health',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    provider: p.string().length(40).primary(),
    credential: p.string().length(80).primary(),
    minute: p.datetime().primary().index(),
    calls: p.integer().default(0),
    failures: p.integer().default(0),
    ...healthBuckets('lat', 'lat'),
    ...healthBuckets('ttft', 'ttft'),
    cooledUntil: p.datetime().nullable(),
  },
});
export type ProviderHealthMinuteEntity = InferEntity<typeof ProviderHealthMinute>;
