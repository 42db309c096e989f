const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function formatDateTime(d: Date | string | null | undefined): string {
  return d ? dateTime.format(new Date(d)) : '—';
}

export function formatDate(d: Date | string | null | undefined): string {
  return d ? dateOnly.format(new Date(d)) : '—';
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0]![0]! + parts[parts.length - 1]![0]! : (parts[0] ?? '?').slice(0, 2);
  return letters.toUpperCase();
}

/** A stable hue per user, so an avatar keeps its color across pages. */
export function hueOf(id: string): number {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

/*
 * Money: one rule for every page (balances, costs, ledger amounts, chart legends and axes).
 * - an amount of a cent or more shows cents, and up to 4 decimals when it has them:
 *   "$25.00", "$9.94", "$9.9412" (so usage that moves a balance by less than a cent shows);
 * - an amount below a cent keeps 3 significant digits: "$0.00423", "$0.0000012";
 * - zero is "$0.00"; negative amounts take a minus sign ("−$1.20"), `signed` adds "+" to the others.
 * Decimal strings (what the API returns) are read exactly; numbers (chart values) are rounded to
 * nano-dollars first.
 */
const NANOS = 1_000_000_000n;
const CENT = 10_000_000n;
const MINUS = '−';

function toNanos(value: string | number): bigint | null {
  if (typeof value === 'number') return Number.isFinite(value) ? BigInt(Math.round(value * 1e9)) : null;
  const m = /^(-)?(\d+)(?:\.(\d*))?$/.exec(value.trim());
  if (!m) return null;
  const frac = (m[3] ?? '').padEnd(10, '0');
  // Digits past the ninth round half away from zero.
  const nanos = BigInt(m[2]!) * NANOS + BigInt(frac.slice(0, 9)) + (frac[9]! >= '5' ? 1n : 0n);
  return m[1] ? -nanos : nanos;
}

const roundTo = (n: bigint, unit: bigint) => ((n + unit / 2n) / unit) * unit;
const grouped = (whole: bigint) => whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

export function formatMoney(value: string | number | null | undefined, opts: { signed?: boolean } = {}): string {
  if (value == null) return '—';
  const nanos = toNanos(value);
  if (nanos === null) return '—';
  if (nanos === 0n) return '$0.00';
  const sign = nanos < 0n ? MINUS : opts.signed ? '+' : '';
  let abs = nanos < 0n ? -nanos : nanos;
  if (abs < CENT) {
    const digits = abs.toString().length; // abs < 1e7: at most 7 digits of nanos
    const unit = digits > 3 ? 10n ** BigInt(digits - 3) : 1n;
    abs = roundTo(abs, unit);
    if (abs < CENT) {
      const frac = abs.toString().padStart(9, '0').replace(/0+$/, '');
      return `${sign}$0.${frac}`;
    }
  }
  abs = roundTo(abs, 100_000n); // 4 decimals
  const frac = (abs % NANOS).toString().padStart(9, '0').slice(0, 4).replace(/0+$/, '').padEnd(2, '0');
  return `${sign}$${grouped(abs / NANOS)}.${frac}`;
}

/**
 * Labels of a money axis: one precision for all ticks, enough to tell neighbors apart
 * ("$0", "$0.0005", "$0.0010"; "$0", "$5", "$10"; "$1.5k").
 */
export function formatMoneyTicks(ticks: readonly number[]): string[] {
  const steps = ticks.slice(1).map((t, i) => Math.abs(t - ticks[i]!)).filter((d) => d > 0);
  const step = steps.length ? Math.min(...steps) : Math.abs(ticks[0] ?? 1) || 1;
  const max = Math.max(0, ...ticks.map(Math.abs));
  const decimals = step >= 1 ? 0 : Math.min(9, Math.max(2, Math.ceil(-Math.log10(step) - 1e-9)));
  return ticks.map((t) => {
    if (t === 0) return '$0';
    const sign = t < 0 ? MINUS : '';
    const abs = Math.abs(t);
    if (max >= 1000 && step >= 100) {
      const [div, suffix] = max >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
      return `${sign}$${+(abs / div).toFixed(Math.max(0, Math.ceil(-Math.log10(step / div) - 1e-9)))}${suffix}`;
    }
    return `${sign}$${abs.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })}`;
  });
}
