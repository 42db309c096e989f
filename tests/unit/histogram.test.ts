/**
 * Latency histograms: which bucket a latency falls in, and percentiles interpolated linearly inside
 * the bucket that holds them. Expected values are worked out by hand from the bucket bounds.
 */
import { describe, expect, it } from 'vitest';
import { histogramQuantile, LATENCY_BOUNDS_MS, LATENCY_BUCKET_COUNT, LATENCY_COLUMNS, latencyBucket } from '../../server/modules/usage/histogram.js';

/** A histogram with `n` samples in bucket `i` for each [i, n]. */
function hist(...entries: [number, number][]): number[] {
  const counts = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (const [i, n] of entries) counts[i] = n;
  return counts;
}

describe('latency buckets', () => {
  it('has 32 buckets, increasing bounds, the last open-ended, one column each', () => {
    expect(LATENCY_BUCKET_COUNT).toBe(32);
    expect(LATENCY_COLUMNS[0]).toBe('lat_b0');
    expect(LATENCY_COLUMNS[31]).toBe('lat_b31');
    for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) expect(LATENCY_BOUNDS_MS[i]!).toBeGreaterThan(LATENCY_BOUNDS_MS[i - 1]!);
    expect(LATENCY_BOUNDS_MS[31]).toBe(Infinity);
  });

  it('puts a latency in the first bucket whose inclusive upper bound holds it', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(1)).toBe(0);
    expect(latencyBucket(1.01)).toBe(1);
    expect(latencyBucket(2)).toBe(1);
    expect(latencyBucket(3)).toBe(2);
    expect(latencyBucket(150)).toBe(9);
    expect(latencyBucket(151)).toBe(10);
    expect(latencyBucket(60_000)).toBe(30);
    expect(latencyBucket(60_001)).toBe(31);
    expect(latencyBucket(Number.MAX_SAFE_INTEGER)).toBe(31);
  });
});

describe('histogram quantiles', () => {
  it('is null for an empty histogram', () => {
    expect(histogramQuantile(hist(), 0.5)).toBeNull();
  });

  it('interpolates inside a single bucket', () => {
    // 10 samples in (100, 150]: rank 5 is halfway, rank 9.5 is 95% of the way.
    const h = hist([9, 10]);
    expect(histogramQuantile(h, 0.5)).toBe(125);
    expect(histogramQuantile(h, 0.95)).toBe(147.5);
    expect(histogramQuantile(h, 0.99)).toBe(149.5);
    expect(histogramQuantile(h, 0)).toBe(100);
    expect(histogramQuantile(h, 1)).toBe(150);
  });

  it('walks past earlier buckets to the one holding the rank', () => {
    // 90 samples in (5, 10], 10 in (800, 1000].
    const h = hist([3, 90], [16, 10]);
    expect(histogramQuantile(h, 0.5)).toBe(7.8); // 5 + 5 × 50/90 = 7.777…, to one decimal
    expect(histogramQuantile(h, 0.9)).toBe(10); // the 90th sample is the last of the first bucket
    expect(histogramQuantile(h, 0.95)).toBe(900); // 800 + 200 × 5/10
    expect(histogramQuantile(h, 0.99)).toBe(980); // 800 + 200 × 9/10
  });

  it('starts the first bucket at 0 ms and skips empty buckets', () => {
    expect(histogramQuantile(hist([0, 4]), 0.5)).toBe(0.5);
    expect(histogramQuantile(hist([2, 5]), 0.5)).toBe(3.5); // (2, 5]: 2 + 3 × 2.5/5
    expect(histogramQuantile(hist([0, 1], [2, 3]), 0.5)).toBe(3); // rank 2: first of (2, 5]'s 3 → 2 + 3 × 1/3
  });

  it('answers the lower bound for the open-ended last bucket (nothing to interpolate towards)', () => {
    expect(histogramQuantile(hist([31, 3]), 0.5)).toBe(60_000);
    expect(histogramQuantile(hist([30, 1], [31, 1]), 0.99)).toBe(60_000);
    expect(histogramQuantile(hist([30, 1], [31, 1]), 0.25)).toBe(45_000); // (30000, 60000]: halfway through its one sample
  });

  it('grows with q', () => {
    const h = hist([2, 3], [8, 40], [12, 30], [20, 20], [25, 7]);
    let last = -1;
    for (let q = 0; q <= 1.0001; q += 0.01) {
      const v = histogramQuantile(h, Math.min(q, 1))!;
      expect(v).toBeGreaterThanOrEqual(last);
      last = v;
    }
    expect(last).toBe(8000); // q = 1: the upper bound of the last non-empty bucket, (6500, 8000]
  });
});
