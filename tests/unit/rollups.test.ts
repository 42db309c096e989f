/**
 * The meter's in-memory rollups (before they are upserted): records grouped per organization, hour,
 * project, API key, provider and model; counts, token and money sums (money exact in bigint),
 * latency histogram buckets; then summed per organization, hour and project.
 * Sums are compared as BigInt so the tests hold whether a column travels as a number or a string.
 */
import { describe, expect, it } from 'vitest';
import { projectRollupRows, rollupRows, storableRecord, MAX_STORED_ATTEMPTS, type UsageAttempt, type UsageRecord } from '../../server/modules/usage/meter.js';
import { LATENCY_BUCKET_COUNT } from '../../server/modules/usage/histogram.js';

const ORG = '00000000-0000-4000-8000-000000000001';
const ORG2 = '00000000-0000-4000-8000-000000000002';
const PROJECT = '00000000-0000-4000-8000-0000000000a1';
const PROJECT2 = '00000000-0000-4000-8000-0000000000a2';
const KEY = '00000000-0000-4000-8000-0000000000b1';
const KEY2 = '00000000-0000-4000-8000-0000000000b2';

function rec(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    orgId: ORG,
    projectId: PROJECT,
    apiKeyId: KEY,
    endpoint: 'chat.completions',
    provider: 'openai',
    model: 'gpt-4o-mini',
    inputTokens: 100,
    outputTokens: 10,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    costNanos: 1_000n,
    paidBy: 'credits',
    latencyMs: 120,
    ttftMs: null,
    status: 200,
    error: null,
    cached: false,
    streamed: false,
    canceled: false,
    requestBody: null,
    responseBody: null,
    createdAt: new Date('2026-12-01T10:15:00.000Z'),
    ...over,
  };
}

type Row = Record<string, string | number>;
const big = (v: string | number | undefined) => BigInt(v ?? 0);
/** The row's sums as BigInt (histogram columns left out unless non-zero). */
function sums(row: Row): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(row)) {
    if (['org_id', 'hour', 'project_id', 'api_key_id', 'provider', 'model', 'endpoint'].includes(k)) continue;
    if (k.startsWith('lat_b') && big(v) === 0n) continue;
    out[k] = big(v);
  }
  return out;
}
const zero = { requests: 0n, errors: 0n, cache_hits: 0n, canceled: 0n, streamed: 0n, input_tokens: 0n, output_tokens: 0n, cached_tokens: 0n, cost_nanos: 0n, charged_nanos: 0n, latency_sum_ms: 0n, ttft_sum_ms: 0n, ttft_count: 0n, retried: 0n, fell_back: 0n };

