/**
 * The operator's metrics (`GET /metrics`, Prometheus text, on the registry in failures.ts). Names
 * and labels are documented in docs/operations.md; keep that table in step.
 *
 * Gateway calls are counted from the usage records the meter receives (one record per call, with
 * its provider, model, status and timings), so every endpoint is counted the same way without the
 * handlers knowing about metrics. Label values are bounded: models outside the catalog are "other",
 * providers outside the known list are "other", statuses are HTTP codes (100-999 after
 * storableRecord). The per-call cost is a map lookup and a few additions (CallCounter, CallHistogram).
 *
 * Gauges that read live state (open sockets, pools, pending records) are collected at scrape time
 * from the sources each built app registers (`observeApp`), so nothing runs on the hot path.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type LabelValues, type Metric } from 'prom-client';
import { metricsRegistry } from './failures.js';
import { MODEL_CATALOG, PROVIDERS, splitBedrockProfile } from '../../shared/models.js';
import { traceGatewayCall } from './tracing.js';

const registers = [metricsRegistry];

// Process CPU, memory, event-loop delay and GC (process_* and nodejs_*).
collectDefaultMetrics({ register: metricsRegistry });

const CATALOG_MODELS = new Set(MODEL_CATALOG.map((m) => m.id));
const KNOWN_PROVIDERS = new Set<string>([...PROVIDERS, 'custom', 'unknown']);

/** The model as a label value: a catalog id (Bedrock's without its inference profile), else "other" (clients may send any string). */
export function modelLabel(model: string): string {
  if (CATALOG_MODELS.has(model)) return model;
  const bare = splitBedrockProfile(model).model;
  return CATALOG_MODELS.has(bare) ? bare : 'other';
}
export function providerLabel(provider: string): string {
  return KNOWN_PROVIDERS.has(provider) ? provider : 'other';
}
/** Endpoint names are chosen by the gateway's code (`chat.completions`, `embeddings`, ...); cut anything odd. */
function endpointLabel(endpoint: string): string {
  return endpoint.length <= 40 ? endpoint : 'other';
}

/**
 * The per-call series, kept in plain numbers: a call costs a map lookup and a few additions
 * (prom-client's own observe hashes its labels on every call, several microseconds under load).
 * Registered with the registry like any metric; get() builds the samples at scrape time.
 */
class CallCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly all = new Map<string, { labels: Record<string, string>; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {
    metricsRegistry.registerMetric(this as unknown as Metric);
  }
  series(labels: Record<string, string>): { value: number } {
    const key = this.labelNames.map((l) => labels[l]).join('\u0001');
    let series = this.all.get(key);
    if (!series) this.all.set(key, (series = { labels, value: 0 }));
    return series;
  }
  get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.all.values()].map((s) => ({ labels: s.labels, value: s.value })) };
  }
  reset() {
    for (const s of this.all.values()) s.value = 0;
  }
}

