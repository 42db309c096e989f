/** Accounts: sign-up, sign-in (with the TOTP step), two-factor setup, personal API tokens. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { TRPCError } from '@trpc/server';
import { randomUUID } from 'node:crypto';
import { ApiToken, User, type UserEntity } from './entities.js';
import { decoyHash, hashPassword, verifyPassword } from '../../auth/password.js';
import { createSession } from '../../auth/session.js';
import { consumeRateLimit, resetRateLimit, SIGN_IN_PER_EMAIL, SIGN_IN_PER_IP, SIGN_UP_PER_IP } from '../../auth/rate-limit.js';
import { generateTotpKey, totpStep, totpUri } from '../../auth/two-factor.js';
import type { SecretBox } from '../../auth/secrets.js';
import { createApiToken } from '../../auth/api-token.js';
import { conflict, badRequest, notFound } from '../../trpc/errors.js';

export function userView(u: UserEntity) {
  return { id: u.id, email: u.email, name: u.name, twoFactorEnabled: !!u.totpSecret, createdAt: u.createdAt };
}

function tooMany(retryAfterSeconds: number) {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: `too many attempts; try again in ${minutes} minute${minutes === 1 ? '' : 's'}` });
}

export async function signUp(em: EntityManager, input: { email: string; password: string; name: string }, meta: { ip: string; userAgent?: string | null }) {
  const limit = await consumeRateLimit(em, `signup:ip:${meta.ip}`, SIGN_UP_PER_IP);
  if (!limit.allowed) throw tooMany(limit.retryAfterSeconds);
  if (await em.count(User, { email: input.email })) throw conflict('an account with this email already exists; sign in instead');
  const user = em.create(User, {
    id: randomUUID(),
    email: input.email,
    name: input.name,
    passwordHash: await hashPassword(input.password),
    totpSecret: null,
    totpPendingSecret: null,
    organizationLimit: null,
    createdAt: new Date(),
  });
  await em.flush(); // a racing duplicate fails on the unique email and maps to CONFLICT
  const { session, token } = await createSession(em, user.id, meta.userAgent);
  return { user, session, token };
}

/**
 * Accepts a two-factor code once: it must match the key, and its 30-second step must be later than
 * the last one accepted for this user (one atomic UPDATE, so two requests racing with the same code
 * cannot both pass). A code seen by someone looking over a shoulder is already spent.
 */
async function consumeTotp(em: EntityManager, userId: string, base32Key: string, code: string): Promise<boolean> {
  const step = totpStep(base32Key, code);
  if (step === null) return false;
  const taken = await em.execute<{ id: string }[]>(
    'update app_user set totp_last_step = ? where id = ? and (totp_last_step is null or totp_last_step < ?) returning id',
    [step.toString(), userId, step.toString()],
  );
  return taken.length > 0;
}

export async function signIn(
  em: EntityManager,
  box: SecretBox,
  input: { email: string; password: string; totp?: string },
  meta: { ip: string; userAgent?: string | null },
) {
  const byIp = await consumeRateLimit(em, `signin:ip:${meta.ip}`, SIGN_IN_PER_IP);
  if (!byIp.allowed) throw tooMany(byIp.retryAfterSeconds);
  const byEmail = await consumeRateLimit(em, `signin:email:${input.email}`, SIGN_IN_PER_EMAIL);
  if (!byEmail.allowed) throw tooMany(byEmail.retryAfterSeconds);

  const user = await em.findOne(User, { email: input.email });
  const valid = await verifyPassword(user?.passwordHash ?? (await decoyHash()), input.password);
  if (!user || !valid) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'email or password is incorrect' });
  if (user.totpSecret) {
    if (!input.totp) return { twoFactorRequired: true as const };
    if (!(await consumeTotp(em, user.id, box.open(user.totpSecret), input.totp))) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'that two-factor code is not valid or was already used; enter the next code from your authenticator app' });
    }
  }
  await resetRateLimit(em, `signin:email:${input.email}`);
  const { session, token } = await createSession(em, user.id, meta.userAgent);
  return { user, session, token };
}

export async function beginTwoFactorSetup(em: EntityManager, box: SecretBox, userId: string) {
  const user = await em.findOneOrFail(User, { id: userId });
  if (user.totpSecret) throw badRequest('two-factor authentication is already on; turn it off first to set up a new device');
  const key = generateTotpKey();
  user.totpPendingSecret = box.seal(key);
  await em.flush();
  return { secret: key, otpauthUri: totpUri(key, user.email) };
}

export async function enableTwoFactor(em: EntityManager, box: SecretBox, userId: string, code: string) {
  const user = await em.findOneOrFail(User, { id: userId });
  if (user.totpSecret) throw badRequest('two-factor authentication is already on');
  if (!user.totpPendingSecret) throw badRequest('start the setup first');
  // A new device: codes of the previous one say nothing about it.
  await em.execute('update app_user set totp_last_step = null where id = ?', [userId]);
  if (!(await consumeTotp(em, userId, box.open(user.totpPendingSecret), code))) throw badRequest('that code is not valid; check the time on your device and try the current code');
  user.totpSecret = user.totpPendingSecret;
  user.totpPendingSecret = null;
  await em.flush();
  return userView(user);
}

export async function disableTwoFactor(em: EntityManager, box: SecretBox, userId: string, code: string) {
  const user = await em.findOneOrFail(User, { id: userId });
  if (!user.totpSecret) throw badRequest('two-factor authentication is not on');
  if (!(await consumeTotp(em, userId, box.open(user.totpSecret), code))) throw badRequest('that code is not valid or was already used; enter the next code from your authenticator app');
  user.totpSecret = null;
  await em.flush();
  return userView(user);
}

export async function createPersonalToken(em: EntityManager, userId: string, name: string) {
  const { token, plain } = await createApiToken(em, userId, name);
  return { id: token.id, name: token.name, token: plain, createdAt: token.createdAt };
}

export async function listPersonalTokens(em: EntityManager, userId: string) {
  const tokens = await em.find(ApiToken, { userId }, { orderBy: { createdAt: 'desc' } });
  return tokens.map((t) => ({ id: t.id, name: t.name, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt ?? null }));
}

export async function revokePersonalToken(em: EntityManager, userId: string, id: string) {
  const deleted = await em.nativeDelete(ApiToken, { id, userId });
  if (!deleted) throw notFound('token');
  return { ok: true as const };
}
