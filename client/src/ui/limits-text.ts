/** The words and numbers of spend limits on screen (no JSX: unit-tested in tests/unit/limits-text.test.ts). */
import { decimalToNanos } from '../../../shared/money.js';
import { formatMoney } from './format.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "resets in 3 h 20 min", "resets in 2 days", "resets in 45 s"; null when there is no reset. */
export function resetsIn(at: Date | string | null | undefined, now = Date.now()): string | null {
  if (!at) return null;
  const ms = new Date(at).getTime() - now;
  if (!Number.isFinite(ms)) return null;
  if (ms <= 0) return 'resets now';
  if (ms < MINUTE) return `resets in ${Math.ceil(ms / 1000)} s`;
  if (ms < HOUR) return `resets in ${Math.ceil(ms / MINUTE)} min`;
  if (ms < DAY) {
    const minutes = Math.round(ms / MINUTE);
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    if (h >= 10) return `resets in ${Math.round(ms / HOUR)} h`;
    return m > 0 ? `resets in ${h} h ${m} min` : `resets in ${h} h`;
  }
  const days = Math.round(ms / DAY);
  return `resets in ${days} day${days === 1 ? '' : 's'}`;
}

/** Spent as a share of the limit, 0..100 (whole percent, rounded down; 100 when the limit is 0). */
export function percentOf(spent: string, limit: string): number {
  try {
    const l = decimalToNanos(limit);
    const s = decimalToNanos(spent);
    if (l <= 0n) return 100;
    const pct = Number((s * 100n) / l);
    return Math.max(0, Math.min(100, pct));
  } catch {
    return 0;
  }
}

/** A dollar amount typed into a form: a decimal string, or an error. Empty: null (no limit). */
export function parseAmount(text: string, opts: { max?: number } = {}): { ok: true; value: string | null } | { ok: false; error: string } {
  const t = text.trim().replace(/^\$/, '').replace(/,/g, '');
  if (t === '') return { ok: true, value: null };
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(t)) return { ok: false, error: 'Enter an amount in dollars, e.g. 25 or 2.50' };
  if (Number(t) <= 0) return { ok: false, error: 'The amount must be more than $0 (leave it empty for no limit)' };
  if (opts.max !== undefined && Number(t) > opts.max) return { ok: false, error: `At most ${formatMoney(String(opts.max))}` };
  return { ok: true, value: t };
}

/**
 * Which limit refused a logged call, from its 402 message (the gateway names the limit: see
 * server/modules/limits/admission.ts refusalError). Null for other rows.
 */
export function refusedBy(log: { status: number; error: string | null }): string | null {
  if (log.status !== 402 || !log.error) return null;
  const e = log.error;
  if (/this API key's .*spend limit/i.test(e)) return 'key spend limit';
  if (/budget of this key's member|member'?s? budget/i.test(e)) return 'member budget';
  if (/daily spend cap/i.test(e)) return 'daily spend cap';
  if (/monthly spend cap/i.test(e)) return 'monthly spend cap';
  if (/credit balance|insufficient credits|not enough credits/i.test(e)) return 'credit balance';
  return 'spend limit';
}

