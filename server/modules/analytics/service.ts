/**
 * Analytics read the hourly rollups only (never the raw logs): summaries and time series the
 * per-project ones (a 30-day view sums a few thousand rows), breakdowns the detailed ones. Ranges have hour granularity: an hour is counted when it starts in [from, to).
 * Latency percentiles come from the rollups' histograms (accurate to the bucket width).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { nanosToDecimal } from '../../../shared/money.js';
import { badRequest, notFound } from '../../errors.js';
import { histogramQuantile, LATENCY_COLUMNS } from '../usage/histogram.js';
import type { RowOf } from '../../db/rows.js';
import type { RequestLog } from '../usage/entities.js';
import { SEARCH_DEFAULT_DAYS, SEARCH_MAX_DAYS } from './schemas.js';

interface Range {
  orgId: string;
  projectId?: string;
  from: Date;
  to: Date;
}

type SumRow = Record<string, string | null>;

const SUMS = `coalesce(sum(requests), 0) as requests, coalesce(sum(errors), 0) as errors, coalesce(sum(cache_hits), 0) as cache_hits,
  coalesce(sum(input_tokens), 0) as input_tokens, coalesce(sum(output_tokens), 0) as output_tokens, coalesce(sum(cached_tokens), 0) as cached_tokens,
  coalesce(sum(cost_nanos), 0) as cost_nanos, coalesce(sum(charged_nanos), 0) as charged_nanos, coalesce(sum(latency_sum_ms), 0) as latency_sum_ms,
  coalesce(sum(ttft_sum_ms), 0) as ttft_sum_ms, coalesce(sum(ttft_count), 0) as ttft_count,
  coalesce(sum(retried), 0) as retried, coalesce(sum(fell_back), 0) as fell_back,
  ${LATENCY_COLUMNS.map((c) => `coalesce(sum(${c}), 0) as ${c}`).join(', ')}`;

function where(r: Range): { sql: string; params: unknown[] } {
  const a = '';
  const parts = [`${a}org_id = ?`, `${a}hour >= date_trunc('hour', ?::timestamptz, 'UTC')`, `${a}hour < ?::timestamptz`];
  const params: unknown[] = [r.orgId, r.from.toISOString(), r.to.toISOString()];
  if (r.projectId) {
    parts.push(`${a}project_id = ?`);
    params.push(r.projectId);
  }
  return { sql: parts.join(' and '), params };
}

const num = (v: string | null | undefined) => Number(v ?? 0);
const rate = (part: number, whole: number) => (whole === 0 ? 0 : part / whole);

export function metrics(row: SumRow) {
  const requests = num(row.requests);
  const errors = num(row.errors);
  const cacheHits = num(row.cache_hits);
  const histogram = LATENCY_COLUMNS.map((c) => num(row[c]));
  const ttftCount = num(row.ttft_count);
  return {
    requests,
    errors,
    errorRate: rate(errors, requests),
    cacheHits,
    cacheHitRate: rate(cacheHits, requests),
    inputTokens: num(row.input_tokens),
    outputTokens: num(row.output_tokens),
    cachedTokens: num(row.cached_tokens),
    cost: nanosToDecimal(BigInt(row.cost_nanos ?? 0)),
    charged: nanosToDecimal(BigInt(row.charged_nanos ?? 0)),
    latencyAvgMs: requests ? Math.round((num(row.latency_sum_ms) / requests) * 10) / 10 : null,
    latencyP50Ms: histogramQuantile(histogram, 0.5),
    latencyP95Ms: histogramQuantile(histogram, 0.95),
    latencyP99Ms: histogramQuantile(histogram, 0.99),
    ttftAvgMs: ttftCount ? Math.round((num(row.ttft_sum_ms) / ttftCount) * 10) / 10 : null,
    ...routingCounts(row, requests),
  };
}

/**
 * Calls that needed more than one upstream attempt (`retried`) and calls whose last attempt went to
 * another provider or model than their first (`fellBack`, part of `retried`); each call counts once
 * in `requests` however many attempts it made.
 */
function routingCounts(row: SumRow, requests: number) {
  const retried = num(row.retried);
  const fellBack = num(row.fell_back);
  return { retried, retryRate: rate(retried, requests), fellBack, fallbackRate: rate(fellBack, requests) };
}

export async function usageSummary(em: EntityManager, r: Range) {
  const w = where(r);
  const rows = await em.execute<SumRow[]>(`select ${SUMS} from usage_rollup_project where ${w.sql}`, w.params);
  return { from: r.from, to: r.to, ...metrics(rows[0] ?? {}) };
}

const MAX_POINTS = 2_500;

