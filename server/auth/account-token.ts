/**
 * Emailed one-time links of account upkeep: a password reset, verifying the address at sign-up,
 * confirming a new address. As with sign-in links, the token is random, only its SHA-256 is stored,
 * it expires, and it is claimed once with one UPDATE (racing uses cannot both pass). Each link is
 * bound to the address it was sent to: claiming it proves that address, nothing more.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AccountToken, type AccountTokenPurpose } from '../modules/auth/entities.js';
import { generateSecureRandomString, hashSecret } from './session.js';
import type { RowOf } from '../db/rows.js';

/** How long each kind of link works. A reset is the most sensitive: it works for an hour at most. */
export const ACCOUNT_TOKEN_TTL_MS: Record<AccountTokenPurpose, number> = {
  password_reset: 60 * 60 * 1000,
  email_change: 60 * 60 * 1000,
  email_verification: 3 * 24 * 60 * 60 * 1000,
};

/** The pages the links open (client routes); the token is in the query string. */
export const ACCOUNT_LINK_PATHS: Record<AccountTokenPurpose, string> = {
  password_reset: '/reset-password',
  email_verification: '/verify-email',
  email_change: '/confirm-email',
};

export function accountLinkUrl(appUrl: string, purpose: AccountTokenPurpose, token: string): string {
  return `${appUrl}${ACCOUNT_LINK_PATHS[purpose]}?token=${token}`;
}

/**
 * Creates a link token (in the caller's transaction); earlier unused links of the same purpose for
 * the user stop working (only the newest email's link is valid). Returns the plain token.
 */
export async function createAccountToken(em: EntityManager, userId: string, purpose: AccountTokenPurpose, email: string): Promise<string> {
  await em.execute(`update account_token set used_at = now() where user_id = ? and purpose = ? and used_at is null`, [userId, purpose]);
  const token = generateSecureRandomString(24);
  const now = Date.now();
  em.create(AccountToken, {
    id: randomUUID(),
    userId,
    purpose,
    email,
    tokenHash: Buffer.from(hashSecret(token)),
    expiresAt: new Date(now + ACCOUNT_TOKEN_TTL_MS[purpose]),
    usedAt: null,
    createdAt: new Date(now),
  });
  return token;
}

/** Claims a link once; the user and address it was for, or null (unknown, used, expired, other purpose). */
export async function claimAccountToken(em: Pick<EntityManager, 'execute'>, purpose: AccountTokenPurpose, token: string): Promise<{ userId: string; email: string } | null> {
  if (!/^[a-z2-7]{20,80}$/.test(token)) return null;
  const rows = await em.execute<RowOf<typeof AccountToken, 'user_id' | 'email'>[]>(
    `update account_token set used_at = now() where token_hash = ? and purpose = ? and used_at is null and expires_at > now() returning user_id, email`,
    [Buffer.from(hashSecret(token)), purpose],
  );
  const row = rows[0];
  return row ? { userId: row.user_id, email: row.email } : null;
}

/** Every unused link of these purposes for the user stops working (after a reset, a change of address). */
export async function voidAccountTokens(em: Pick<EntityManager, 'execute'>, userId: string, purposes: AccountTokenPurpose[]): Promise<void> {
  await em.execute(`update account_token set used_at = now() where user_id = ? and purpose in (select jsonb_array_elements_text(?::jsonb)) and used_at is null`, [userId, JSON.stringify(purposes)]);
}
