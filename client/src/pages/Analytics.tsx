/** Analytics: summary cards and uPlot charts over a range, by organization or project; live. */
import { A } from '@solidjs/router';
import { createMemo, createResource, createSignal, For, Show } from 'solid-js';
import type uPlot from 'uplot';
import { api } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { createUsage, RANGES, type BreakdownRow, type Point, type RangeId, type Summary } from '../state/usage.js';
import { BarList } from '../ui/BarList.js';
import { Chart, CHART_COLORS, timeChartOptions } from '../ui/Chart.js';
import { Card, EmptyState, Loading, LoadState, PageHeader, SelectField } from '../ui/components.js';
import { formatCost, formatCount, formatMs, formatPercent } from '../ui/usage-format.js';

export function AnalyticsPage() {
  const ctx = useOrg();
  const [range, setRange] = createSignal<RangeId>('7d');
  const [projectId, setProjectId] = createSignal<string>('');
  const [projects] = createResource(() => ctx.orgId(), (orgId) => api.project.list.query({ orgId }));
  const usage = createUsage(ctx, () => ({ range: range(), projectId: projectId() || null }), { breakdowns: true });
  const projectOptions = () => [{ value: '', label: 'All projects' }, ...(projects() ?? []).map((p) => ({ value: p.id, label: p.name }))];

  return (
    <div class="page">
      <PageHeader title="Analytics" description="Requests, errors, tokens, cost and latency of the gateway. Updates live while traffic flows." />
      <div class="toolbar analytics-filters" role="group" aria-label="Filters">
        <div class="toolbar-filter">
          <SelectField label="Range" value={range()} options={RANGES} onChange={setRange} />
        </div>
        <div class="toolbar-filter">
          <SelectField label="Project" value={projectId()} options={projectOptions()} onChange={setProjectId} />
        </div>
      </div>
      <LoadState loaded={usage.state.loaded} error={usage.state.error} retry={() => void usage.reload()} loading={<Loading label="Loading analytics…" />}>
        <SummaryCards summary={usage.state.summary!} />
        <Show when={usage.state.summary!.requests > 0} fallback={<NoTraffic range={RANGES.find((r) => r.value === range())!.label.toLowerCase()} />}>
          <div class="grid grid-2">
            <Card title="Requests and errors">
              <RequestsChart series={usage.state.series} testId="requests-chart" />
            </Card>
            <Card title="Cost">
              <CostChart series={usage.state.series} />
            </Card>
            <Card title="Tokens by model">
              <BreakdownBars rows={usage.state.byModel} label="Tokens by model" value={(r) => r.inputTokens + r.outputTokens} format={formatCount} color={CHART_COLORS[0]!} empty="No tokens in this range." testId="tokens-by-model" />
            </Card>
            <Card title="Provider distribution" description="Requests per provider (calls, however many attempts each made).">
              <BreakdownBars rows={usage.state.byProvider} label="Requests by provider" value={(r) => r.requests} format={formatCount} color={CHART_COLORS[4]!} empty="No requests in this range." testId="requests-by-provider" />
              <ProviderRouting rows={usage.state.byProvider} />
            </Card>
            <Card title="Endpoints" description="Requests per API (chat completions, messages, responses, embeddings).">
              <BreakdownBars rows={usage.state.byEndpoint} label="Requests by endpoint" value={(r) => r.requests} format={formatCount} color={CHART_COLORS[2]!} empty="No requests in this range." testId="requests-by-endpoint" />
            </Card>
            <Card title="Cache hit rate">
              <CacheChart series={usage.state.series} />
            </Card>
            <Card title="Latency" description="p50 and p95 per bucket.">
              <LatencyChart series={usage.state.series} />
            </Card>
          </div>
          <Card title="Cost by model">
            <BreakdownTable rows={usage.state.byModel} />
          </Card>
        </Show>
      </LoadState>
    </div>
  );
}