export async function usageTimeseries(em: EntityManager, r: Range & { bucket: 'hour' | 'day' }) {
  const step = r.bucket === 'hour' ? 3_600_000 : 86_400_000;
  const first = Math.floor(r.from.getTime() / step) * step;
  const count = Math.ceil((r.to.getTime() - first) / step);
  if (count > MAX_POINTS) throw badRequest(`that range has ${count} ${r.bucket}s; ask for at most ${MAX_POINTS} points`);
  const w = where(r);
  const rows = await em.execute<(SumRow & { t: string })[]>(
    `select to_char(date_trunc(?, hour, 'UTC') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as t, ${SUMS} from usage_rollup_project where ${w.sql} group by 1`,
    [r.bucket, ...w.params],
  );
  const byTime = new Map(rows.map((row) => [new Date(row.t).getTime(), row]));
  return Array.from({ length: count }, (_, i) => {
    const t = first + i * step;
    const m = metrics(byTime.get(t) ?? {});
    return { t: new Date(t), requests: m.requests, errors: m.errors, cacheHits: m.cacheHits, inputTokens: m.inputTokens, outputTokens: m.outputTokens, cachedTokens: m.cachedTokens, cost: m.cost, latencyP50Ms: m.latencyP50Ms, latencyP95Ms: m.latencyP95Ms };
  });
}

const BREAKDOWN_SUMS = `sum(requests) as requests, sum(errors) as errors, sum(cache_hits) as cache_hits, sum(input_tokens) as input_tokens,
  sum(output_tokens) as output_tokens, sum(cached_tokens) as cached_tokens, sum(cost_nanos) as cost_nanos, sum(latency_sum_ms) as latency_sum_ms,
  sum(retried) as retried, sum(fell_back) as fell_back`;

export async function usageBreakdown(em: EntityManager, r: Range & { by: 'model' | 'provider' | 'project' | 'apiKey' | 'endpoint'; limit?: number }) {
  const w = where(r);
  const limit = r.limit ?? 100;
  // Aggregate first, then name the groups: the join touches one row per group, not per rollup row.
  const group = {
    model: { cols: 'provider, model', key: `a.provider || '/' || a.model`, label: 'a.model', join: '' },
    provider: { cols: 'provider', key: 'a.provider', label: 'a.provider', join: '' },
    project: { cols: 'project_id', key: 'a.project_id::text', label: `coalesce(p.name, '(deleted project)')`, join: 'left join project p on p.id = a.project_id' },
    apiKey: { cols: 'api_key_id', key: 'a.api_key_id::text', label: `coalesce(k.name || ' (' || k.prefix || '…)', '(deleted key)')`, join: 'left join api_key k on k.id = a.api_key_id' },
    // Which API the calls came through: chat.completions, messages, responses, embeddings.
    endpoint: { cols: 'endpoint', key: 'a.endpoint', label: 'a.endpoint', join: '' },
  }[r.by];
  const rows = await em.execute<(SumRow & { key: string; label: string; provider?: string })[]>(
    `select ${group.key} as key, ${group.label} as label${r.by === 'model' ? ', a.provider as provider' : ''}, a.*
       from (select ${group.cols}, ${BREAKDOWN_SUMS} from usage_rollup where ${w.sql} group by ${group.cols}) a ${group.join}
      order by a.cost_nanos desc, a.requests desc, 1 limit ?`,
    [...w.params, limit],
  );
  return rows.map((row) => {
    const requests = num(row.requests);
    return {
      key: row.key,
      label: row.label,
      ...(row.provider ? { provider: row.provider } : {}),
      requests,
      errors: num(row.errors),
      cacheHits: num(row.cache_hits),
      inputTokens: num(row.input_tokens),
      outputTokens: num(row.output_tokens),
      cachedTokens: num(row.cached_tokens),
      cost: nanosToDecimal(BigInt(row.cost_nanos ?? 0)),
      latencyAvgMs: requests ? Math.round((num(row.latency_sum_ms) / requests) * 10) / 10 : null,
      ...routingCounts(row, requests),
    };
  });
}

type LogRow = RowOf<
  typeof RequestLog,
  | 'id' | 'project_id' | 'api_key_id' | 'endpoint' | 'provider' | 'model' | 'input_tokens' | 'output_tokens' | 'cached_tokens' | 'cache_write_tokens' | 'cost_nanos'
  | 'paid_by' | 'latency_ms' | 'ttft_ms' | 'status' | 'error' | 'cached' | 'streamed' | 'canceled' | 'created_at' | 'attempts'
> &
  Partial<RowOf<typeof RequestLog, 'request_body' | 'response_body'>> & { api_key_name: string | null; api_key_prefix: string | null };

function logView(r: LogRow) {
  return {
    id: String(r.id),
    createdAt: new Date(r.created_at),
    projectId: r.project_id,
    apiKey: { id: r.api_key_id, name: r.api_key_name, prefix: r.api_key_prefix },
    /** Which API the call came through: 'chat.completions', 'messages', 'responses', 'embeddings'. */
    endpoint: r.endpoint,
    provider: r.provider,
    model: r.model,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cachedTokens: r.cached_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    cost: nanosToDecimal(BigInt(r.cost_nanos)),
    paidBy: r.paid_by,
    latencyMs: r.latency_ms,
    ttftMs: r.ttft_ms,
    status: r.status,
    error: r.error,
    cached: r.cached,
    streamed: r.streamed,
    canceled: r.canceled,
    /** The upstream attempts of a call that needed more than one, in order (the last answered); empty otherwise. */
    attempts: attemptsView(r.attempts),
  };
}

