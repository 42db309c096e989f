/**
 * One small Solid wrapper around uPlot: the chart is created once on mount (and again only when
 * `shape` changes, e.g. a breakdown gets other series), data updates go through `u.setData`, the
 * width follows the container (ResizeObserver), and the chart is destroyed on cleanup.
 */
import { createEffect, on, onCleanup, onMount } from 'solid-js';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;

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
    chart = new uPlot({ ...props.options(), width, height: height() }, props.data, host);
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
    onCleanup(() => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      chart?.destroy();
      chart = undefined;
    });
  });

  createEffect(on(() => props.shape, () => chart && build(), { defer: true }));
  createEffect(on(() => props.data, (data) => chart?.setData(data), { defer: true }));

  return <div class="chart" ref={host} role="img" aria-label={props.label} data-testid={props.testId} />;
}

export const CHART_COLORS = ['#4f46e5', '#c8322f', '#1c7c4a', '#d97706', '#0891b2', '#9333ea', '#db2777', '#65a30d', '#64748b'];

const axisStyle = { stroke: '#6b7480', grid: { stroke: '#eef0f3', width: 1 }, ticks: { stroke: '#e2e5ea', width: 1 } };

/** Options for a time chart with the given line series. */
export function timeChartOptions(series: { label: string; color: string; value?: (v: number | null) => string; fill?: boolean; scale?: string }[], yFormat?: (v: number) => string): ChartOptions {
  return {
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: { x: { time: true } },
    axes: [
      { ...axisStyle },
      { ...axisStyle, size: 64, values: (_u, splits) => splits.map((v) => (yFormat ? yFormat(v) : compactNumber(v))) },
    ],
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: s.fill ? `${s.color}1a` : undefined,
        // uPlot's default: points only while there is room for them, so lone buckets stay visible.
        points: { size: 5, fill: s.color },
        value: (_u: uPlot, v: number | null) => (v == null ? '—' : s.value ? s.value(v) : v.toLocaleString()),
        ...(s.scale ? { scale: s.scale } : {}),
      })),
    ],
  };
}

/** Options for a bar chart over categories (x = 0..n-1, labelled). */
export function barChartOptions(labels: string[], xLabel: string, series: { label: string; color: string; value?: (v: number | null) => string }[]): ChartOptions {
  const bars = uPlot.paths.bars!({ size: [0.6, 48], align: 0 });
  // One series per chart: bars of several series would overlap at the same x.
  return {
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: false, auto: false, min: -0.5, max: Math.max(labels.length, 1) - 0.5, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] } },
    axes: [
      { ...axisStyle, splits: () => labels.map((_, i) => i), values: (_u, splits) => splits.map((i) => truncate(labels[i] ?? '', 18)), gap: 4 },
      { ...axisStyle, size: 56, values: (_u, splits) => splits.map((v) => compactNumber(v)) },
    ],
    series: [
      { label: xLabel, value: (_u, v) => (v == null ? '—' : labels[v] ?? '') },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        fill: `${s.color}cc`,
        width: 0,
        paths: bars,
        points: { show: false },
        value: (_u: uPlot, v: number | null) => (v == null ? '—' : s.value ? s.value(v) : v.toLocaleString()),
      })),
    ],
  };
}

function truncate(s: string, n: number) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function compactNumber(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${+(v / 1e9).toFixed(1)}B`;
  if (abs >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}
