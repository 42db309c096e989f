/** TOTP two-factor authentication (RFC 6238: 30 s period, 6 digits, SHA-1, one step of clock drift). */
import { createTOTPKeyURI, generateHOTP } from '@oslojs/otp';
import { timingSafeEqual } from 'node:crypto';
import { decodeBase32IgnorePadding, encodeBase32UpperCaseNoPadding } from '@oslojs/encoding';

export function generateTotpKey(): string {
  const key = new Uint8Array(20);
  crypto.getRandomValues(key);
  return encodeBase32UpperCaseNoPadding(key);
}

export function totpUri(base32Key: string, accountEmail: string): string {
  return createTOTPKeyURI('LLM Gateway', accountEmail, decodeBase32IgnorePadding(base32Key), 30, 6);
}

/**
 * The 30-second step `code` belongs to (the current one, or one step either side for clock drift),
 * or null when it matches none. Callers make each step usable once (see consumeTotp).
 */
export function totpStep(base32Key: string, code: string, now = Date.now()): bigint | null {
  if (!/^\d{6}$/.test(code)) return null;
  const key = decodeBase32IgnorePadding(base32Key);
  const current = BigInt(Math.floor(now / 30_000));
  const given = Buffer.from(code);
  let matched: bigint | null = null;
  // Every candidate is compared (no early exit), in constant time.
  for (const step of [current - 1n, current, current + 1n]) {
    if (timingSafeEqual(Buffer.from(generateHOTP(key, step, 6)), given) && matched === null) matched = step;
  }
  return matched;
}