/** One upstream attempt as the log shows it: status 0 is a connection error or a timeout before headers. */
export interface AttemptView {
  provider: string;
  model: string;
  keyName: string;
  providerKeyId: string | null;
  status: number;
  latencyMs: number;
  error: string | null;
}

function attemptsView(stored: unknown): AttemptView[] {
  if (!Array.isArray(stored)) return [];
  return stored
    .filter((a): a is Record<string, unknown> => !!a && typeof a === 'object')
    .map((a) => ({
      provider: String(a.provider ?? ''),
      model: String(a.model ?? ''),
      keyName: String(a.keyName ?? ''),
      providerKeyId: typeof a.providerKeyId === 'string' ? a.providerKeyId : null,
      status: Number(a.status ?? 0),
      latencyMs: Number(a.latencyMs ?? 0),
      error: typeof a.error === 'string' ? a.error : null,
    }));
}

const LOG_SELECT = `select l.id, l.project_id, l.api_key_id, l.endpoint, k.name as api_key_name, k.prefix as api_key_prefix, l.provider, l.model, l.input_tokens,
  l.output_tokens, l.cached_tokens, l.cache_write_tokens, l.cost_nanos, l.paid_by, l.latency_ms, l.ttft_ms, l.status, l.error, l.cached, l.streamed, l.canceled, l.created_at, l.attempts`;

export async function listLogs(
  em: EntityManager,
  input: {
    orgId: string; projectId?: string; cursor?: string; limit?: number; apiKeyId?: string; model?: string; provider?: string;
    status?: 'success' | 'error'; cached?: boolean; from?: Date; to?: Date; search?: string; endpoint?: string;
  },
) {
  const limit = input.limit ?? 50;
  const parts = ['l.org_id = ?'];
  const params: unknown[] = [input.orgId];
  const add = (sql: string, value: unknown) => {
    parts.push(sql);
    params.push(value);
  };
  if (input.projectId) add('l.project_id = ?', input.projectId);
  if (input.cursor) add('l.id < ?', input.cursor);
  if (input.apiKeyId) add('l.api_key_id = ?', input.apiKeyId);
  if (input.model) add('l.model = ?', input.model);
  if (input.provider) add('l.provider = ?', input.provider);
  if (input.endpoint) add('l.endpoint = ?', input.endpoint);
  if (input.status) parts.push(input.status === 'error' ? 'l.status >= 400' : 'l.status < 400');
  if (input.cached !== undefined) add('l.cached = ?', input.cached);
  let from = input.from;
  if (input.search) {
    // Bounded: one organization, a time range of at most SEARCH_MAX_DAYS (daily partitions outside it
    // are not read), rows with bodies only, and a statement timeout.
    const to = input.to ?? new Date();
    from ??= new Date(to.getTime() - SEARCH_DEFAULT_DAYS * DAY_MS);
    if (to.getTime() - from.getTime() > SEARCH_MAX_DAYS * DAY_MS) throw badRequest(`a search covers at most ${SEARCH_MAX_DAYS} days: narrow the time range`);
    const pattern = `%${likeEscape(input.search)}%`;
    parts.push(`(l.request_body is not null or l.response_body is not null) and (l.request_body::text ilike ? or l.response_body::text ilike ?)`);
    params.push(pattern, pattern);
  }
  if (from) add('l.created_at >= ?', from.toISOString());
  if (input.to) add('l.created_at < ?', input.to.toISOString());
  const sql = `${LOG_SELECT} from request_log l left join api_key k on k.id = l.api_key_id where ${parts.join(' and ')} order by l.id desc limit ?`;
  const rows = input.search ? await searchWithTimeout(em, sql, [...params, limit + 1]) : await em.execute<LogRow[]>(sql, [...params, limit + 1]);
  const page = rows.slice(0, limit);
  return { items: page.map(logView), nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null };
}

const DAY_MS = 86_400_000;
const SEARCH_TIMEOUT_MS = 5_000;

/** `text` matched literally by ILIKE (its own %, _ and \\ escaped). */
function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** A body search, given at most SEARCH_TIMEOUT_MS: one that takes longer asks for a narrower range instead of holding a connection. */
async function searchWithTimeout(em: EntityManager, sql: string, params: unknown[]): Promise<LogRow[]> {
  try {
    return await em.transactional(async (tx) => {
      await tx.execute(`set local statement_timeout = ${SEARCH_TIMEOUT_MS}`);
      return tx.execute<LogRow[]>(sql, params);
    });
  } catch (err) {
    if ((err as { code?: string }).code === '57014') throw badRequest('the search took too long: narrow the time range or add filters');
    throw err;
  }
}

/** One log with its bodies (present only for calls made while the retention level was `retain`). */
export async function getLog(em: EntityManager, orgId: string, logId: string) {
  const rows = await em.execute<LogRow[]>(`${LOG_SELECT}, l.request_body, l.response_body from request_log l left join api_key k on k.id = l.api_key_id where l.org_id = ? and l.id = ?`, [orgId, logId]);
  const row = rows[0];
  if (!row) throw notFound('log');
  return { ...logView(row), requestBody: row.request_body ?? null, responseBody: row.response_body ?? null };
}
