/** Formatting of usage figures: counts, costs (small ones too), percentages, milliseconds. */
import { formatMoney } from './format.js';

export function formatCount(n: number | null | undefined): string {
  return n == null ? '—' : n.toLocaleString('en-US');
}

/** A dollar cost from a decimal string or number: the dashboard's one money rule (format.ts). */
export const formatCost = formatMoney;

export function formatPercent(rate: number | null | undefined): string {
  if (rate == null) return '—';
  const p = rate * 100;
  return `${p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms == null) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
