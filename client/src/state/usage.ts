/**
 * Usage analytics of an organization (or one project) over a range: summary, time series and
 * breakdowns, refetched (throttled, at most every 2 s) on `usage` and `credits.changed` events.
 */
import { createEffect, on, onCleanup } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { api, type RouterOutputs } from '../api.js';
import type { OrgContextValue } from './org-context.js';

export type RangeId = '24h' | '7d' | '30d';
export const RANGES: { value: RangeId; label: string }[] = [
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
];

export type Summary = RouterOutputs['analytics']['summary'];
export type Point = RouterOutputs['analytics']['timeseries'][number];
export type BreakdownRow = RouterOutputs['analytics']['breakdown'][number];

const HOUR = 3_600_000;
const LIVE_THROTTLE_MS = 2000;

/** The range as hours that start in [from, to): to is the start of the next hour, so the current hour counts. */
export function rangeOf(id: RangeId, now = Date.now()) {
  const to = Math.floor(now / HOUR) * HOUR + HOUR;
  const hours = id === '24h' ? 24 : id === '7d' ? 24 * 7 : 24 * 30;
  const bucket: 'hour' | 'day' = id === '30d' ? 'day' : 'hour';
  const from = bucket === 'day' ? Math.floor((to - hours * HOUR) / (24 * HOUR)) * 24 * HOUR : to - hours * HOUR;
  return { from: new Date(from), to: new Date(to), bucket };
}

export function createUsage(
  ctx: OrgContextValue,
  params: () => { range: RangeId; projectId: string | null },
  opts: { breakdowns?: boolean } = {},
) {
  const [state, setState] = createStore({
    summary: null as Summary | null,
    series: [] as Point[],
    byModel: [] as BreakdownRow[],
    byProvider: [] as BreakdownRow[],
    byEndpoint: [] as BreakdownRow[],
    loaded: false,
    error: null as unknown,
  });
  let generation = 0;

  const load = async () => {
    const gen = ++generation;
    const p = params();
    const { from, to, bucket } = rangeOf(p.range);
    const base = { orgId: ctx.orgId(), from, to, ...(p.projectId ? { projectId: p.projectId } : {}) };
    try {
      const [summary, series, byModel, byProvider, byEndpoint] = await Promise.all([
        api.analytics.summary.query(base),
        api.analytics.timeseries.query({ ...base, bucket }),
        opts.breakdowns ? api.analytics.breakdown.query({ ...base, by: 'model', limit: 12 }) : Promise.resolve([]),
        opts.breakdowns ? api.analytics.breakdown.query({ ...base, by: 'provider' }) : Promise.resolve([]),
        opts.breakdowns ? api.analytics.breakdown.query({ ...base, by: 'endpoint' }) : Promise.resolve([]),
      ]);
      if (gen !== generation) return;
      setState({ summary, series, loaded: true, error: null });
      setState('byModel', reconcile(byModel, { key: 'key' }));
      setState('byProvider', reconcile(byProvider, { key: 'key' }));
      setState('byEndpoint', reconcile(byEndpoint, { key: 'key' }));
    } catch (err) {
      if (gen === generation) setState('error', err);
    }
  };

  createEffect(
    on(
      () => [params().range, params().projectId],
      () => {
        setState({ loaded: false, error: null });
        void load();
      },
    ),
  );

  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  const refreshSoon = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      void load();
    }, Math.max(0, last + LIVE_THROTTLE_MS - Date.now()));
  };
  onCleanup(() => clearTimeout(timer));
  ctx.onEvent((e) => {
    if (e.type === 'usage' || e.type === 'credits.changed') refreshSoon();
  });

  return { state, reload: load };
}
