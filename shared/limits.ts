/**
 * Spend-limit periods (issue #12), in UTC: a day from 00:00; a week from Monday 00:00; a calendar
 * month from the 1st 00:00; a lifetime limit never resets (its period starts at the epoch).
 */
export const LIMIT_PERIODS = ['lifetime', 'day', 'week', 'month'] as const;
export type LimitPeriod = (typeof LIMIT_PERIODS)[number];

/** A limit as the API takes and shows it: amount in dollars as a decimal string. */
export interface SpendLimitView {
  amount: string;
  period: LimitPeriod;
}

const DAY_MS = 86_400_000;

/** Start of the period containing `at` (UTC). */
export function periodStart(period: LimitPeriod, at: Date | number): Date {
  const t = typeof at === 'number' ? at : at.getTime();
  if (period === 'lifetime') return new Date(0);
  const d = new Date(t);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === 'day') return new Date(day);
  if (period === 'week') return new Date(day - ((d.getUTCDay() + 6) % 7) * DAY_MS);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

/** When the period containing `at` ends and the limit resets (null: lifetime, never). */
export function periodEnd(period: LimitPeriod, at: Date | number): Date | null {
  if (period === 'lifetime') return null;
  const start = periodStart(period, at);
  if (period === 'day') return new Date(start.getTime() + DAY_MS);
  if (period === 'week') return new Date(start.getTime() + 7 * DAY_MS);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

export const PERIOD_WORDS: Record<LimitPeriod, string> = { lifetime: 'lifetime', day: 'daily', week: 'weekly', month: 'monthly' };
