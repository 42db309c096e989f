/**
 * Latency histogram of the hourly rollups: fixed buckets (columns lat_b0..lat_b31), so a 30-day
 * percentile is a sum of a few thousand rows, not a sort of millions of logs. Percentiles are
 * interpolated linearly inside the bucket that holds them: exact to the bucket's width.
 */

/** Inclusive upper bounds in milliseconds; the last bucket is everything above 60 s. */
export const LATENCY_BOUNDS_MS = [
  1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500, 650, 800, 1000, 1300, 1600, 2000, 2500, 3000, 4000, 5000, 6500, 8000, 10000,
  15000, 20000, 30000, 60000, Infinity,
] as const;
export const LATENCY_BUCKET_COUNT = LATENCY_BOUNDS_MS.length;
export const LATENCY_COLUMNS = Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => `lat_b${i}`);

export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BUCKET_COUNT - 1;
}

/** The q-quantile (0..1) of a histogram, or null when it is empty. */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const upper = LATENCY_BOUNDS_MS[i]!;
      if (!Number.isFinite(upper)) return lower;
      const within = Math.max(0, rank - seen) / c;
      return Math.round((lower + (upper - lower) * within) * 10) / 10;
    }
    seen += c;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 2]!;
}