describe('rollupRows', () => {
  it('sums one group’s counts, tokens, money, latency and time to first token', () => {
    const rows = rollupRows([
      rec({ inputTokens: 100, outputTokens: 10, cachedTokens: 40, costNanos: 1_500n, latencyMs: 120.4, ttftMs: 30.6, streamed: true }),
      rec({ inputTokens: 7, outputTokens: 0, costNanos: 0n, latencyMs: 3, status: 502, error: 'upstream failed' }),
      rec({ inputTokens: 50, outputTokens: 5, cachedTokens: 50, costNanos: 0n, paidBy: 'cache', cached: true, latencyMs: 0.4 }),
      rec({ inputTokens: 20, outputTokens: 2, costNanos: 250n, latencyMs: 900, ttftMs: 99.5, streamed: true, canceled: true, status: 499 }),
    ]);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ org_id: ORG, hour: '2026-12-01T10:00:00.000Z', project_id: PROJECT, api_key_id: KEY, provider: 'openai', model: 'gpt-4o-mini' });
    expect(sums(row)).toEqual({
      ...zero,
      requests: 4n,
      errors: 2n, // 502 and 499
      cache_hits: 1n,
      canceled: 1n,
      streamed: 2n,
      input_tokens: 177n,
      output_tokens: 17n,
      cached_tokens: 90n,
      cost_nanos: 1_750n,
      charged_nanos: 1_750n,
      latency_sum_ms: 120n + 3n + 0n + 900n, // each rounded to a whole millisecond first
      ttft_sum_ms: 31n + 100n, // 30.6 → 31, 99.5 → 100; records without a TTFT are not counted
      ttft_count: 2n,
      // Histogram: 120 ms ≤ 150 (bucket 9), 3 ms ≤ 5 (bucket 2), 0 ms ≤ 1 (bucket 0), 900 ms ≤ 1000 (bucket 16).
      lat_b9: 1n,
      lat_b2: 1n,
      lat_b0: 1n,
      lat_b16: 1n,
    });
  });

  it('charges only what credits paid for; cost counts every call', () => {
    const rows = rollupRows([
      rec({ costNanos: 1_000n, paidBy: 'credits' }),
      rec({ costNanos: 20_000n, paidBy: 'provider_key' }),
      rec({ costNanos: 300_000n, paidBy: 'cache' }),
      rec({ costNanos: 4_000_000n, paidBy: 'none' }),
      rec({ costNanos: 50_000_000n, paidBy: 'credits' }),
    ]);
    expect(big(rows[0]!.cost_nanos)).toBe(54_321_000n);
    expect(big(rows[0]!.charged_nanos)).toBe(50_001_000n);
  });

  it('keeps money exact beyond 2^53 and token sums beyond 2^31', () => {
    const huge = 2n ** 53n + 1n; // not representable as a double
    const rows = rollupRows([
      rec({ costNanos: huge, inputTokens: 2_000_000_000, outputTokens: 2_000_000_000 }),
      rec({ costNanos: huge, inputTokens: 2_000_000_000, outputTokens: 2_000_000_000 }),
      rec({ costNanos: 1n, inputTokens: 2_000_000_000, outputTokens: 1 }),
    ]);
    expect(big(rows[0]!.cost_nanos)).toBe(2n ** 54n + 3n);
    expect(big(rows[0]!.charged_nanos)).toBe(2n ** 54n + 3n);
    expect(big(rows[0]!.input_tokens)).toBe(6_000_000_000n);
    expect(big(rows[0]!.output_tokens)).toBe(4_000_000_001n);
    // Serialized as the database receives it: the digits survive JSON.
    expect(JSON.parse(JSON.stringify(rows))[0].cost_nanos.toString()).toBe('18014398509481987');
  });

  it('buckets by UTC hour: the hour’s first millisecond in, the next hour’s first millisecond out', () => {
    const at = (iso: string) => rec({ createdAt: new Date(iso) });
    const rows = rollupRows([at('2026-12-01T10:00:00.000Z'), at('2026-12-01T10:59:59.999Z'), at('2026-12-01T11:00:00.000Z'), at('2026-12-02T00:30:00.000+02:00')]);
    const byHour = Object.fromEntries(rows.map((r) => [r.hour, big(r.requests)]));
    expect(byHour).toEqual({ '2026-12-01T10:00:00.000Z': 2n, '2026-12-01T11:00:00.000Z': 1n, '2026-12-01T22:00:00.000Z': 1n });
  });

  it('keeps every key part apart: organization, project, API key, provider, model', () => {
    const rows = rollupRows([
      rec(),
      rec(),
      rec({ orgId: ORG2 }),
      rec({ projectId: PROJECT2 }),
      rec({ apiKeyId: KEY2 }),
      rec({ provider: 'azure' }),
      rec({ model: 'gpt-4o' }),
    ]);
    expect(rows).toHaveLength(6);
    expect(rows.map((r) => big(r.requests)).sort()).toEqual([1n, 1n, 1n, 1n, 1n, 2n]);
    // Nothing is lost or doubled across the groups.
    expect(rows.reduce((a, r) => a + big(r.cost_nanos), 0n)).toBe(7_000n);
  });

  it('puts latencies on the bucket bounds in the bucket they close, and anything past 60 s in the last', () => {
    const bucketOf = (latencyMs: number) => {
      const row = rollupRows([rec({ latencyMs })])[0]!;
      const set = Object.entries(row).filter(([k, v]) => k.startsWith('lat_b') && big(v) === 1n);
      expect(set, `${latencyMs} ms`).toHaveLength(1);
      return Number(set[0]![0].slice('lat_b'.length));
    };
    expect(bucketOf(1)).toBe(0);
    expect(bucketOf(1.4)).toBe(0); // rounds to 1
    expect(bucketOf(1.5)).toBe(1); // rounds to 2
    expect(bucketOf(100)).toBe(8);
    expect(bucketOf(100.6)).toBe(9);
    expect(bucketOf(60_000)).toBe(LATENCY_BUCKET_COUNT - 2);
    expect(bucketOf(60_001)).toBe(LATENCY_BUCKET_COUNT - 1);
    expect(bucketOf(3_600_000)).toBe(LATENCY_BUCKET_COUNT - 1);
  });

  it('counts calls, not attempts: retried when a call needed more than one, fell_back when its last attempt went elsewhere', () => {
    const at = (provider: string, model: string, status: number): UsageAttempt => ({ provider, model, keyName: provider, providerKeyId: null, status, latencyMs: 10, error: status === 200 ? null : 'failed' });
    const rows = rollupRows(
      [
        rec(), // no attempts recorded (answered without going upstream, or before routing recorded them)
        rec({ attempts: [at('openai', 'gpt-4o-mini', 200)] }), // one attempt: neither
        rec({ attempts: [at('openai', 'gpt-4o-mini', 429), at('openai', 'gpt-4o-mini', 200)] }), // another key, same provider and model: retried only
        rec({ attempts: [at('azure', 'gpt-4o-mini', 0), at('openai', 'gpt-4o-mini', 200)] }), // another provider: retried and fell back
        rec({ attempts: [at('openai', 'gpt-4o', 500), at('openai', 'gpt-4o-mini', 200)] }), // another model: retried and fell back
        rec({ status: 502, attempts: [at('anthropic', 'claude', 500), at('openai', 'gpt-4o-mini', 502)] }), // fell back and failed at the end
      ].map(storableRecord),
    );
    expect(rows).toHaveLength(1);
    expect(sums(rows[0]!)).toMatchObject({ requests: 6n, errors: 1n, retried: 4n, fell_back: 3n });
    expect(sums(projectRollupRows(rows)[0]!)).toMatchObject({ requests: 6n, retried: 4n, fell_back: 3n });
  });

  it('keeps attempts only when there were several, repaired and bounded', () => {
    const at = (over: Partial<UsageAttempt> = {}): UsageAttempt => ({ provider: 'openai', model: 'gpt-4o-mini', keyName: 'openai', providerKeyId: null, status: 500, latencyMs: 12.6, error: 'boom', ...over });
    expect(storableRecord(rec()).attempts).toBeUndefined();
    expect(storableRecord(rec({ attempts: [] })).attempts).toBeUndefined();
    expect(storableRecord(rec({ attempts: [at()] })).attempts).toBeUndefined();
    const stored = storableRecord(rec({ attempts: [at({ error: 'a\u0000b\ud800c', keyName: 'k'.repeat(80), latencyMs: -3, status: 1234 }), at({ status: 200, error: null })] })).attempts!;
    expect(stored).toEqual([
      { provider: 'openai', model: 'gpt-4o-mini', keyName: 'k'.repeat(40), providerKeyId: null, status: 0, latencyMs: 0, error: 'a\ufffdb\ufffdc' },
      { provider: 'openai', model: 'gpt-4o-mini', keyName: 'openai', providerKeyId: null, status: 200, latencyMs: 13, error: null },
    ]);
    const many = Array.from({ length: MAX_STORED_ATTEMPTS + 5 }, (_, i) => at({ status: i === MAX_STORED_ATTEMPTS + 4 ? 200 : 500, model: `m${i}` }));
    const kept = storableRecord(rec({ attempts: many })).attempts!;
    expect(kept).toHaveLength(MAX_STORED_ATTEMPTS);
    expect(kept[kept.length - 1]).toMatchObject({ status: 200, model: `m${MAX_STORED_ATTEMPTS + 4}` });
  });

  it('returns no rows for no records', () => {
    expect(rollupRows([])).toEqual([]);
    expect(projectRollupRows([])).toEqual([]);
  });
});

