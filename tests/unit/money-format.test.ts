/** The one rule for showing money in the dashboard (client/src/ui/format.ts). */
import { describe, expect, it } from 'vitest';
import { formatMoney, formatMoneyTicks } from '../../client/src/ui/format.js';
import { formatCost } from '../../client/src/ui/usage-format.js';

describe('formatMoney', () => {
  it.each([
    ['0', '$0.00'],
    ['0.00', '$0.00'],
    ['-0.000000000', '$0.00'],
    ['25', '$25.00'],
    ['25.5', '$25.50'],
    ['9.94', '$9.94'],
    // A balance moved by usage of less than a cent still moves on screen.
    ['9.941234567', '$9.9412'],
    ['9.99995', '$10.00'],
    ['9.99994', '$9.9999'],
    ['1234567.891', '$1,234,567.891'],
    ['0.01', '$0.01'],
    ['0.0123456', '$0.0123'],
    // Below a cent: three significant digits, never "$0.00".
    ['0.004231', '$0.00423'],
    ['0.0042', '$0.0042'],
    ['0.000042', '$0.000042'],
    ['0.000001234', '$0.00000123'],
    ['0.000000001', '$0.000000001'],
    ['0.009999', '$0.01'],
    ['0.0099949', '$0.00999'],
    ['-1.2', '−$1.20'],
    ['-0.000042', '−$0.000042'],
  ])('%s -> %s', (decimal, text) => {
    expect(formatMoney(decimal)).toBe(text);
  });

  it('reads more than nine decimals by rounding to nano-dollars', () => {
    expect(formatMoney('0.0000000014')).toBe('$0.000000001');
    expect(formatMoney('0.0000000015')).toBe('$0.000000002');
  });

  it('shows the same text for the same value as a decimal string or as a number', () => {
    for (const v of ['0.004231', '0.08', '12.3456', '0.000042', '-3.5', '1500']) expect(formatMoney(Number(v))).toBe(formatMoney(v));
  });

  it('signs on request, and never signs zero', () => {
    expect(formatMoney('25', { signed: true })).toBe('+$25.00');
    expect(formatMoney('-25', { signed: true })).toBe('−$25.00');
    expect(formatMoney('0', { signed: true })).toBe('$0.00');
    expect(formatMoney('0.0004', { signed: true })).toBe('+$0.0004');
  });

  it('shows a dash for a missing or unreadable value', () => {
    expect(formatMoney(null)).toBe('—');
    expect(formatMoney(undefined)).toBe('—');
    expect(formatMoney('abc')).toBe('—');
    expect(formatMoney(Number.NaN)).toBe('—');
  });

  it('is what the usage pages use', () => {
    for (const v of ['0', '0.004231', '9.941234567', '25', '-0.02']) expect(formatCost(v)).toBe(formatMoney(v));
  });
});

describe('formatMoneyTicks', () => {
  it.each([
    [[0, 0.0005, 0.001, 0.0015], ['$0', '$0.0005', '$0.0010', '$0.0015']],
    [[0, 0.02, 0.04, 0.06], ['$0', '$0.02', '$0.04', '$0.06']],
    [[0, 0.5, 1, 1.5], ['$0', '$0.50', '$1.00', '$1.50']],
    [[0, 5, 10, 15], ['$0', '$5', '$10', '$15']],
    [[0, 500, 1000, 1500], ['$0', '$0.5k', '$1k', '$1.5k']],
    [[-0.02, 0, 0.02], ['−$0.02', '$0', '$0.02']],
    [[0.25], ['$0.25']],
  ])('%j -> %j', (ticks, labels) => {
    expect(formatMoneyTicks(ticks)).toEqual(labels);
  });
});
