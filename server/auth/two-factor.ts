/** TOTP two-factor authentication (RFC 6238: 30 s period, 6 digits, SHA-1, one step of clock drift). */
import { createTOTPKeyURI, generateHOTP } from '@oslojs/otp';
import { timingSafeEqual } from 'node:crypto';
import { decodeBase32IgnorePadding, encodeBase32UpperCaseNoPadding } from '@oslojs/encoding';
import type { EntityManager } from '@mikro-orm/postgresql';
import QRCode from 'qrcode';
import type { RowOf } from '../db/rows.js';
import type { User } from '../modules/auth/entities.js';

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

/**
 * Accepts a two-factor code once: it must match the key, and its 30-second step must be later than
 * the last one accepted for this user (one atomic UPDATE, so two requests racing with the same code
 * cannot both pass). A code seen by someone looking over a shoulder is already spent.
 */
export async function consumeTotp(em: Pick<EntityManager, 'execute'>, userId: string, base32Key: string, code: string): Promise<boolean> {
  const step = totpStep(base32Key, code);
  if (step === null) return false;
  const taken = await em.execute<RowOf<typeof User, 'id'>[]>(
    'update app_user set totp_last_step = ? where id = ? and (totp_last_step is null or totp_last_step < ?) returning id',
    [step.toString(), userId, step.toString()],
  );
  return taken.length > 0;
}

/** The otpauth URI as a QR code, an SVG data URL an <img> can show (no script, no external fetch). */
export async function totpQrCode(otpauthUri: string): Promise<string> {
  const svg = await QRCode.toString(otpauthUri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
