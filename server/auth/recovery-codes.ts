/**
 * Recovery codes: ten one-time codes issued when two-factor authentication is turned on, for when
 * the authenticator is lost. 50 random bits each (`xxxxx-xxxxx`, base32), so a plain SHA-256 is
 * enough to store them (no password-style slow hash needed: nothing to brute-force offline).
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sha256 } from '@oslojs/crypto/sha2';
import { encodeBase32LowerCaseNoPadding } from '@oslojs/encoding';
import { RecoveryCode } from '../modules/auth/entities.js';

export const RECOVERY_CODE_COUNT = 10;

function generateRecoveryCode(): string {
  const bytes = new Uint8Array(7); // 56 bits; the first 50 are used (10 base32 characters)
  crypto.getRandomValues(bytes);
  const text = encodeBase32LowerCaseNoPadding(bytes).slice(0, 10);
  return `${text.slice(0, 5)}-${text.slice(5)}`;
}

/** What the user typed, as it was issued: case, spaces and dashes do not matter. */
export function normalizeRecoveryCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '');
}

export function hashRecoveryCode(input: string): Buffer {
  return Buffer.from(sha256(new TextEncoder().encode(normalizeRecoveryCode(input))));
}

/** Replaces the user's recovery codes with new ones (in the caller's transaction); returns them once. */
export async function issueRecoveryCodes(em: EntityManager, userId: string): Promise<string[]> {
  await em.nativeDelete(RecoveryCode, { userId });
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
  const now = new Date();
  for (const code of codes) em.create(RecoveryCode, { id: randomUUID(), userId, codeHash: hashRecoveryCode(code), usedAt: null, createdAt: now });
  await em.flush();
  return codes;
}

/**
 * Spends one recovery code: one UPDATE that only an unused code matches, so two requests racing
 * with the same code cannot both pass. Returns how many unused codes are left, or null if the
 * code was not valid (unknown, or already used).
 */
export async function claimRecoveryCode(em: Pick<EntityManager, 'execute'>, userId: string, code: string): Promise<number | null> {
  const normalized = normalizeRecoveryCode(code);
  if (!/^[a-z2-7]{10}$/.test(normalized)) return null;
  const rows = await em.execute<{ left: number }[]>(
    `with claimed as (
       update recovery_code set used_at = now() where user_id = ? and code_hash = ? and used_at is null returning id)
     select (select count(*)::int from recovery_code where user_id = ? and used_at is null) - 1 as left from claimed`,
    [userId, hashRecoveryCode(normalized), userId],
  );
  return rows.length > 0 ? Math.max(0, rows[0]!.left) : null;
}

export async function unusedRecoveryCodes(em: Pick<EntityManager, 'execute'>, userId: string): Promise<number> {
  const rows = await em.execute<{ n: number }[]>('select count(*)::int as n from recovery_code where user_id = ? and used_at is null', [userId]);
  return rows[0]?.n ?? 0;
}
