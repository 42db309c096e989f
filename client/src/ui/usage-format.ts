/** Formatting of usage figures: counts, costs (small ones too), percentages, milliseconds. */
export function formatCount(n: number | null | undefined): string {
  return n == null ? '—' : n.toLocaleString('en-US');
}

/** A dollar cost from a decimal string or number; sub-cent amounts keep significant digits. */
export function formatCost(v: string | number | null | undefined): string {
  if (v == null) return '—';
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) return '—';
  if (n === 0) return '$0.00';
  const abs = Math.abs(n);
  const sign = n < 0 ? '-' : '';
  if (abs >= 0.01) return `${sign}$${abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: abs >= 100 ? 2 : 4 })}`;
  return `${sign}$${abs.toPrecision(2).replace(/0+$/, '')}`.replace(/e-\d+/, (m) => m);
}

export function formatPercent(rate: number | null | undefined): string {
  if (rate == null) return '—';
  const p = rate * 100;
  return `${p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms == null) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