export function SummaryCards(props: { summary: Summary }) {
  const s = () => props.summary;
  const cards = () => [
    { label: 'Requests', value: formatCount(s().requests), hint: `${formatCount(s().cacheHits)} from cache`, id: 'summary-requests' },
    { label: 'Errors', value: formatCount(s().errors), hint: `${formatPercent(s().errorRate)} error rate`, id: 'summary-errors' },
    { label: 'Cache hits', value: formatPercent(s().cacheHitRate), hint: `${formatCount(s().cacheHits)} of ${formatCount(s().requests)} requests`, id: 'summary-cache' },
    { label: 'Tokens', value: formatCount(s().inputTokens + s().outputTokens), hint: `${formatCount(s().inputTokens)} in · ${formatCount(s().outputTokens)} out`, id: 'summary-tokens' },
    { label: 'Cost', value: formatCost(s().cost), hint: `${formatCost(s().charged)} on credits`, id: 'summary-cost' },
    { label: 'Latency p50', value: formatMs(s().latencyP50Ms), hint: `p95 ${formatMs(s().latencyP95Ms)}`, id: 'summary-latency' },
  ];
  return (
    <div class="grid grid-6" aria-live="polite">
      <For each={cards()}>
        {(c) => (
          <Card class="stat">
            <p class="stat-label">{c.label}</p>
            <p class="stat-value" data-testid={c.id}>
              {c.value}
            </p>
            <p class="stat-hint">{c.hint}</p>
          </Card>
        )}
      </For>
    </div>
  );
}

/** No requests in the range: say so, and where traffic comes from, instead of flat lines at zero. */
export function NoTraffic(props: { range: string; compact?: boolean }) {
  const ctx = useOrg();
  return (
    <div class="empty-state" classList={{ 'empty-state-card': !props.compact }} data-testid="no-traffic">
      <p class="empty-title">No requests in the {props.range}</p>
      <p>Charts appear here as soon as requests go through the gateway.</p>
      <p>
        <A href={`/org/${ctx.orgId()}/keys`}>Create an API key</A> and point an OpenAI-compatible client at this gateway.
      </p>
    </div>
  );
}

const xs = (series: readonly Point[]) => series.map((p) => new Date(p.t).getTime() / 1000);
/** Day buckets (the 30-day range) or hour buckets, from the spacing of the series. */
const bucketOf = (series: readonly Point[]): 'hour' | 'day' =>
  series.length > 1 && new Date(series[1]!.t).getTime() - new Date(series[0]!.t).getTime() >= 86_400_000 ? 'day' : 'hour';

export function RequestsChart(props: { series: readonly Point[]; testId?: string; height?: number }) {
  const data = createMemo<uPlot.AlignedData>(() => [xs(props.series), props.series.map((p) => p.requests), props.series.map((p) => p.errors)]);
  return (
    <Chart
      label="Requests and errors over time"
      testId={props.testId}
      height={props.height}
      data={data()}
      shape={bucketOf(props.series)}
      options={() =>
        timeChartOptions(
          [
            { label: 'Requests', color: CHART_COLORS[0]!, kind: 'bars' },
            { label: 'Errors', color: CHART_COLORS[1]!, kind: 'bars' },
          ],
          { y: 'count', bucket: bucketOf(props.series) },
        )
      }
    />
  );
}

export function CostChart(props: { series: readonly Point[]; height?: number }) {
  const data = createMemo<uPlot.AlignedData>(() => [xs(props.series), props.series.map((p) => Number(p.cost))]);
  return (
    <Show when={props.series.some((p) => Number(p.cost) > 0)} fallback={<EmptyState title="No cost in this range." />}>
      <Chart
        label="Cost over time"
        height={props.height}
        data={data()}
        shape={bucketOf(props.series)}
        options={() => timeChartOptions([{ label: 'Cost', color: CHART_COLORS[2]!, kind: 'bars' }], { y: 'money', bucket: bucketOf(props.series) })}
      />
    </Show>
  );
}

function CacheChart(props: { series: readonly Point[] }) {
  const data = createMemo<uPlot.AlignedData>(() => [xs(props.series), props.series.map((p) => (p.requests ? (p.cacheHits / p.requests) * 100 : null))]);
  return (
    <Chart
      label="Cache hit rate over time"
      data={data()}
      shape={bucketOf(props.series)}
      options={() => timeChartOptions([{ label: 'Cache hit rate', color: CHART_COLORS[3]! }], { y: 'percent', bucket: bucketOf(props.series) })}
    />
  );
}

