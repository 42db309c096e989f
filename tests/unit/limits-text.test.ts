/**
 * The dashboard's spend-limit words (client/src/ui/limits-text.ts): the time to reset, the share
 * used, typed amounts, and which limit refused a logged call, read from the gateway's real 402
 * messages (server/modules/limits/admission.ts), so a change of their wording fails here.
 */
import { describe, expect, it } from 'vitest';
import { parseAmount, percentOf, refusedBy, resetsIn } from '../../client/src/ui/limits-text.js';
import { refusalError } from '../../server/modules/limits/admission.js';
import type { LimitSpec } from '../../server/modules/limits/engine.js';
import { findModel } from '../../shared/models.js';

const MIN = 60_000;

describe('spend limit texts', () => {
  it('says when a limit resets', () => {
    const now = Date.UTC(2026, 11, 2, 3, 0);
    expect(resetsIn(null, now)).toBeNull();
    expect(resetsIn(new Date(now - 1), now)).toBe('resets now');
    expect(resetsIn(new Date(now + 45_000), now)).toBe('resets in 45 s');
    expect(resetsIn(new Date(now + 12 * MIN), now)).toBe('resets in 12 min');
    expect(resetsIn(new Date(now + 3 * 60 * MIN + 20 * MIN), now)).toBe('resets in 3 h 20 min');
    expect(resetsIn(new Date(now + 3 * 60 * MIN + 59.8 * MIN), now)).toBe('resets in 4 h');
    expect(resetsIn(new Date(now + 21 * 60 * MIN), now)).toBe('resets in 21 h');
    expect(resetsIn(new Date(now + 5 * 24 * 60 * MIN).toISOString(), now)).toBe('resets in 5 days');
  });

  it('computes the share used exactly, capped at 100', () => {
    expect(percentOf('0.09072', '0.10')).toBe(90);
    expect(percentOf('0.00', '5.00')).toBe(0);
    expect(percentOf('7', '5')).toBe(100);
    expect(percentOf('1', '0')).toBe(100);
  });

  it('reads typed amounts', () => {
    expect(parseAmount('')).toEqual({ ok: true, value: null });
    expect(parseAmount(' $1,250.50 ')).toEqual({ ok: true, value: '1250.50' });
    expect(parseAmount('0.05')).toEqual({ ok: true, value: '0.05' });
    expect(parseAmount('ten').ok).toBe(false);
    expect(parseAmount('0').ok).toBe(false);
    expect(parseAmount('2000000', { max: 1_000_000 }).ok).toBe(false);
  });

  it('names the limit that refused a logged call from its 402 message', () => {
    const entry = findModel('anthropic', 'claude-opus-4-1-20250805')!;
    const ask = { promptChars: 40, maxOutputTokens: 400 };
    const spec = (kind: LimitSpec['kind'], label: string, period: LimitSpec['period'] = 'day'): LimitSpec => ({
      kind, scope: `${kind}:x`, orgId: 'o', periodStart: new Date(0), period, limit: kind === 'balance' ? null : 100_000_000n, label, alert: null,
    });
    const messageOf = (s: LimitSpec) => refusalError({ spec: s, left: 1_000_000n, resetsAt: new Date(Date.UTC(2026, 11, 3)) }, entry, ask).message;
    const cases: [LimitSpec, string][] = [
      [spec('key', "this API key's daily spend limit of $0.10"), 'key spend limit'],
      [spec('member', "the weekly budget of this key's member of $1.00", 'week'), 'member budget'],
      [spec('day', "the organization's daily spend cap of $5.00"), 'daily spend cap'],
      [spec('month', "the organization's monthly spend cap of $50.00", 'month'), 'monthly spend cap'],
      [spec('balance', "your organization's credit balance", null), 'credit balance'],
    ];
    for (const [s, label] of cases) expect(refusedBy({ status: 402, error: messageOf(s) }), messageOf(s)).toBe(label);
    expect(refusedBy({ status: 502, error: 'upstream failed' })).toBeNull();
    expect(refusedBy({ status: 200, error: null })).toBeNull();
  });
});
