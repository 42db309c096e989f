/** Spend-limit periods are UTC (issue #12): a day from 00:00, a week from Monday 00:00, a calendar month. */
import { describe, expect, it } from 'vitest';
import { periodEnd, periodStart } from '../../shared/limits.js';
import { maxTokensThatFit, worstCost } from '../../server/modules/limits/admission.js';
import { findModel } from '../../shared/models.js';
import { limitAmount } from '../../shared/limit-schemas.js';

const at = (iso: string) => new Date(iso);

describe('limit periods (UTC)', () => {
  it('a day runs from 00:00 UTC to the next 00:00, whatever the local time zone', () => {
    expect(periodStart('day', at('2026-12-02T23:59:59.999Z')).toISOString()).toBe('2026-12-02T00:00:00.000Z');
    expect(periodEnd('day', at('2026-12-02T23:59:59.999Z'))!.toISOString()).toBe('2026-12-03T00:00:00.000Z');
    expect(periodStart('day', at('2026-12-03T00:00:00.000Z')).toISOString()).toBe('2026-12-03T00:00:00.000Z');
  });

  it('a week starts on Monday', () => {
    // 2026-12-06 is a Sunday, 2026-12-07 a Monday.
    expect(periodStart('week', at('2026-12-06T23:00:00Z')).toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(periodEnd('week', at('2026-12-06T23:00:00Z'))!.toISOString()).toBe('2026-12-07T00:00:00.000Z');
    expect(periodStart('week', at('2026-12-07T00:00:00Z')).toISOString()).toBe('2026-12-07T00:00:00.000Z');
  });

  it('a month is the calendar month, across year ends and leap days', () => {
    expect(periodStart('month', at('2026-12-31T23:59:59Z')).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(periodEnd('month', at('2026-12-31T23:59:59Z'))!.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(periodEnd('month', at('2028-02-10T00:00:00Z'))!.toISOString()).toBe('2028-03-01T00:00:00.000Z');
  });

  it('a lifetime limit never resets', () => {
    expect(periodStart('lifetime', Date.now()).getTime()).toBe(0);
    expect(periodEnd('lifetime', Date.now())).toBeNull();
  });
});

describe('worst cost and the max_tokens that fits', () => {
  const entry = findModel('openai', 'gpt-4o-mini')!;
  it('reserves the prompt estimate plus max_tokens, or the model output limit', () => {
    // 400 characters: 100 tokens at $0.15/M, plus 1000 tokens at $0.60/M.
    expect(worstCost(entry, { promptChars: 400, maxOutputTokens: 1000 })).toBe(15_000n + 600_000n);
    expect(worstCost(entry, { promptChars: 400, maxOutputTokens: null })).toBe(15_000n + BigInt(entry.maxOutputTokens) * 600n);
  });
  it('names a max_tokens whose worst cost fits in what is left', () => {
    const ask = { promptChars: 400, maxOutputTokens: null };
    const left = 315_000n;
    const fit = maxTokensThatFit(entry, ask, left);
    expect(worstCost(entry, { ...ask, maxOutputTokens: fit })).toBeLessThanOrEqual(left);
    expect(worstCost(entry, { ...ask, maxOutputTokens: fit + 2 })).toBeGreaterThan(left);
    expect(maxTokensThatFit(entry, ask, 10_000n)).toBe(0);
  });
});

describe('limit amounts', () => {
  it('takes decimal dollars up to 6 decimals, more than zero', () => {
    expect(limitAmount.parse('0.05')).toBe('0.05');
    expect(limitAmount.parse(12.5)).toBe('12.5');
    expect(limitAmount.parse('$1,000')).toBe('1000');
    for (const bad of ['0', '-1', '1.1234567', 'abc', '100000000']) expect(limitAmount.safeParse(bad).success, bad).toBe(false);
  });
});
