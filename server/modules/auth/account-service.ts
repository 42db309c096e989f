/**
 * Account upkeep: a forgotten password (reset by an emailed link), a change of password, of email
 * address (confirmed from the new address) and of name, verifying the address, the list of the
 * user's sessions. Each change is one unit of work with its account audit entry and its emails;
 * sessions it ends lose their WebSockets on every instance after commit. Limits: docs/decisions.md.
 */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { createHash } from 'node:crypto';
import { Session, User, type UserEntity } from './entities.js';
import { hashPassword, verifyPassword } from '../../auth/password.js';
import { INACTIVITY_TIMEOUT_MS } from '../../auth/session.js';
import { consumeRateLimit, resetRateLimit, signInKeys, type Limit } from '../../auth/rate-limit.js';
import { accountLinkUrl, ACCOUNT_TOKEN_TTL_MS, claimAccountToken, createAccountToken, voidAccountTokens } from '../../auth/account-token.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import { badRequest, conflict, notFound, tooManyRequests, unauthorized } from '../../errors.js';
import { recordAccountEvent } from './account-audit.js';
import { userView, type AuthDeps, type RequestMeta } from './service.js';
import { endSessionsEverywhere } from './two-factor-service.js';
import type { RowOf } from '../../db/rows.js';

/** Reset requests per IP (whatever the addresses): the same limit whether or not an address has an account. */
export const PASSWORD_RESET_PER_IP: Limit = { max: 10, windowSeconds: 60 * 60 };
/** Reset emails per address: past it the answer stays the same and no more emails go out. */
export const PASSWORD_RESET_EMAILS_PER_ADDRESS: Limit = { max: 3, windowSeconds: 60 * 60 };
/** Uses of reset / verification / confirmation links per IP (each token is unguessable; this bounds the work). */
export const ACCOUNT_LINKS_PER_IP: Limit = { max: 30, windowSeconds: 15 * 60 };
/** Wrong current passwords per user (a stolen session must not become a password oracle). */
export const PASSWORD_CHANGES_PER_USER: Limit = { max: 10, windowSeconds: 15 * 60 };
/** Change-of-address and verification emails per user. */
export const EMAIL_LINKS_PER_USER: Limit = { max: 5, windowSeconds: 60 * 60 };

const minutes = (ms: number) => Math.round(ms / 60_000);
const hours = (ms: number) => Math.round(ms / 3_600_000);

function tooMany(retryAfterSeconds: number) {
  const m = Math.ceil(retryAfterSeconds / 60);
  return tooManyRequests(`too many attempts; try again in ${m} minute${m === 1 ? '' : 's'}`);
}

function lockedUser(work: Work, userId: string) {
  return work.em.findOneOrFail(User, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
}

/** Deletes the user's sessions (all, or all but `keep`) in the command; their sockets close after commit. */
async function endSessions(work: Work, deps: AuthDeps, userId: string, keep: string | null): Promise<number> {
  const ended = await work.em.execute<RowOf<typeof Session, 'id'>[]>(
    `delete from session where user_id = ? ${keep ? 'and id <> ?' : ''} returning id`,
    keep ? [userId, keep] : [userId],
  );
  work.afterCommit(() => endSessionsEverywhere(deps, ended.map((s) => s.id)));
  return ended.length;
}

const sessionsPhrase = (n: number) => (n === 0 ? '' : n === 1 ? ' One other session was signed out.' : ` ${n} other sessions were signed out.`);

// ---------------------------------------------------------------------------------------------
// Email verification

/** Emails a link that verifies the user's current address (at sign-up, or asked again from the account page). */
export function emailVerificationLink(work: Work, deps: AuthDeps, user: Pick<UserEntity, 'id' | 'email' | 'name'>): Promise<void> {
  return createAccountToken(work.em, user.id, 'email_verification', user.email).then((token) => {
    work.email(
      user.email,
      'Confirm your email address',
      [
        `Hello ${user.name},`,
        '',
        `Confirm that ${user.email} is your address for LLM Gateway by opening this link within ${hours(ACCOUNT_TOKEN_TTL_MS.email_verification)} hours:`,
        '',
        accountLinkUrl(deps.appUrl, 'email_verification', token),
        '',
        'Until then you can use the dashboard as usual, but invitations sent to this address do not show on your home page.',
        'If you did not create this account, you can ignore this email.',
      ].join('\n'),
    );
  });
}

export async function sendVerificationEmail(deps: AuthDeps, userId: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    if (user.emailVerifiedAt) return { ok: true as const, alreadyVerified: true, email: user.email };
    const quota = await consumeRateLimit(work.em, `email:link:${userId}`, EMAIL_LINKS_PER_USER);
    if (!quota.allowed) throw tooMany(quota.retryAfterSeconds);
    await emailVerificationLink(work, deps, user);
    recordAccountEvent(work, userId, 'email.verification_sent', { ip: meta.ip });
    return { ok: true as const, alreadyVerified: false, email: user.email };
  });
}

