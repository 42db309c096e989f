/**
 * Accounts: sign-up (which never tells whether an address is taken; a new account is emailed a
 * verification link), sign-in (password, then TOTP or a recovery code; an emailed link while the
 * account is under attack), personal API tokens. Two-factor setup lives in two-factor-service.ts,
 * password reset and the other account changes in account-service.ts. The limits are explained in docs/decisions.md.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { randomUUID } from 'node:crypto';
import { ApiToken, User, type UserEntity } from './entities.js';
import { decoyHash, hashPassword, verifyPassword } from '../../auth/password.js';
import { createSession, generateSecureRandomString } from '../../auth/session.js';
import {
  consumeRateLimit,
  currentCount,
  resetRateLimit,
  signInKeys,
  SIGN_IN_FAILURES_PER_ACCOUNT,
  SIGN_IN_LINKS_PER_ACCOUNT,
  SIGN_IN_PER_ACCOUNT_AND_IP,
  SIGN_IN_PER_IP,
  SIGN_UP_NOTICES_PER_ACCOUNT,
  SIGN_UP_PER_IP,
} from '../../auth/rate-limit.js';
import { consumeTotp } from '../../auth/two-factor.js';
import { claimRecoveryCode } from '../../auth/recovery-codes.js';
import { claimSignInLink, createSignInLink, signInLinkUrl } from '../../auth/sign-in-link.js';
import type { SecretBox } from '../../auth/secrets.js';
import { createApiToken } from '../../auth/api-token.js';
import { runCommand, type WorkDeps } from '../../events/unit-of-work.js';
import { notFound, tooManyRequests, unauthorized } from '../../errors.js';
import { recordAccountEvent } from './account-audit.js';
import { emailVerificationLink } from './account-service.js';

/** What the account commands run with (a subset of the app's services). */
export type AuthDeps = WorkDeps & { secretBox: SecretBox; appUrl: string };

export interface RequestMeta {
  ip: string;
  userAgent?: string | null;
}

export function userView(u: UserEntity) {
  return { id: u.id, email: u.email, name: u.name, twoFactorEnabled: !!u.totpSecret, emailVerified: !!u.emailVerifiedAt, createdAt: u.createdAt };
}
export type UserView = ReturnType<typeof userView>;

function tooMany(retryAfterSeconds: number) {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  return tooManyRequests(`too many attempts; try again in ${minutes} minute${minutes === 1 ? '' : 's'}`);
}

/**
 * Creates the account and signs it in. For an address that already has an account the answer is
 * the same as far as this response can make it (same shape, a session cookie of the same form that
 * opens no session, the same argon2 work): nothing is created, and the address's owner is told by
 * email. The client learns which case it was only by asking `auth.me` (see docs/decisions.md).
 */
export async function signUp(deps: AuthDeps, input: { email: string; password: string; name: string }, meta: RequestMeta): Promise<{ user: UserView; token: string }> {
  const em = deps.orm.em.fork();
  const limit = await consumeRateLimit(em, `signup:ip:${meta.ip}`, SIGN_UP_PER_IP);
  if (!limit.allowed) throw tooMany(limit.retryAfterSeconds);
  // Hashed whether or not the address is taken, so both answers take the same time.
  const passwordHash = await hashPassword(input.password);
  let existing = await em.findOne(User, { email: input.email });
  if (!existing) {
    try {
      return await runCommand(deps, null, async (work) => {
        const user = work.em.create(User, {
          id: randomUUID(),
          email: input.email,
          name: input.name,
          passwordHash,
          totpSecret: null,
          totpPendingSecret: null,
          totpLastStep: null,
          organizationLimit: null,
          emailVerifiedAt: null,
          createdAt: new Date(),
        });
        recordAccountEvent(work, user.id, 'account.created', { actorId: user.id, ip: meta.ip });
        // The same one email as a taken address gets (the notice below): the answer stays alike.
        await emailVerificationLink(work, deps, user);
        const { token } = await createSession(work.em, user.id, meta.userAgent, meta.ip);
        return { user: userView(user), token };
      });
    } catch (err) {
      // Two sign-ups racing for one new address: the loser answers as for a taken one.
      if (!(err instanceof UniqueConstraintViolationException)) throw err;
      existing = await deps.orm.em.fork().findOne(User, { email: input.email });
      if (!existing) throw err;
    }
  }
  await answerTakenAddress(deps, existing, meta);
  const decoy: UserView = { id: randomUUID(), email: input.email, name: input.name, twoFactorEnabled: false, emailVerified: false, createdAt: new Date() };
  return { user: decoy, token: `${generateSecureRandomString()}.${generateSecureRandomString()}` };
}

