import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { Organization } from '../organizations/entities.js';
import { LATENCY_BUCKET_COUNT } from './histogram.js';
import type { UsageAttempt } from './meter.js';

/**
 * A usage batch the meter applied (its id, or a split half's `parent/0`, `parent/1`), claimed in
 * the batch's own transaction: a retried batch whose id (or an ancestor's) is here is a no-op.
 * Rows older than a day are pruned by the meter.
 */
export const UsageBatch = defineEntity({
  name: 'UsageBatch',
  tableName: 'usage_batch',
  properties: {
    id: p.string().primary(),
    createdAt: p.datetime().index(),
  },
});
export type UsageBatchEntity = InferEntity<typeof UsageBatch>;

export const PAID_BY = ['credits', 'provider_key', 'cache', 'none'] as const;

/**
 * One row per gateway call. Bodies only while the organization's retention level is `retain`.
 * Partitioned by day on `createdAt` (migration 20261201010000, server/db/partitions.ts): the primary
 * key includes it, and the daily partitions are not entities (db:check compares this parent table).
 */
export const RequestLog = defineEntity({
  name: 'RequestLog',
  tableName: 'request_log',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    projectId: p.uuid(),
    apiKeyId: p.uuid(),
    /** Which API the call came through ('chat.completions', 'messages', 'responses', 'embeddings'). */
    endpoint: p.string().length(40).default('chat.completions'),
    provider: p.string().length(40),
    model: p.string().length(200),
    inputTokens: p.integer().default(0),
    outputTokens: p.integer().default(0),
    cachedTokens: p.integer().default(0),
    /** Prompt tokens written to the provider's cache (billed at the cache-write price). */
    cacheWriteTokens: p.integer().default(0),
    costNanos: p.bigint('bigint').default(0),
    paidBy: p.enum([...PAID_BY]),
    latencyMs: p.integer(),
    ttftMs: p.integer().nullable(),
    status: p.smallint(),
    error: p.string().length(1000).nullable(),
    cached: p.boolean().default(false),
    streamed: p.boolean().default(false),
    canceled: p.boolean().default(false),
    requestBody: p.json<unknown>().nullable(),
    responseBody: p.json<unknown>().nullable(),
    /** The call's upstream attempts (provider, model, key name, status, latency, error) when it had more than one; else null. */
    attempts: p.json<UsageAttempt[]>().nullable(),
    createdAt: p.datetime().primary().index(),
  },
  indexes: [
    { name: 'request_log_org_id_id_index', expression: `create index "request_log_org_id_id_index" on "request_log" ("org_id", "id" desc)` },
    { name: 'request_log_project_id_id_index', expression: `create index "request_log_project_id_id_index" on "request_log" ("project_id", "id" desc)` },
    // Finds bodies to clear when an organization's retention level drops to 'none'.
    {
      name: 'request_log_with_body_index',
      expression: `create index "request_log_with_body_index" on "request_log" ("org_id") where "request_body" is not null or "response_body" is not null`,
    },
  ],
});
export type RequestLogEntity = InferEntity<typeof RequestLog>;

type Digit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
type BucketIndex = Digit | `${1 | 2}${Digit}` | 30 | 31;
const bucketColumn = (i: number) => p.integer().default(0).fieldName(`lat_b${i}`);
/** The latency histogram's bucket counters `lat_b0`..`lat_b31` (bounds in ./histogram.ts). */
function latencyBuckets(): Record<`latB${BucketIndex}`, ReturnType<typeof bucketColumn>> {
  const props: Record<string, ReturnType<typeof bucketColumn>> = {};
  for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) props[`latB${i}`] = bucketColumn(i);
  return props as Record<`latB${BucketIndex}`, ReturnType<typeof bucketColumn>>;
}

/** The sums every rollup keeps, per hour. */
const rollupSums = () => ({
  requests: p.integer().default(0),
  errors: p.integer().default(0),
  cacheHits: p.integer().default(0),
  canceled: p.integer().default(0),
  streamed: p.integer().default(0),
  inputTokens: p.bigint('bigint').default(0),
  outputTokens: p.bigint('bigint').default(0),
  cachedTokens: p.bigint('bigint').default(0),
  costNanos: p.bigint('bigint').default(0),
  chargedNanos: p.bigint('bigint').default(0),
  latencySumMs: p.bigint('bigint').default(0),
  ttftSumMs: p.bigint('bigint').default(0),
  ttftCount: p.integer().default(0),
  /** Calls that needed more than one upstream attempt (each call counts once in `requests`). */
  retried: p.integer().default(0),
  /** Calls whose last attempt went to another provider or model than their first. */
  fellBack: p.integer().default(0),
  ...latencyBuckets(),
});

/** Hourly rollups per key, provider and model, written in the same transaction as the logs; analytics read only rollups. */
export const UsageRollup = defineEntity({
  name: 'UsageRollup',
  tableName: 'usage_rollup',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    hour: p.datetime().primary(),
    projectId: p.uuid().primary(),
    apiKeyId: p.uuid().primary(),
    provider: p.string().length(40).primary(),
    model: p.string().length(200).primary(),
    endpoint: p.string().length(40).primary().default('chat.completions'),
    ...rollupSums(),
  },
});
export type UsageRollupEntity = InferEntity<typeof UsageRollup>;

/** The same sums per project and hour (no key, provider or model): summaries and time series read these. */
export const UsageRollupProject = defineEntity({
  name: 'UsageRollupProject',
  tableName: 'usage_rollup_project',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    hour: p.datetime().primary(),
    projectId: p.uuid().primary(),
    ...rollupSums(),
  },
});
export type UsageRollupProjectEntity = InferEntity<typeof UsageRollupProject>;