/** Claims a verification link: the address it was sent to is verified if it is still the account's. */
export async function verifyEmail(deps: AuthDeps, token: string, meta: RequestMeta) {
  await limitLinkUse(deps, meta);
  return runCommand(deps, null, async (work) => {
    const claimed = await claimAccountToken(work.em, 'email_verification', token);
    if (!claimed) throw unauthorized('this verification link is not valid: it was already used, has expired, or a newer one was sent; ask for a new one on your account page');
    const user = await lockedUser(work, claimed.userId);
    if (user.email !== claimed.email) throw badRequest(`this link was for ${claimed.email}, which is no longer the address of your account`);
    if (!user.emailVerifiedAt) {
      user.emailVerifiedAt = new Date();
      recordAccountEvent(work, user.id, 'email.verified', { actorId: user.id, ip: meta.ip, details: { email: user.email } });
    }
    return { ok: true as const, email: user.email };
  });
}

async function limitLinkUse(deps: AuthDeps, meta: RequestMeta) {
  const byIp = await consumeRateLimit(deps.orm.em.fork(), `account-link:ip:${meta.ip}`, ACCOUNT_LINKS_PER_IP);
  if (!byIp.allowed) throw tooMany(byIp.retryAfterSeconds);
}

// ---------------------------------------------------------------------------------------------
// Password reset

/**
 * Emails a reset link if the address has an account. The answer is the same either way ({ok}),
 * and the limits count the same either way (per IP, per address), so neither tells whether the
 * address is taken. A new link makes the earlier ones stop working.
 */
export async function requestPasswordReset(deps: AuthDeps, email: string, meta: RequestMeta): Promise<{ ok: true }> {
  const em = deps.orm.em.fork();
  const byIp = await consumeRateLimit(em, `reset:ip:${meta.ip}`, PASSWORD_RESET_PER_IP);
  if (!byIp.allowed) throw tooMany(byIp.retryAfterSeconds);
  const byAddress = await consumeRateLimit(em, `reset:email:${email}`, PASSWORD_RESET_EMAILS_PER_ADDRESS);
  const user = await em.findOne(User, { email });
  if (!user || !byAddress.allowed) return { ok: true };
  await runCommand(deps, null, async (work) => {
    const token = await createAccountToken(work.em, user.id, 'password_reset', user.email);
    recordAccountEvent(work, user.id, 'password.reset_requested', { ip: meta.ip });
    work.email(
      user.email,
      'Reset your LLM Gateway password',
      [
        `Someone (perhaps you) asked to reset the password of your LLM Gateway account (${user.email}).`,
        `Choose a new password by opening this link within ${minutes(ACCOUNT_TOKEN_TTL_MS.password_reset)} minutes:`,
        '',
        accountLinkUrl(deps.appUrl, 'password_reset', token),
        '',
        'The link works once; a newer reset email replaces it. Setting a new password signs you out everywhere.',
        'If you did not ask for this, ignore this email: your password stays as it is.',
      ].join('\n'),
    );
  });
  return { ok: true };
}

/**
 * Sets a new password with a reset link: single use, within the hour, for the address the account
 * still has. Every session of the account ends (whoever held one may be why the owner lost it);
 * the address counts as verified (the link reached it); the account's failed sign-in count resets.
 */
