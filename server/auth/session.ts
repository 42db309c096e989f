/**
 * Sessions in Lucia's current scheme: the token is `<id>.<secret>`; only SHA-256(secret) is stored,
 * compared in constant time; sessions expire after a period of inactivity (sliding).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sha256 } from '@oslojs/crypto/sha2';
import { constantTimeEqual } from '@oslojs/crypto/subtle';
import { encodeBase32LowerCaseNoPadding } from '@oslojs/encoding';
import { Session, User, type SessionEntity, type UserEntity } from '../modules/auth/entities.js';

export const SESSION_COOKIE = 'session';
export const INACTIVITY_TIMEOUT_MS = 10 * 24 * 60 * 60 * 1000;
/** last_verified_at is refreshed at most this often, so not every request writes. */
const ACTIVITY_CHECK_INTERVAL_MS = 60 * 60 * 1000;

export function generateSecureRandomString(bytes = 24): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return encodeBase32LowerCaseNoPadding(buf);
}

export function hashSecret(secret: string): Uint8Array {
  return sha256(new TextEncoder().encode(secret));
}

export async function createSession(em: EntityManager, userId: string, userAgent?: string | null, ip?: string | null): Promise<{ session: SessionEntity; token: string }> {
  const id = generateSecureRandomString();
  const secret = generateSecureRandomString();
  const now = new Date();
  const session = em.create(Session, {
    id,
    userId,
    secretHash: Buffer.from(hashSecret(secret)),
    createdAt: now,
    lastVerifiedAt: now,
    userAgent: userAgent?.slice(0, 255) ?? null,
    ip: ip?.slice(0, 100) ?? null,
  });
  await em.persistAndFlush(session);
  return { session, token: `${id}.${secret}` };
}

export async function validateSessionToken(em: EntityManager, token: string): Promise<{ session: SessionEntity; user: UserEntity } | null> {
  const [id, secret, ...rest] = token.split('.');
  if (!id || !secret || rest.length > 0 || id.length > 64 || secret.length > 64) return null;
  const session = await em.findOne(Session, { id });
  if (!session) return null;
  if (!constantTimeEqual(hashSecret(secret), new Uint8Array(session.secretHash))) return null;
  const now = Date.now();
  if (now - session.lastVerifiedAt.getTime() >= INACTIVITY_TIMEOUT_MS) {
    await em.nativeDelete(Session, { id });
    return null;
  }
  if (now - session.lastVerifiedAt.getTime() >= ACTIVITY_CHECK_INTERVAL_MS) {
    session.lastVerifiedAt = new Date(now);
    await em.flush();
  }
  const user = await em.findOne(User, { id: session.userId });
  if (!user) return null;
  return { session, user };
}

export async function invalidateSession(em: EntityManager, sessionId: string): Promise<void> {
  await em.nativeDelete(Session, { id: sessionId });
}

export function sessionCookie(token: string, secure: boolean): string {
  const maxAge = Math.floor(INACTIVITY_TIMEOUT_MS / 1000);
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return null; // malformed percent-encoding: no session, rather than a failed request
    }
  }
  return null;
}