async function answerTakenAddress(deps: AuthDeps, owner: UserEntity, meta: RequestMeta): Promise<void> {
  await runCommand(deps, null, async (work) => {
    // At most a few of these emails an hour: sign-up must not become a way to flood someone's inbox.
    const notice = await consumeRateLimit(work.em, `signup:notice:${owner.id}`, SIGN_UP_NOTICES_PER_ACCOUNT);
    recordAccountEvent(work, owner.id, 'account.sign_up_attempted', { ip: meta.ip, details: { emailed: notice.allowed } });
    if (!notice.allowed) return;
    work.email(
      owner.email,
      'Someone tried to create an account with your address',
      [
        `Someone (perhaps you) tried to create a new LLM Gateway account with ${owner.email}.`,
        'You already have an account with this address, so nothing was created or changed.',
        '',
        `If it was you, sign in instead: ${deps.appUrl}/signin?email=${encodeURIComponent(owner.email)}`,
        `If you have forgotten your password, reset it: ${deps.appUrl}/forgot-password?email=${encodeURIComponent(owner.email)}`,
        'If it was not you, you can ignore this email: your account is unchanged.',
      ].join('\n'),
    );
  });
}

export type SignInResult =
  | { kind: 'signedIn'; user: UserEntity; token: string }
  | { kind: 'twoFactorRequired' }
  | { kind: 'emailLinkRequired' };

const WRONG_PASSWORD = 'email or password is incorrect';
const WRONG_CODE = 'that two-factor code is not valid or was already used; enter the next code from your authenticator app';
const WRONG_ANY = 'email, password or code is incorrect';

/**
 * Password sign-in. Limits: attempts per (account, IP) pair and per IP (the attacker slows only
 * themselves down). Failures per account from every IP never lock the account: past the threshold
 * a password alone is not enough, a TOTP account signs in with its code as always, an account
 * without one is emailed a one-time link; and the answer no longer depends on the password, so
 * the attack learns nothing from it.
 */
export async function signIn(
  deps: AuthDeps,
  input: { email: string; password: string; totp?: string | undefined; recoveryCode?: string | undefined },
  meta: RequestMeta,
): Promise<SignInResult> {
  const em = deps.orm.em.fork();
  const byIp = await consumeRateLimit(em, signInKeys.ip(meta.ip), SIGN_IN_PER_IP);
  if (!byIp.allowed) throw tooMany(byIp.retryAfterSeconds);
  const byPair = await consumeRateLimit(em, signInKeys.pair(input.email, meta.ip), SIGN_IN_PER_ACCOUNT_AND_IP);
  if (!byPair.allowed) throw tooMany(byPair.retryAfterSeconds);
  const underAttack = (await currentCount(em, signInKeys.accountFailures(input.email), SIGN_IN_FAILURES_PER_ACCOUNT)) >= SIGN_IN_FAILURES_PER_ACCOUNT.max;

  const user = await em.findOne(User, { email: input.email });
  const valid = await verifyPassword(user?.passwordHash ?? (await decoyHash()), input.password);
  const failed = async (message: string): Promise<never> => {
    await consumeRateLimit(em, signInKeys.accountFailures(input.email), SIGN_IN_FAILURES_PER_ACCOUNT);
    throw unauthorized(message);
  };
  const hasSecondFactor = !!user?.totpSecret;
  const secondFactorGiven = !!(input.totp || input.recoveryCode);

  if (underAttack && !hasSecondFactor) {
    // The same answer whatever the password (and whether the account exists): only the owner's
    // inbox learns that it was right.
    if (user && valid) await emailSignInLink(deps, user, meta);
    else await consumeRateLimit(em, signInKeys.accountFailures(input.email), SIGN_IN_FAILURES_PER_ACCOUNT);
    return { kind: 'emailLinkRequired' };
  }
  if (underAttack && !secondFactorGiven) return { kind: 'twoFactorRequired' }; // password not judged yet
  if (!user || !valid) return failed(underAttack ? WRONG_ANY : WRONG_PASSWORD);
  if (user.totpSecret) {
    if (!secondFactorGiven) return { kind: 'twoFactorRequired' };
    const passed = input.totp
      ? await consumeTotp(em, user.id, deps.secretBox.open(user.totpSecret), input.totp)
      : await useRecoveryCode(deps, user, input.recoveryCode!, meta);
    if (!passed) return failed(underAttack ? WRONG_ANY : input.totp ? WRONG_CODE : 'that recovery code is not valid or was already used');
  }
  await resetRateLimit(em, signInKeys.pair(input.email, meta.ip));
  const { token } = await createSession(em, user.id, meta.userAgent, meta.ip);
  return { kind: 'signedIn', user, token };
}

