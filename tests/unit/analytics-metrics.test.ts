/**
 * What analytics make of a row of summed rollups (as PostgreSQL returns sums: decimal strings):
 * rates, averages, money as exact decimals, and latency percentiles from the histogram columns.
 */
import { describe, expect, it } from 'vitest';
import { metrics } from '../../server/modules/analytics/service.js';
import { LATENCY_COLUMNS } from '../../server/modules/usage/histogram.js';

describe('analytics metrics of summed rollups', () => {
  it('computes rates, averages, money and percentiles from the sums', () => {
    const row: Record<string, string | null> = Object.fromEntries(LATENCY_COLUMNS.map((c) => [c, '0']));
    Object.assign(row, {
      requests: '200',
      errors: '10',
      cache_hits: '50',
      input_tokens: '3000000000',
      output_tokens: '12345',
      cached_tokens: '777',
      // Beyond 2^53 nano-dollars: must come out exact, not rounded through a double.
      cost_nanos: '9007199254740993',
      charged_nanos: '1500000001',
      latency_sum_ms: '30001',
      ttft_sum_ms: '1000',
      ttft_count: '3',
      lat_b9: '180', // (100, 150]
      lat_b16: '20', // (800, 1000]
      retried: '8', // calls that needed more than one attempt
      fell_back: '3', // of them, answered by another provider or model
    });
    expect(metrics(row)).toEqual({
      requests: 200,
      errors: 10,
      errorRate: 0.05,
      cacheHits: 50,
      cacheHitRate: 0.25,
      inputTokens: 3_000_000_000,
      outputTokens: 12345,
      cachedTokens: 777,
      cost: '9007199.254740993',
      charged: '1.500000001',
      latencyAvgMs: 150, // 30001 / 200 = 150.005, to one decimal
      latencyP50Ms: 127.8, // rank 100 of 180 in (100, 150]: 100 + 50 × 100/180 = 127.77…
      latencyP95Ms: 900, // rank 190: the 10th of 20 in (800, 1000]
      latencyP99Ms: 980, // rank 198: the 18th of 20
      ttftAvgMs: 333.3,
      retried: 8,
      retryRate: 0.04,
      fellBack: 3,
      fallbackRate: 0.015,
    });
  });

  it('answers zeros and nulls, not NaN, for an empty range', () => {
    expect(metrics({})).toEqual({
      requests: 0,
      errors: 0,
      errorRate: 0,
      cacheHits: 0,
      cacheHitRate: 0,
      inputTokens: 0,
      outputTokens: 0,
      cachedTokens: 0,
      cost: '0.00',
      charged: '0.00',
      latencyAvgMs: null,
      latencyP50Ms: null,
      latencyP95Ms: null,
      latencyP99Ms: null,
      ttftAvgMs: null,
      retried: 0,
      retryRate: 0,
      fellBack: 0,
      fallbackRate: 0,
    });
  });
});