function LatencyChart(props: { series: readonly Point[] }) {
  const data = createMemo<uPlot.AlignedData>(() => [xs(props.series), props.series.map((p) => p.latencyP50Ms ?? null), props.series.map((p) => p.latencyP95Ms ?? null)]);
  return (
    <Show when={props.series.some((p) => p.latencyP50Ms != null)} fallback={<EmptyState title="No latency measured in this range." />}>
      <Chart
        label="Latency p50 and p95 over time"
        data={data()}
        shape={bucketOf(props.series)}
        options={() =>
          timeChartOptions(
            [
              { label: 'p50', color: CHART_COLORS[0]! },
              { label: 'p95', color: CHART_COLORS[5]! },
            ],
            { y: 'ms', bucket: bucketOf(props.series) },
          )
        }
      />
    </Show>
  );
}

function BreakdownBars(props: { rows: readonly BreakdownRow[]; label: string; value: (r: BreakdownRow) => number; format: (v: number) => string; color: string; empty: string; testId?: string }) {
  const rows = createMemo(() => props.rows.map((r) => ({ key: r.key, label: r.label ?? r.key, value: props.value(r) })).filter((r) => r.value > 0));
  return (
    <Show when={rows().length > 0} fallback={<EmptyState title={props.empty} />}>
      <BarList rows={rows()} label={props.label} format={props.format} color={props.color} testId={props.testId} />
    </Show>
  );
}

/**
 * Per provider, the calls it answered that needed more than one attempt (retried) and those that
 * came to it, or ended at it, from another provider or model (fell back).
 */
function ProviderRouting(props: { rows: readonly BreakdownRow[] }) {
  const rows = createMemo(() => props.rows.filter((r) => r.retried > 0));
  return (
    <Show when={rows().length > 0} fallback={<Show when={props.rows.length > 0}><p class="muted small" style={{ 'margin-top': '10px' }} data-testid="provider-routing-none">No retries or fallbacks in this range.</p></Show>}>
      <div class="table-wrap provider-routing" style={{ 'margin-top': '12px' }}>
        <table class="table table-compact" data-testid="provider-routing">
          <caption class="muted small" style={{ 'text-align': 'left', 'padding-bottom': '4px' }}>Retries and fallbacks: calls that needed more than one attempt, and calls that ended at another provider or model than their first attempt's.</caption>
          <thead>
            <tr>
              <th scope="col">Provider</th>
              <th scope="col" class="num">Retried</th>
              <th scope="col" class="num">Fell back</th>
            </tr>
          </thead>
          <tbody>
            <For each={rows()}>
              {(r) => (
                <tr>
                  <td class="cell-title">{r.label ?? r.key}</td>
                  <td class="num">
                    {formatCount(r.retried)} <span class="muted small">{formatPercent(r.retryRate)}</span>
                  </td>
                  <td class="num">
                    {formatCount(r.fellBack)} <span class="muted small">{formatPercent(r.fallbackRate)}</span>
                  </td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>
    </Show>
  );
}

function BreakdownTable(props: { rows: readonly BreakdownRow[] }) {
  return (
    <Show when={props.rows.length > 0} fallback={<p class="muted">No usage in this range.</p>}>
      <div class="table-wrap">
        <table class="table table-stack">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" class="num">Requests</th>
              <th scope="col" class="num">Errors</th>
              <th scope="col" class="num">Input tokens</th>
              <th scope="col" class="num">Output tokens</th>
              <th scope="col" class="num">Cost</th>
            </tr>
          </thead>
          <tbody>
            <For each={props.rows}>
              {(r) => (
                <tr>
                  <td class="cell-title">{r.key}</td>
                  <td class="num" data-label="Requests">{formatCount(r.requests)}</td>
                  <td class="num" data-label="Errors">{formatCount(r.errors)}</td>
                  <td class="num" data-label="Input tokens">{formatCount(r.inputTokens)}</td>
                  <td class="num" data-label="Output tokens">{formatCount(r.outputTokens)}</td>
                  <td class="num" data-label="Cost">{formatCost(r.cost)}</td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>
    </Show>
  );
}
