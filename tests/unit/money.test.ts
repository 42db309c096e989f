/** Exact money: nano-dollar bigints and decimal strings, never floats. */
import { describe, expect, it } from 'vitest';
import { decimalToNanos, formatDollars, nanosToDecimal, NANOS_PER_DOLLAR } from '../../shared/money.js';

describe('nanosToDecimal', () => {
  it.each([
    [0n, '0.00'],
    [1n, '0.000000001'],
    [10_000_000n, '0.01'],
    [100_000_000n, '0.10'],
    [123_456_789n, '0.123456789'],
    [NANOS_PER_DOLLAR, '1.00'],
    [50n * NANOS_PER_DOLLAR, '50.00'],
    [-1n, '-0.000000001'],
    [-1_500_000_000n, '-1.50'],
    [9_007_199_254_740_993_000_000_123n, '9007199254740993.000000123'],
  ])('%s nanos -> %s', (nanos, text) => {
    expect(nanosToDecimal(nanos)).toBe(text);
  });
});

describe('decimalToNanos', () => {
  it.each([
    ['0', 0n],
    ['0.00', 0n],
    ['10', 10_000_000_000n],
    ['10.5', 10_500_000_000n],
    ['0.000000001', 1n],
    [' 12.34 ', 12_340_000_000n],
    ['-3.25', -3_250_000_000n],
    ['999999999999999.999999999', 999_999_999_999_999_999_999_999n],
  ])('%j -> %s', (text, nanos) => {
    expect(decimalToNanos(text)).toBe(nanos);
  });

  it('is exact where floats are not', () => {
    expect(decimalToNanos('0.1') + decimalToNanos('0.2')).toBe(decimalToNanos('0.3'));
    expect(nanosToDecimal(decimalToNanos('0.1') + decimalToNanos('0.2'))).toBe('0.30');
  });

  it.each(['', 'abc', '1e3', '.5', '5.', '1,000', '$5', '1.0000000001', '1234567890123456', '--1', '+1', 'NaN', 'Infinity'])(
    'refuses %j instead of guessing',
    (text) => {
      expect(() => decimalToNanos(text)).toThrow(/not a decimal amount/);
    },
  );

  it('round-trips every value it prints', () => {
    for (const nanos of [0n, 1n, 7n, 10_000_000n, 123_456_789_012n, -42n, -10_000_000_000n, 10n ** 20n + 3n]) {
      expect(decimalToNanos(nanosToDecimal(nanos))).toBe(nanos);
    }
  });
});

describe('formatDollars', () => {
  it.each([
    ['0', '$0.00'],
    ['1', '$1.00'],
    ['1234.5', '$1,234.50'],
    ['1234567.891', '$1,234,567.89'],
    ['0.005', '$0.01'], // half a cent rounds away from zero
    ['0.004999999', '$0.00'],
    ['2.675', '$2.68'], // a float would print 2.67
    ['-1234.5', '-$1,234.50'],
    ['-0.005', '-$0.01'],
    ['-0.004', '$0.00'], // rounds to zero: no sign
  ])('%s -> %s', (decimal, text) => {
    expect(formatDollars(decimal)).toBe(text);
  });
});
