/**
 * Two-factor authentication: setup (a key shown once, as text and as a QR code), turning it on
 * (which issues one-time recovery codes and ends the user's other sessions), turning it off, and
 * new recovery codes. Each change is one unit of work with its account audit entry.
 */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { RecoveryCode, User } from './entities.js';
import { consumeTotp, generateTotpKey, totpQrCode, totpUri } from '../../auth/two-factor.js';
import { claimRecoveryCode, issueRecoveryCodes, unusedRecoveryCodes } from '../../auth/recovery-codes.js';
import type { SecretBox } from '../../auth/secrets.js';
import { runCommand, type Work, type WorkDeps } from '../../events/unit-of-work.js';
import { badRequest } from '../../errors.js';
import { recordAccountEvent } from './account-audit.js';
import { userView, type AuthDeps, type RequestMeta } from './service.js';
import type { RowOf } from '../../db/rows.js';
import type { Session } from './entities.js';

export async function beginTwoFactorSetup(em: EntityManager, box: SecretBox, userId: string) {
  const user = await em.findOneOrFail(User, { id: userId });
  if (user.totpSecret) throw badRequest('two-factor authentication is already on; turn it off first to set up a new device');
  const key = generateTotpKey();
  user.totpPendingSecret = box.seal(key);
  await em.flush();
  const otpauthUri = totpUri(key, user.email);
  return { secret: key, otpauthUri, qrCode: await totpQrCode(otpauthUri) };
}

export async function twoFactorStatus(em: EntityManager, userId: string) {
  const user = await em.findOneOrFail(User, { id: userId });
  return { enabled: !!user.totpSecret, recoveryCodesLeft: user.totpSecret ? await unusedRecoveryCodes(em, userId) : 0 };
}

/** The user's row, locked for the command: two changes of the same account's two-factor state serialize. */
function lockedUser(work: Work, userId: string) {
  return work.em.findOneOrFail(User, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
}

/**
 * Turns two-factor authentication on with a code from the new device. Returns the recovery codes
 * (shown once). Every other session of the user ends (on every instance, with its WebSockets):
 * whoever was signed in before the second factor was required must prove it again.
 */
export async function enableTwoFactor(deps: AuthDeps, userId: string, currentSessionId: string | null, code: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    if (user.totpSecret) throw badRequest('two-factor authentication is already on');
    if (!user.totpPendingSecret) throw badRequest('start the setup first');
    // A new device: codes of the previous one say nothing about it (rolled back with a wrong code).
    await work.em.execute('update app_user set totp_last_step = null where id = ?', [userId]);
    if (!(await consumeTotp(work.em, userId, deps.secretBox.open(user.totpPendingSecret), code))) {
      throw badRequest('that code is not valid; check the time on your device and try the current code');
    }
    user.totpSecret = user.totpPendingSecret;
    user.totpPendingSecret = null;
    const recoveryCodes = await issueRecoveryCodes(work.em, userId);
    const ended = await work.em.execute<RowOf<typeof Session, 'id'>[]>(
      `delete from session where user_id = ? ${currentSessionId ? 'and id <> ?' : ''} returning id`,
      currentSessionId ? [userId, currentSessionId] : [userId],
    );
    recordAccountEvent(work, userId, 'two_factor.enabled', { ip: meta.ip, details: { otherSessionsEnded: ended.length } });
    work.email(
      user.email,
      'Two-factor authentication is on',
      `Two-factor authentication was turned on for your LLM Gateway account (${user.email}). ${ended.length ? `Your other ${ended.length === 1 ? 'session was' : `${ended.length} sessions were`} signed out. ` : ''}If this was not you, sign in and change your password now.`,
    );
    work.afterCommit(() => endSessionsEverywhere(deps, ended.map((s) => s.id)));
    return { user: userView(user), recoveryCodes };
  });
}

/** Turns it off with a current code from the authenticator, or with a recovery code (the device is lost). */
export async function disableTwoFactor(deps: AuthDeps, userId: string, code: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    if (!user.totpSecret) throw badRequest('two-factor authentication is not on');
    const passed = /^\d{6}$/.test(code.trim())
      ? await consumeTotp(work.em, userId, deps.secretBox.open(user.totpSecret), code.trim())
      : (await claimRecoveryCode(work.em, userId, code)) !== null;
    if (!passed) throw badRequest('that code is not valid or was already used; enter the next code from your authenticator app, or a recovery code');
    user.totpSecret = null;
    user.totpPendingSecret = null;
    await work.em.nativeDelete(RecoveryCode, { userId });
    recordAccountEvent(work, userId, 'two_factor.disabled', { ip: meta.ip });
    work.email(
      user.email,
      'Two-factor authentication is off',
      `Two-factor authentication was turned off for your LLM Gateway account (${user.email}); its recovery codes no longer work. If this was not you, sign in, change your password and turn it on again.`,
    );
    return { user: userView(user) };
  });
}

/** New recovery codes (the old ones stop working), with a current code from the authenticator. */
export async function regenerateRecoveryCodes(deps: AuthDeps, userId: string, code: string, meta: RequestMeta) {
  return runCommand(deps, userId, async (work) => {
    const user = await lockedUser(work, userId);
    if (!user.totpSecret) throw badRequest('two-factor authentication is not on');
    if (!(await consumeTotp(work.em, userId, deps.secretBox.open(user.totpSecret), code))) {
      throw badRequest('that code is not valid or was already used; enter the next code from your authenticator app');
    }
    const recoveryCodes = await issueRecoveryCodes(work.em, userId);
    recordAccountEvent(work, userId, 'two_factor.recovery_codes_regenerated', { ip: meta.ip });
    return { recoveryCodes };
  });
}

/** Ends these sessions' live streams and WebSockets on every instance (their rows are already gone). */
export async function endSessionsEverywhere(deps: WorkDeps, sessionIds: string[]): Promise<void> {
  const em = deps.orm.em.fork();
  for (const id of sessionIds) {
    await deps.bus.endSession(id, async (channel, payload) => {
      await em.execute('select pg_notify(?, ?)', [channel, payload]);
    });
  }
}
