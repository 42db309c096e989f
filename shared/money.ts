/**
 * Money is exact: integer nano-dollars (1 credit = $1 = 1e9 nanos) as bigint,
 * converted to a decimal string only at the edges.
 */
export const NANOS_PER_DOLLAR = 1_000_000_000n;

export function nanosToDecimal(nanos: bigint): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const whole = abs / NANOS_PER_DOLLAR;
  let frac = (abs % NANOS_PER_DOLLAR).toString().padStart(9, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${negative ? '-' : ''}${whole}.${frac}`;
}

const DECIMAL = /^(-)?(\d{1,15})(?:\.(\d{1,9}))?$/;

export function decimalToNanos(value: string): bigint {
  const m = DECIMAL.exec(value.trim());
  if (!m) throw new Error(`not a decimal amount: ${value}`);
  const nanos = BigInt(m[2]!) * NANOS_PER_DOLLAR + BigInt((m[3] ?? '').padEnd(9, '0'));
  return m[1] ? -nanos : nanos;
}

/** "$1,234.50" for display; rounds half away from zero to cents. */
export function formatDollars(decimal: string): string {
  const nanos = decimalToNanos(decimal);
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const cents = (abs + 5_000_000n) / 10_000_000n;
  const whole = (cents / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  // An amount that rounds to zero cents is shown without a sign.
  return `${negative && cents > 0n ? '-' : ''}$${whole}.${(cents % 100n).toString().padStart(2, '0')}`;
}
