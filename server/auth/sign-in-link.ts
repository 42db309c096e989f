/**
 * Emailed one-time sign-in links: asked for instead of refusing a correct password while the
 * account is under a password-guessing attack (docs/decisions.md "Limits"). The token is random,
 * only its SHA-256 is stored, it expires after 15 minutes and is claimed once.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SignInLink } from '../modules/auth/entities.js';
import { generateSecureRandomString, hashSecret } from './session.js';
import type { RowOf } from '../db/rows.js';

export const SIGN_IN_LINK_TTL_MS = 15 * 60 * 1000;
export const SIGN_IN_LINK_PATH = '/signin/link';

export function signInLinkUrl(appUrl: string, token: string): string {
  return `${appUrl}${SIGN_IN_LINK_PATH}?token=${token}`;
}

/** Creates a link token for the user (in the caller's transaction); returns the plain token. */
export function createSignInLink(em: EntityManager, userId: string): string {
  const token = generateSecureRandomString(24);
  const now = Date.now();
  em.create(SignInLink, {
    id: randomUUID(),
    userId,
    tokenHash: Buffer.from(hashSecret(token)),
    expiresAt: new Date(now + SIGN_IN_LINK_TTL_MS),
    usedAt: null,
    createdAt: new Date(now),
  });
  return token;
}

/** Claims a link once (one UPDATE: racing uses cannot both pass); the user it signs in, or null. */
export async function claimSignInLink(em: Pick<EntityManager, 'execute'>, token: string): Promise<string | null> {
  if (!/^[a-z2-7]{20,80}$/.test(token)) return null;
  const rows = await em.execute<RowOf<typeof SignInLink, 'user_id'>[]>(
    `update sign_in_link set used_at = now() where token_hash = ? and used_at is null and expires_at > now() returning user_id`,
    [Buffer.from(hashSecret(token))],
  );
  return rows[0]?.user_id ?? null;
}
