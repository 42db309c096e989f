/** Inputs of spend limits (issue #12): amounts as decimal dollar strings (numbers accepted), periods in UTC. */
import { z } from 'zod';
import { LIMIT_PERIODS } from './limits.js';
import { decimalToNanos } from './money.js';

/** At most $10,000,000; at least a millionth of a dollar. */
export const MAX_LIMIT_NANOS = 10_000_000n * 1_000_000_000n;

/**
 * A limit's amount in dollars ("5", "0.05", 12.5), up to 6 decimals, as a normalized decimal string
 * (a string stays assignable to the input: clients validate with the same schema). Services take
 * nano-dollars from it with decimalToNanos.
 */
export const limitAmount = z.union([z.number(), z.string().trim().max(24)]).transform((v, ctx) => {
  const text = (typeof v === 'number' ? (Number.isFinite(v) ? v.toFixed(6) : 'x') : v.replace(/^\$/, '').replace(/,/g, '')).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  if (!/^\d{1,8}(?:\.\d{1,6})?$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'enter an amount in dollars, like 5 or 0.25 (at most 6 decimals)' });
    return z.NEVER;
  }
  const nanos = decimalToNanos(text);
  if (nanos <= 0n) {
    ctx.addIssue({ code: 'custom', message: 'a limit must be more than $0 (send null to remove it)' });
    return z.NEVER;
  }
  if (nanos > MAX_LIMIT_NANOS) {
    ctx.addIssue({ code: 'custom', message: 'a limit can be at most $10,000,000' });
    return z.NEVER;
  }
  return text;
});
export const limitPeriod = z.enum(LIMIT_PERIODS, { message: `period is one of ${LIMIT_PERIODS.join(', ')} (UTC)` });

/** `{amount, period}` or null (no limit). */
export const spendLimitInput = z.object({ amount: limitAmount, period: limitPeriod }).nullable();

/** team.setBudget: amount null removes the member's own budget. */
export const teamSetBudgetInput = z.object({
  orgId: z.uuid({ message: 'must be a valid id' }),
  userId: z.uuid({ message: 'must be a valid id' }),
  amount: limitAmount.nullable(),
  period: limitPeriod.default('month'),
});
