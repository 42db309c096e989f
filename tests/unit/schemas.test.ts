/** Input schemas shared by the server and the dashboard: what people type, and what reaches the services. */
import { describe, expect, it } from 'vitest';
import { bigintId, dollarAmount, email, purchaseCreditsInput } from '../../shared/schemas.js';

const ORG = '00000000-0000-4000-8000-000000000001';

describe('dollar amounts', () => {
  it('turns what people type into whole cents', () => {
    const cents = (v: unknown) => dollarAmount.parse(v);
    expect(cents(25)).toBe(2500);
    expect(cents('25')).toBe(2500);
    expect(cents('25.5')).toBe(2550);
    expect(cents('25.05')).toBe(2505);
    expect(cents(' $1,234.50 ')).toBe(123450);
    expect(cents(0.1)).toBe(10);
    expect(cents('0')).toBe(0);
    expect(cents('9999999.99')).toBe(999999999);
  });

  it('refuses fractions of a cent, negatives, exponents and words', () => {
    for (const v of ['25.555', '-5', -5, '1e3', 1e21, 'ten', '', '.5', '12345678', NaN]) {
      const r = dollarAmount.safeParse(v);
      expect(r.success, String(v)).toBe(false);
    }
  });

  it('holds purchases between $10 and $1,000,000', () => {
    expect(purchaseCreditsInput.parse({ orgId: ORG, amount: '10' }).amount).toBe(1000);
    expect(purchaseCreditsInput.safeParse({ orgId: ORG, amount: '9.99' }).success).toBe(false);
    expect(purchaseCreditsInput.parse({ orgId: ORG, amount: '1,000,000' }).amount).toBe(100_000_000);
    expect(purchaseCreditsInput.safeParse({ orgId: ORG, amount: '1000000.01' }).success).toBe(false);
  });
});

describe('ledger ids', () => {
  it('accepts positive PostgreSQL bigints only', () => {
    const ok = (v: string) => bigintId('id').safeParse(v).success;
    expect(ok('1')).toBe(true);
    expect(ok('9223372036854775807')).toBe(true);
    expect(ok('9223372036854775808')).toBe(false);
    expect(ok('0')).toBe(false);
    expect(ok('01')).toBe(false);
    expect(ok('-1')).toBe(false);
    expect(ok('1.0')).toBe(false);
    expect(ok('99999999999999999999')).toBe(false);
  });
});

describe('email addresses', () => {
  it('are trimmed and lower-cased, so one person has one account', () => {
    expect(email.parse('Ada.Lovelace@Example.COM')).toBe('ada.lovelace@example.com');
    expect(email.safeParse('not an email').success).toBe(false);
  });
});
