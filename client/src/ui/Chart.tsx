/**
 * One small Solid wrapper around uPlot: the chart is created once on mount (and again only when
 * `shape` changes, e.g. a breakdown gets other series, or the system switches light/dark), data
 * updates go through `u.setData`, the width follows the container (ResizeObserver), and the chart
 * is destroyed on cleanup.
 *
 * The option builders below hold the house rules of every chart: value axes start at zero, counts
 * get whole-number ticks, money ticks share one precision and carry the dollar sign, a lone bucket
 * (a bar, or a point between gaps) is always drawn, and the legend shows values only while a
 * bucket is hovered (no row of dashes at rest).
 */
import { createEffect, on, onCleanup, onMount } from 'solid-js';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatMoney, formatMoneyTicks } from './format.js';

export type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;

const darkQuery = () => (typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null);

export function Chart(props: {
  /** Options without the size; read when the chart is (re)created. */
  options: () => ChartOptions;
  data: uPlot.AlignedData;
  /** A key of the series layout; when it changes the chart is built anew. */
  shape?: string;
  height?: number;
  label: string;
  testId?: string;
}) {
  let host!: HTMLDivElement;
  let chart: uPlot | undefined;
  const height = () => props.height ?? 220;

  const build = () => {
    chart?.destroy();
    const width = Math.max(200, host.clientWidth);
    const options = props.options();
    // The value axis's drawn range, for tests and for anyone inspecting the page.
    const drawn = (u: uPlot) => {
      host.dataset.yMin = String(u.scales.y?.min ?? '');
      host.dataset.yMax = String(u.scales.y?.max ?? '');
    };
    const hooks = { ...options.hooks, draw: [...(options.hooks?.draw ?? []), drawn] };
    chart = new uPlot({ ...options, hooks, width, height: height() }, props.data, host);
  };

  onMount(() => {
    build();
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        if (chart && host.clientWidth > 0 && Math.abs(chart.width - host.clientWidth) > 1) chart.setSize({ width: host.clientWidth, height: height() });
      });
    });
    observer.observe(host);
    // Axis and grid colors come from the theme: rebuild when the system switches light/dark.
    const scheme = darkQuery();
    const onScheme = () => build();
    scheme?.addEventListener('change', onScheme);
    onCleanup(() => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      scheme?.removeEventListener('change', onScheme);
      chart?.destroy();
      chart = undefined;
    });
  });

  createEffect(on(() => props.shape, () => chart && build(), { defer: true }));
  createEffect(on(() => props.data, (data) => chart?.setData(data), { defer: true }));

  return <div class="chart" ref={host} role="img" aria-label={props.label} data-testid={props.testId} />;
}

export const CHART_COLORS = ['#4f46e5', '#c8322f', '#1c7c4a', '#d97706', '#0891b2', '#9333ea', '#db2777', '#65a30d', '#64748b'];

/** Axis colors from the stylesheet (light or dark), read when a chart is built. */
function axisStyle() {
  const css = typeof document !== 'undefined' ? getComputedStyle(document.documentElement) : null;
  const read = (name: string, fallback: string) => css?.getPropertyValue(name).trim() || fallback;
  return {
    stroke: read('--chart-axis', '#6b7480'),
    grid: { stroke: read('--chart-grid', '#eef0f3'), width: 1 },
    ticks: { stroke: read('--chart-tick', '#e2e5ea'), width: 1 },
    font: '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  };
}

/** What the values of a chart are: decides the axis labels, legend values and tick steps. */
export type ValueKind = 'count' | 'money' | 'percent' | 'ms';

/** Whole-number tick steps for counts (no "0.5 requests"). */
const COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 2.5e4, 5e4, 1e5, 2e5, 2.5e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9];

export function formatValue(kind: ValueKind, v: number): string {
  if (kind === 'money') return formatMoney(v);
  if (kind === 'percent') return `${+v.toFixed(1)}%`;
  if (kind === 'ms') return v >= 1000 ? `${+(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
  return Math.round(v).toLocaleString('en-US');
}

function tickLabels(kind: ValueKind, splits: number[]): string[] {
  if (kind === 'money') return formatMoneyTicks(splits);
  if (kind === 'percent') return splits.map((v) => `${+v.toFixed(1)}%`);
  if (kind === 'ms') return splits.map((v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)} s` : `${+v.toFixed(0)} ms`));
  return splits.map((v) => compactNumber(v));
}

/** A value axis from zero: the top is the largest value plus headroom, 1 when all are zero. */
function fromZero(kind: ValueKind): uPlot.Scale.Range {
  if (kind === 'percent') return () => [0, 100];
  return (_u, _min, max) => {
    if (!(max > 0)) return [0, kind === 'money' ? 0.01 : kind === 'ms' ? 100 : 1];
    const top = max * 1.1;
    if (kind === 'count') return [0, Math.max(1, Math.ceil(top))];
    return [0, top];
  };
}

function valueAxis(kind: ValueKind, size = 64): uPlot.Axis {
  return {
    ...axisStyle(),
    size,
    ...(kind === 'count' ? { incrs: COUNT_INCRS } : {}),
    values: (_u, splits) => tickLabels(kind, splits),
  };
}

/** Indices of values with no neighbor: a line cannot draw them, so they get a point. */
function lonePoints(u: uPlot, seriesIdx: number, show: boolean): number[] | null {
  if (show) return null;
  const ys = u.data[seriesIdx] as (number | null | undefined)[];
  const lone: number[] = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) lone.push(i);
  }
  return lone;
}

const hourLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric' });
const dayLabel = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });

export interface TimeSeriesSpec {
  label: string;
  color: string;
  /** Bars for amounts per bucket (requests, cost); lines for rates and latencies. */
  kind?: 'bars' | 'line';
}

/**
 * A time chart over equal buckets (x in Unix seconds, one entry per bucket).
 * `bucket` names the bucket in the legend ("Dec 1, 3 PM" for hours, "Mon, Dec 1" for days).
 */
export function timeChartOptions(series: TimeSeriesSpec[], opts: { y: ValueKind; bucket: 'hour' | 'day' }): ChartOptions {
  const bars = uPlot.paths.bars!({ size: [0.8, 28, 2], align: 0 });
  const when = opts.bucket === 'day' ? dayLabel : hourLabel;
  return {
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: {
      // Half a bucket of room on each side, so the first and last bars are whole.
      x: {
        time: true,
        range: (u, min, max) => {
          const xs = u.data[0];
          const step = xs.length > 1 ? xs[1]! - xs[0]! : opts.bucket === 'day' ? 86_400 : 3600;
          return [min - step / 2, max + step / 2];
        },
      },
      y: { range: fromZero(opts.y) },
    },
    axes: [{ ...axisStyle(), space: 72 }, valueAxis(opts.y)],
    series: [
      { value: (_u, v, _s, idx) => (idx == null || v == null ? '' : when.format(new Date(v * 1000))) },
      ...series.map((s): uPlot.Series => {
        const value = (_u: uPlot, v: number | null, _s: number, idx: number | null) => (idx == null ? '' : v == null ? 'no data' : formatValue(opts.y, v));
        if (s.kind === 'bars') return { label: s.label, stroke: s.color, fill: s.color, width: 0, paths: bars, points: { show: false }, value };
        return { label: s.label, stroke: s.color, width: 2, spanGaps: false, points: { size: 6, fill: s.color, filter: lonePoints }, value };
      }),
    ],
  };
}

function compactNumber(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${+(v / 1e9).toFixed(1)}B`;
  if (abs >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}
