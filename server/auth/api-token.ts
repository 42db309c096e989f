/** Personal API tokens for programs: `lgp_<id>.<secret>`, only SHA-256(secret) stored. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { constantTimeEqual } from '@oslojs/crypto/subtle';
import { ApiToken, User, type UserEntity } from '../modules/auth/entities.js';
import { generateSecureRandomString, hashSecret } from './session.js';

export const API_TOKEN_PREFIX = 'lgp_';

export async function createApiToken(em: EntityManager, userId: string, name: string) {
  const id = generateSecureRandomString(10);
  const secret = generateSecureRandomString(24);
  const token = em.create(ApiToken, { id, userId, name, secretHash: Buffer.from(hashSecret(secret)), createdAt: new Date(), lastUsedAt: null });
  await em.persistAndFlush(token);
  return { token, plain: `${API_TOKEN_PREFIX}${id}.${secret}` };
}

export async function validateApiToken(em: EntityManager, plain: string): Promise<{ tokenId: string; user: UserEntity } | null> {
  if (!plain.startsWith(API_TOKEN_PREFIX)) return null;
  const [id, secret, ...rest] = plain.slice(API_TOKEN_PREFIX.length).split('.');
  if (!id || !secret || rest.length > 0 || id.length > 64 || secret.length > 64) return null;
  const token = await em.findOne(ApiToken, { id });
  if (!token || !constantTimeEqual(hashSecret(secret), new Uint8Array(token.secretHash))) return null;
  const user = await em.findOne(User, { id: token.userId });
  if (!user) return null;
  // Recorded at most once a minute per token.
  if (!token.lastUsedAt || Date.now() - token.lastUsedAt.getTime() > 60_000) {
    await em.nativeUpdate(ApiToken, { id }, { lastUsedAt: new Date() });
  }
  return { tokenId: id, user };
}
