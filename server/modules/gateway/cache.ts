/**
 * The response cache of a project: identical non-streaming requests (same route, same body apart
 * from `stream`, `stream_options` and `user`) within the project's TTL are answered from a
 * PostgreSQL table every instance shares. Hits are logged as cached and not charged.
 */
import { createHash } from 'node:crypto';
import type { TokenUsage } from '../../../shared/models.js';
import type { ChatRequest } from './upstream/types.js';
import type { RowOf } from '../../db/rows.js';
import type { ResponseCacheEntry } from './entities.js';

type Query = <T>(sql: string, params: unknown[]) => Promise<T>;

const IGNORED = new Set(['stream', 'stream_options', 'user']);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function cacheKey(provider: string, upstreamModel: string, body: ChatRequest): Buffer {
  const normalized = Object.fromEntries(Object.entries(body).filter(([k]) => !IGNORED.has(k) && k !== 'model'));
  return createHash('sha256').update(`${provider}\n${upstreamModel}\n${canonical(normalized)}`).digest();
}

export interface CachedResponse {
  response: Record<string, unknown>;
  usage: TokenUsage;
}

export async function readCache(query: Query, projectId: string, key: Buffer): Promise<CachedResponse | null> {
  const rows = await query<(RowOf<typeof ResponseCacheEntry, 'input_tokens' | 'output_tokens' | 'cached_tokens'> & { response: Record<string, unknown> })[]>(
    'select response, input_tokens, output_tokens, cached_tokens from response_cache where project_id = ? and key_hash = ? and expires_at > now()',
    [projectId, key],
  );
  const r = rows[0];
  return r ? { response: r.response, usage: { inputTokens: r.input_tokens, outputTokens: r.output_tokens, cachedTokens: r.cached_tokens } } : null;
}

export async function writeCache(query: Query, entry: { projectId: string; key: Buffer; provider: string; model: string; ttlSeconds: number; response: Record<string, unknown>; usage: TokenUsage }) {
  await query(
    `insert into response_cache (project_id, key_hash, provider, model, response, input_tokens, output_tokens, cached_tokens, created_at, expires_at)
     values (?, ?, ?, ?, ?::jsonb, ?, ?, ?, now(), now() + make_interval(secs => ?))
     on conflict (project_id, key_hash) do update set response = excluded.response, input_tokens = excluded.input_tokens,
       output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens, created_at = excluded.created_at, expires_at = excluded.expires_at`,
    [entry.projectId, entry.key, entry.provider.slice(0, 40), entry.model.slice(0, 200), JSON.stringify(entry.response).replace(/\\u0000/g, '\\ufffd'), entry.usage.inputTokens, entry.usage.outputTokens, entry.usage.cachedTokens, entry.ttlSeconds],
  );
}
