/** TOTP two-factor authentication (RFC 6238: 30 s period, 6 digits, SHA-1, one step of clock drift). */
import { createTOTPKeyURI, verifyTOTPWithGracePeriod } from '@oslojs/otp';
import { decodeBase32IgnorePadding, encodeBase32UpperCaseNoPadding } from '@oslojs/encoding';

export function generateTotpKey(): string {
  const key = new Uint8Array(20);
  crypto.getRandomValues(key);
  return encodeBase32UpperCaseNoPadding(key);
}

export function totpUri(base32Key: string, accountEmail: string): string {
  return createTOTPKeyURI('LLM Gateway', accountEmail, decodeBase32IgnorePadding(base32Key), 30, 6);
}

export function verifyTotp(base32Key: string, code: string): boolean {
  return verifyTOTPWithGracePeriod(decodeBase32IgnorePadding(base32Key), 30, 6, code, 30);
}