export async function resetPassword(deps: AuthDeps, token: string, password: string, meta: RequestMeta): Promise<{ ok: true; email: string }> {
  await limitLinkUse(deps, meta);
  const passwordHash = await hashPassword(password);
  return runCommand(deps, null, async (work) => {
    const claimed = await claimAccountToken(work.em, 'password_reset', token);
    if (!claimed) throw unauthorized('this reset link is not valid: it was already used, has expired, or a newer one was sent; ask for a new one');
    const user = await lockedUser(work, claimed.userId);
    if (user.email !== claimed.email) throw unauthorized('this reset link was sent to an address the account no longer has; ask for a new one');
    user.passwordHash = passwordHash;
    user.emailVerifiedAt ??= new Date();
    await voidAccountTokens(work.em, user.id, ['password_reset']);
    const ended = await endSessions(work, deps, user.id, null);
    await resetRateLimit(work.em, signInKeys.accountFailures(user.email));
    recordAccountEvent(work, user.id, 'password.reset', { actorId: user.id, ip: meta.ip, details: { sessionsEnded: ended } });
    work.email(
      user.email,
      'Your password was changed',
      `The password of your LLM Gateway account (${user.email}) was just set with a reset link, and every session was signed out. If this was not you, reset it again now and turn on two-factor authentication.`,
    );
    return { ok: true as const, email: user.email };
  });
}

// ---------------------------------------------------------------------------------------------
// Signed-in changes

/** Changes the password (the current one is asked); ends the user's other sessions and their sockets. */
export async function changePassword(deps: AuthDeps, userId: string, currentSessionId: string | null, input: { currentPassword: string; password: string }, meta: RequestMeta) {
  const em = deps.orm.em.fork();
  const quota = await consumeRateLimit(em, `password:change:${userId}`, PASSWORD_CHANGES_PER_USER);
  if (!quota.allowed) throw tooMany(quota.retryAfterSeconds);
  const user = await em.findOneOrFail(User, { id: userId });
  if (!(await verifyPassword(user.passwordHash, input.currentPassword))) throw badRequest('that is not your current password');
  if (input.currentPassword === input.password) throw badRequest('choose a new password, different from the current one');
  const passwordHash = await hashPassword(input.password);
  return runCommand(deps, userId, async (work) => {
    const locked = await lockedUser(work, userId);
    locked.passwordHash = passwordHash;
    await voidAccountTokens(work.em, userId, ['password_reset']);
    const ended = await endSessions(work, deps, userId, currentSessionId);
    await resetRateLimit(work.em, `password:change:${userId}`);
    recordAccountEvent(work, userId, 'password.changed', { ip: meta.ip, details: { otherSessionsEnded: ended } });
    work.email(
      locked.email,
      'Your password was changed',
      `The password of your LLM Gateway account (${locked.email}) was changed.${sessionsPhrase(ended)} If this was not you, reset your password now from the sign-in page.`,
    );
    return { ok: true as const, otherSessionsEnded: ended };
  });
}

/**
 * Starts a change of address: a link goes to the new address, and the old one is told. Nothing
 * changes until the link is opened (auth.confirmEmail). An address that already has an account gets
 * the same answer (its owner is emailed instead), so this does not tell which addresses are taken.
 */
export async function changeEmail(deps: AuthDeps, userId: string, email: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    if (user.email === email) throw badRequest('that is already the address of your account');
    const quota = await consumeRateLimit(work.em, `email:link:${userId}`, EMAIL_LINKS_PER_USER);
    if (!quota.allowed) throw tooMany(quota.retryAfterSeconds);
    const taken = await work.em.findOne(User, { email });
    const expiresAt = new Date(Date.now() + ACCOUNT_TOKEN_TTL_MS.email_change);
    recordAccountEvent(work, userId, 'email.change_requested', { ip: meta.ip, details: { to: email } });
    if (taken) {
      work.email(
        email,
        'Someone tried to move an account to your address',
        `Someone signed in to LLM Gateway as ${user.email} asked to use ${email} for their account. You already have an account with this address, so nothing was changed. You can ignore this email.`,
      );
      return { ok: true as const, email, expiresAt };
    }
    const token = await createAccountToken(work.em, userId, 'email_change', email);
    work.email(
      email,
      'Confirm your new email address',
      [
        `Hello ${user.name},`,
        '',
        `To use ${email} for your LLM Gateway account instead of ${user.email}, open this link within ${minutes(ACCOUNT_TOKEN_TTL_MS.email_change)} minutes:`,
        '',
        accountLinkUrl(deps.appUrl, 'email_change', token),
        '',
        'The link works once. If you did not ask for this, ignore this email: nothing changes.',
      ].join('\n'),
    );
    work.email(
      user.email,
      'A change of your email address was requested',
      `Someone signed in to your LLM Gateway account asked to change its address from ${user.email} to ${email}. It changes only once the link sent to ${email} is opened. If this was not you, change your password now.`,
    );
    return { ok: true as const, email, expiresAt };
  });
}