/** Spends a recovery code (audited, and the owner is told by email how many are left). */
async function useRecoveryCode(deps: AuthDeps, user: UserEntity, code: string, meta: RequestMeta): Promise<boolean> {
  return runCommand(deps, user.id, async (work) => {
    const left = await claimRecoveryCode(work.em, user.id, code);
    if (left === null) return false;
    recordAccountEvent(work, user.id, 'two_factor.recovery_code_used', { ip: meta.ip, details: { left } });
    work.email(
      user.email,
      'A recovery code was used to sign in',
      [
        `A recovery code was just used to sign in to your LLM Gateway account (${user.email}). ${left} of your recovery codes ${left === 1 ? 'is' : 'are'} left.`,
        'If you have lost your authenticator, set it up again under Account and security, and make new recovery codes there.',
        'If this was not you, change your password now: someone has your password and one of your recovery codes.',
      ].join('\n'),
    );
    return true;
  });
}

async function emailSignInLink(deps: AuthDeps, user: UserEntity, meta: RequestMeta): Promise<void> {
  await runCommand(deps, null, async (work) => {
    const quota = await consumeRateLimit(work.em, signInKeys.links(user.id), SIGN_IN_LINKS_PER_ACCOUNT);
    if (!quota.allowed) return; // links already on their way; the answer stays the same
    const token = createSignInLink(work.em, user.id);
    recordAccountEvent(work, user.id, 'sign_in.link_sent', { ip: meta.ip });
    work.email(
      user.email,
      'Your sign-in link',
      [
        'Someone signed in to your LLM Gateway account with your password. Because many wrong passwords were',
        'tried for this account recently, we ask you to confirm it is you. Open this link within 15 minutes to sign in:',
        '',
        signInLinkUrl(deps.appUrl, token),
        '',
        'The link works once. If this was not you, do not open it, and change your password: someone knows it.',
      ].join('\n'),
    );
  });
}

/** Signs in with an emailed link: single use, 15 minutes. */
export async function signInWithLink(deps: AuthDeps, token: string, meta: RequestMeta): Promise<{ user: UserEntity; token: string }> {
  const em = deps.orm.em.fork();
  const byIp = await consumeRateLimit(em, signInKeys.ip(meta.ip), SIGN_IN_PER_IP);
  if (!byIp.allowed) throw tooMany(byIp.retryAfterSeconds);
  return runCommand(deps, null, async (work) => {
    const userId = await claimSignInLink(work.em, token);
    if (!userId) throw unauthorized('this sign-in link is not valid: it was already used or has expired; sign in again to get a new one');
    const user = await work.em.findOneOrFail(User, { id: userId });
    recordAccountEvent(work, user.id, 'sign_in.link_used', { actorId: user.id, ip: meta.ip });
    await resetRateLimit(work.em, signInKeys.pair(user.email, meta.ip));
    const session = await createSession(work.em, user.id, meta.userAgent, meta.ip);
    return { user, token: session.token };
  });
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
