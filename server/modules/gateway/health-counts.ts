/**
 * Provider health's counts (server/modules/gateway/health.ts) and their table, provider_health:
 * attempts, failures and latency / time-to-first-token histograms per organization, provider,
 * credential and minute; how they add up, how they read back, and the figures they give.
 */
import { histogramQuantile, LATENCY_BUCKET_COUNT } from '../usage/histogram.js';

/** Attempts of one (organization, provider, credential, minute). */
export interface HealthCounts {
  calls: number;
  failures: number;
  /** Latency histogram (LATENCY_BOUNDS_MS buckets). */
  lat: number[];
  /** Time-to-first-token histogram, for attempts that had a first token. */
  ttft: number[];
  /** Epoch ms until which the credential is cooled down, or null. */
  cooledUntil: number | null;
}
export interface HealthRow extends HealthCounts {
  orgId: string;
  provider: string;
  credential: string;
  /** Epoch ms of the minute's start. */
  minute: number;
}

export const emptyHealthCounts = (): HealthCounts => ({ calls: 0, failures: 0, lat: new Array<number>(LATENCY_BUCKET_COUNT).fill(0), ttft: new Array<number>(LATENCY_BUCKET_COUNT).fill(0), cooledUntil: null });

/** Adds `from` into `into` (cool-downs: the later wins). */
export function addCounts(into: HealthCounts, from: HealthCounts): void {
  into.calls += from.calls;
  into.failures += from.failures;
  for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) {
    into.lat[i]! += from.lat[i]!;
    into.ttft[i]! += from.ttft[i]!;
  }
  if (from.cooledUntil !== null && (into.cooledUntil === null || from.cooledUntil > into.cooledUntil)) into.cooledUntil = from.cooledUntil;
}

/** Calls, success rate and percentiles of summed counts (null where there is no data). */
export function summarize(counts: HealthCounts) {
  return {
    calls: counts.calls,
    failures: counts.failures,
    successRate: counts.calls === 0 ? null : (counts.calls - counts.failures) / counts.calls,
    latencyP50Ms: histogramQuantile(counts.lat, 0.5),
    latencyP95Ms: histogramQuantile(counts.lat, 0.95),
    ttftP50Ms: histogramQuantile(counts.ttft, 0.5),
    ttftP95Ms: histogramQuantile(counts.ttft, 0.95),
  };
}

const LAT_COLUMNS = Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => `lat_b${i}`);
const TTFT_COLUMNS = Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => `ttft_b${i}`);
const COUNT_COLUMNS = ['calls', 'failures', ...LAT_COLUMNS, ...TTFT_COLUMNS];
export const UPSERT_SQL = `insert into provider_health (org_id, provider, credential, minute, ${COUNT_COLUMNS.join(', ')}, cooled_until)
  select v.* from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], ${COUNT_COLUMNS.map((_, i) => `$${i + 5}::int[]`).join(', ')}, $${COUNT_COLUMNS.length + 5}::timestamptz[])
    as v(org_id, provider, credential, minute, ${COUNT_COLUMNS.join(', ')}, cooled_until)
   where exists (select 1 from organization o where o.id = v.org_id)
  on conflict (org_id, provider, credential, minute) do update set
    ${COUNT_COLUMNS.map((c) => `${c} = provider_health.${c} + excluded.${c}`).join(', ')},
    cooled_until = greatest(provider_health.cooled_until, excluded.cooled_until)`;
export const HEALTH_SELECT_COLUMNS = `org_id, provider, credential, minute, ${COUNT_COLUMNS.join(', ')}, cooled_until`;

export type HealthDbRow = Record<string, unknown> & { org_id: string; provider: string; credential: string; minute: Date; cooled_until: Date | null };
/** A provider_health row as counts. */
export function healthRowOf(r: HealthDbRow): HealthRow {
  return {
    orgId: r.org_id,
    provider: r.provider,
    credential: r.credential,
    minute: new Date(r.minute).getTime(),
    calls: Number(r.calls),
    failures: Number(r.failures),
    lat: LAT_COLUMNS.map((c) => Number(r[c])),
    ttft: TTFT_COLUMNS.map((c) => Number(r[c])),
    cooledUntil: r.cooled_until ? new Date(r.cooled_until).getTime() : null,
  };
}
export const SUMS_SQL = `select '' as org_id, provider, credential, minute, ${COUNT_COLUMNS.map((c) => `sum(${c})::int as ${c}`).join(', ')}, max(cooled_until) as cooled_until
  from provider_health where minute >= $1 group by provider, credential, minute`;