/** Claims the link sent to the new address: the account's address becomes it, verified. */
export async function confirmEmail(deps: AuthDeps, token: string, meta: RequestMeta) {
  await limitLinkUse(deps, meta);
  try {
    return await runCommand(deps, null, async (work) => {
      const claimed = await claimAccountToken(work.em, 'email_change', token);
      if (!claimed) throw unauthorized('this confirmation link is not valid: it was already used, has expired, or a newer one was sent; change the address again from your account page');
      const user = await lockedUser(work, claimed.userId);
      const previous = user.email;
      if (previous === claimed.email) return { ok: true as const, email: previous };
      if (await work.em.findOne(User, { email: claimed.email })) throw conflict(`${claimed.email} now belongs to another account; your address stays ${previous}`);
      user.email = claimed.email;
      user.emailVerifiedAt = new Date();
      await work.em.flush();
      await voidAccountTokens(work.em, user.id, ['email_change', 'email_verification', 'password_reset']);
      recordAccountEvent(work, user.id, 'email.changed', { actorId: user.id, ip: meta.ip, details: { from: previous, to: claimed.email } });
      work.email(
        previous,
        'Your email address was changed',
        `The address of your LLM Gateway account was changed from ${previous} to ${claimed.email}; emails now go there. If this was not you, reply to your operator at once: someone has your account.`,
      );
      return { ok: true as const, email: claimed.email };
    });
  } catch (err) {
    // Taken between the check and the write (another sign-up won the race).
    if (err instanceof UniqueConstraintViolationException) throw conflict('that address now belongs to another account; your address is unchanged');
    throw err;
  }
}

export async function updateProfile(deps: AuthDeps, userId: string, name: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    const previous = user.name;
    user.name = name;
    if (previous !== name) recordAccountEvent(work, userId, 'profile.updated', { ip: meta.ip, details: { from: previous, to: name } });
    return { user: userView(user) };
  });
}

// ---------------------------------------------------------------------------------------------
// Sessions

/**
 * A session's id is half of its token, so it never leaves the server: the list names each session
 * by a digest of it instead.
 */
export function sessionRef(sessionId: string): string {
  return createHash('sha256').update(`session-ref:${sessionId}`).digest('base64url').slice(0, 22);
}

export async function listSessions(em: EntityManager, userId: string, currentSessionId: string | null) {
  const rows = await em.find(
    Session,
    { userId, lastVerifiedAt: { $gt: new Date(Date.now() - INACTIVITY_TIMEOUT_MS) } },
    { orderBy: { lastVerifiedAt: 'desc', createdAt: 'desc' } },
  );
  // This session first, then the most recently active.
  rows.sort((a, b) => Number(b.id === currentSessionId) - Number(a.id === currentSessionId));
  return rows.map((s) => ({
    id: sessionRef(s.id),
    current: s.id === currentSessionId,
    createdAt: s.createdAt,
    /** Refreshed at most hourly (server/auth/session.ts), so "last active" is to the hour. */
    lastSeenAt: s.lastVerifiedAt,
    userAgent: s.userAgent ?? null,
    ip: s.ip ?? null,
  }));
}

/** "Sign out everywhere else": every session of the user but this one ends, with its WebSockets. */
export async function revokeOtherSessions(deps: AuthDeps, userId: string, currentSessionId: string | null, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const ended = await endSessions(work, deps, userId, currentSessionId);
    recordAccountEvent(work, userId, 'sessions.revoked_others', { ip: meta.ip, details: { ended } });
    return { ok: true as const, ended };
  });
}

/** Ends one other session of the user, named as the list names it. */
export async function revokeSession(deps: AuthDeps, userId: string, currentSessionId: string | null, ref: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const ids = await work.em.execute<RowOf<typeof Session, 'id'>[]>('select id from session where user_id = ?', [userId]);
    const target = ids.find((r) => sessionRef(r.id) === ref);
    if (!target) throw notFound('session (it may have ended already; reload the list)');
    if (target.id === currentSessionId) throw badRequest('this is the session you are using; sign out instead');
    await work.em.execute('delete from session where id = ?', [target.id]);
    work.afterCommit(() => endSessionsEverywhere(deps, [target.id]));
    recordAccountEvent(work, userId, 'sessions.revoked', { ip: meta.ip });
    return { ok: true as const, ended: 1 };
  });
}