interface HistogramSeries {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

class CallHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all = new Map<string, HistogramSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    metricsRegistry.registerMetric(this as unknown as Metric);
  }
  series(labels: Record<string, string>): HistogramSeries {
    const key = this.labelNames.map((l) => labels[l]).join('\u0001');
    let series = this.all.get(key);
    if (!series) this.all.set(key, (series = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    return series;
  }
  observe(series: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }
  get() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const s of this.all.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: i < this.bounds.length ? this.bounds[i]! : '+Inf' }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum }, { metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
  reset() {
    for (const s of this.all.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

const requests = new CallCounter(
  'gateway_requests_total',
  'Gateway calls answered (one per usage record), by endpoint, provider, model (catalog id or "other") and HTTP status',
  ['endpoint', 'provider', 'model', 'status'],
);
const requestDuration = new CallHistogram(
  'gateway_request_duration_seconds',
  'Gateway call duration, from the request to the last byte of the answer',
  ['endpoint', 'provider'],
  [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
);
const timeToFirstToken = new CallHistogram(
  'gateway_time_to_first_token_seconds',
  'Streamed gateway calls: time from the request to the first token sent',
  ['endpoint', 'provider'],
  [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
);
const upstreamErrors = new Counter({
  name: 'gateway_upstream_errors_total',
  help: 'Gateway calls that failed because of the upstream provider (HTTP 502: it failed, refused our credentials or was unreachable; 504: it timed out)',
  labelNames: ['provider', 'status'] as const,
  registers,
});

interface CallSeries {
  requests: { value: number };
  duration: HistogramSeries;
  ttft: HistogramSeries;
}
/** Series by endpoint, provider, model and status as the records carry them (before label mapping). */
const callSeries = new Map<string, CallSeries>();
const MAX_CACHED_SERIES = 10_000;

/** What of a usage record the metrics read (UsageRecord satisfies it). */
export interface ObservedCall {
  endpoint?: string;
  provider: string;
  model: string;
  status: number;
  latencyMs: number;
  ttftMs: number | null;
  cached: boolean;
  streamed: boolean;
  error: string | null;
}

/** Called once per gateway call, by UsageMeter.record. */
export function observeGatewayCall(r: ObservedCall): void {
  const endpoint = r.endpoint ?? 'chat.completions';
  const key = `${endpoint}\u0001${r.provider}\u0001${r.model}\u0001${r.status}`;
  let series = callSeries.get(key);
  if (!series) {
    const provider = providerLabel(r.provider);
    const ep = endpointLabel(endpoint);
    series = {
      requests: requests.series({ endpoint: ep, provider, model: modelLabel(r.model), status: String(r.status) }),
      duration: requestDuration.series({ endpoint: ep, provider }),
      ttft: timeToFirstToken.series({ endpoint: ep, provider }),
    };
    // Raw model names are unbounded; the series behind them are not (labels are mapped), so forgetting the map is harmless.
    if (callSeries.size >= MAX_CACHED_SERIES) callSeries.clear();
    callSeries.set(key, series);
  }
  series.requests.value++;
  requestDuration.observe(series.duration, r.latencyMs / 1000);
  if (r.ttftMs !== null) timeToFirstToken.observe(series.ttft, r.ttftMs / 1000);
  if (r.status === 502 || r.status === 504) upstreamErrors.inc({ provider: providerLabel(r.provider), status: String(r.status) });
  traceGatewayCall(r, endpoint);
}

const meterBatchRecords = new Histogram({
  name: 'gateway_meter_batch_records',
  help: 'Usage records per committed meter batch (each batch is one transaction)',
  buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000],
  registers,
});
const meterCommitLag = new Histogram({
  name: 'gateway_meter_commit_lag_seconds',
  help: "Time from a batch's oldest usage record reaching the meter to the batch's commit (how long a call is served but not yet logged and charged)",
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers,
});

/** Called by the meter once per committed batch. */
export function observeMeterBatch(records: number, lagSeconds: number): void {
  meterBatchRecords.observe(records);
  meterCommitLag.observe(lagSeconds);
}

const ledgerPostings = new Counter({
  name: 'gateway_ledger_postings_total',
  help: 'Credit ledger entries committed, by type (usage, purchase, refund, ...) and status',
  labelNames: ['type', 'status'] as const,
  registers,
});
/** Called after the commit of each ledger entry. */
export function observeLedgerPosting(type: string, status: string): void {
  ledgerPostings.inc({ type, status });
}

const webhookAttempts = new Counter({
  name: 'gateway_webhook_delivery_attempts_total',
  help: 'Webhook delivery attempts, by outcome: delivered, retrying (will be tried again), failed (given up)',
  labelNames: ['outcome'] as const,
  registers,
});
const webhookAttemptSeconds = new Histogram({
  name: 'gateway_webhook_delivery_seconds',
  help: "Time a webhook endpoint took to answer a delivery (or to fail)",
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});
/** Called by the webhook dispatcher after each delivery attempt is recorded. */
export function observeWebhookAttempt(outcome: 'delivered' | 'retrying' | 'failed', seconds: number): void {
  webhookAttempts.inc({ outcome });
  webhookAttemptSeconds.observe(seconds);
}

const liveEventLag = new Histogram({
  name: 'gateway_live_event_lag_seconds',
  help: "Time from an organization event being recorded to its delivery to this instance's live subscribers",
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});
/** Called by the event bus when it hands an event (recorded at `at`, ISO time) to this instance's subscribers. */
export function observeLiveEventDelivery(at: string | undefined): void {
  if (!at) return;
  const lag = (Date.now() - Date.parse(at)) / 1000;
  if (Number.isFinite(lag)) liveEventLag.observe(Math.max(0, lag));
}

const jobRuns = new Counter({
  name: 'gateway_jobs_total',
  help: 'Background job runs (pg-boss), by queue and outcome (completed, failed: pg-boss retries failed jobs that have retries left)',
  labelNames: ['queue', 'outcome'] as const,
  registers,
});
const jobDuration = new Histogram({
  name: 'gateway_job_duration_seconds',
  help: 'Background job run time, by queue',
  labelNames: ['queue'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
  registers,
});
export function observeJob(queue: string, outcome: 'completed' | 'failed', seconds: number): void {
  jobRuns.inc({ queue, outcome });
  jobDuration.observe({ queue }, seconds);
}

const trpcCalls = new Counter({
  name: 'gateway_trpc_calls_total',
  help: 'tRPC procedure calls (dashboard and API clients), by procedure, type and result code (OK or the tRPC error code)',
  labelNames: ['path', 'type', 'code'] as const,
  registers,
});
const trpcDuration = new Histogram({
  name: 'gateway_trpc_duration_seconds',
  help: 'tRPC procedure run time, by type (a subscription: until its stream starts)',
  labelNames: ['type'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});
export function observeProcedure(path: string, type: string, code: string, seconds: number): void {
  trpcCalls.inc({ path, type, code });
  trpcDuration.observe({ type }, seconds);
}

/** A connection pool's state at scrape time. */
export interface PoolState {
  used: number;
  idle: number;
  waiting: number;
}

/** What a running app reports at scrape time (server/app.ts registers one per built app). */
export interface AppSource {
  openWebSockets(): number;
  pools(): Record<string, PoolState>;
  meter(): { pending: number; failures: number; dropped: number; stripped: number } | null;
}
const sources = new Set<AppSource>();

/** Registers a built app's live state for scraping; returns the function that removes it (on close). */
export function observeApp(source: AppSource): () => void {
  sources.add(source);
  return () => void sources.delete(source);
}

function sum(read: (s: AppSource) => number): number {
  let n = 0;
  for (const s of sources) n += read(s);
  return n;
}

new Gauge({
  name: 'gateway_websockets_open',
  help: 'Open WebSocket connections (tRPC over /trpc)',
  registers,
  collect() {
    this.set(sum((s) => s.openWebSockets()));
  },
});
const liveSubscriptions = new Gauge({
  name: 'gateway_live_subscriptions',
  help: 'Live organization event streams open on this instance (live.organization subscriptions)',
  registers,
});
/**
 * Called when a live stream starts, and once when it ends (the stream keeps its own state: no
 * closure per subscriber, bench/live-fanout).
 */
export function observeLiveSubscription(change: 'opened' | 'closed'): void {
  if (change === 'opened') liveSubscriptions.inc();
  else liveSubscriptions.dec();
}
new Gauge({
  name: 'gateway_db_pool_connections',
  help: 'Database connections by pool (orm: procedures and the gateway; meter: usage batches) and state (used, idle; waiting: callers queued for one)',
  labelNames: ['pool', 'state'] as const,
  registers,
  collect() {
    this.reset();
    for (const s of sources) {
      for (const [pool, state] of Object.entries(s.pools())) {
        for (const k of ['used', 'idle', 'waiting'] as const) this.inc({ pool, state: k } as LabelValues<'pool' | 'state'>, state[k]);
      }
    }
  },
});
new Gauge({
  name: 'gateway_meter_pending_records',
  help: 'Usage records answered and not yet committed (what a kill -9 would lose)',
  registers,
  collect() {
    this.set(sum((s) => s.meter()?.pending ?? 0));
  },
});
// Kept in the meter's own stats; reported as counters at scrape time.
for (const [name, help, key] of [
  ['gateway_meter_batch_failures_total', 'Failed meter batch commit attempts (each is retried; see the error log)', 'failures'],
  ['gateway_meter_records_dropped_total', 'Usage records given up because the database refused them even without bodies (logged in full)', 'dropped'],
  ['gateway_meter_records_stripped_total', 'Usage records written without their bodies because the database refused those', 'stripped'],
] as const) {
  new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(sum((s) => s.meter()?.[key] ?? 0));
    },
  });
}