describe('projectRollupRows', () => {
  it('sums the detailed rows per organization, hour and project, dropping key, provider and model', () => {
    const detailed = rollupRows([
      rec({ apiKeyId: KEY, provider: 'openai', model: 'gpt-4o-mini', costNanos: 2n ** 60n, inputTokens: 1, latencyMs: 10, ttftMs: 4 }),
      rec({ apiKeyId: KEY2, provider: 'openai', model: 'gpt-4o-mini', costNanos: 2n ** 60n, inputTokens: 2, latencyMs: 10, status: 500 }),
      rec({ apiKeyId: KEY, provider: 'anthropic', model: 'claude', costNanos: 5n, paidBy: 'provider_key', inputTokens: 3, latencyMs: 2000, ttftMs: 6 }),
      rec({ projectId: PROJECT2, costNanos: 7n, inputTokens: 4, latencyMs: 10 }),
      rec({ createdAt: new Date('2026-12-01T11:05:00.000Z'), costNanos: 11n, inputTokens: 5, latencyMs: 10 }),
    ]);
    expect(detailed).toHaveLength(5);
    const rows = projectRollupRows(detailed);
    expect(rows).toHaveLength(3);
    const find = (projectId: string, hour: string) => rows.find((r) => r.project_id === projectId && r.hour === hour)!;
    const main = find(PROJECT, '2026-12-01T10:00:00.000Z');
    expect(Object.keys(main)).not.toContain('api_key_id');
    expect(Object.keys(main)).not.toContain('provider');
    expect(Object.keys(main)).not.toContain('model');
    expect(main.org_id).toBe(ORG);
    expect(sums(main)).toEqual({
      ...zero,
      requests: 3n,
      errors: 1n,
      input_tokens: 6n,
      output_tokens: 30n,
      cost_nanos: 2n ** 61n + 5n,
      charged_nanos: 2n ** 61n,
      latency_sum_ms: 2020n,
      ttft_sum_ms: 10n,
      ttft_count: 2n,
      lat_b3: 2n, // 10 ms ≤ 10
      lat_b19: 1n, // 2000 ms ≤ 2000
    });
    expect(sums(find(PROJECT2, '2026-12-01T10:00:00.000Z'))).toMatchObject({ requests: 1n, cost_nanos: 7n, input_tokens: 4n });
    expect(sums(find(PROJECT, '2026-12-01T11:00:00.000Z'))).toMatchObject({ requests: 1n, cost_nanos: 11n, input_tokens: 5n });
  });

  it('adds up to the same totals as the detailed rows', () => {
    const records = Array.from({ length: 200 }, (_, i) =>
      rec({ apiKeyId: i % 2 ? KEY : KEY2, model: `m${i % 5}`, projectId: i % 3 ? PROJECT : PROJECT2, costNanos: BigInt(i) * 1_000_003n, inputTokens: i, latencyMs: i * 37, createdAt: new Date(Date.UTC(2026, 11, 1, i % 4, 0, 0)) }),
    );
    const detailed = rollupRows(records);
    const projects = projectRollupRows(detailed);
    expect(projects).toHaveLength(2 * 4);
    for (const column of Object.keys(zero)) {
      const total = (rows: Row[]) => rows.reduce((a, r) => a + big(r[column]), 0n);
      expect(total(projects), column).toBe(total(detailed));
    }
    expect(projects.reduce((a, r) => a + big(r.cost_nanos), 0n)).toBe(1_000_003n * ((199n * 200n) / 2n));
  });
});
