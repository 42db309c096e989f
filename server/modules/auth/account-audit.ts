/**
 * Account-level audit entries (account_audit_log): security events of one user's account, which
 * belong to no organization. Written in the command's unit of work, so they commit with the change.
 */
import type { Work } from '../../events/unit-of-work.js';
import { AccountAuditEntry } from './entities.js';

export type AccountAction =
  | 'account.created'
  | 'account.sign_up_attempted'
  | 'sign_in.link_sent'
  | 'sign_in.link_used'
  | 'two_factor.enabled'
  | 'two_factor.disabled'
  | 'two_factor.recovery_codes_regenerated'
  | 'two_factor.recovery_code_used'
  | 'email.verification_sent'
  | 'email.verified'
  | 'email.change_requested'
  | 'email.changed'
  | 'password.reset_requested'
  | 'password.reset'
  | 'password.changed'
  | 'profile.updated'
  | 'sessions.revoked_others'
  | 'sessions.revoked';

export function recordAccountEvent(
  work: Pick<Work, 'em' | 'actorId'>,
  userId: string,
  action: AccountAction,
  opts: { actorId?: string | null; ip?: string | null; details?: Record<string, unknown> | null } = {},
): void {
  work.em.create(AccountAuditEntry, {
    userId,
    actorId: opts.actorId === undefined ? work.actorId : opts.actorId,
    action,
    ip: opts.ip?.slice(0, 100) ?? null,
    details: opts.details ?? null,
    createdAt: new Date(),
  } as never);
}
