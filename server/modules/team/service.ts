/** Members, roles and invitations. Every membership change locks the organization row first,
 *  so "at least one owner" holds when demote, remove and leave requests race. */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { assignableRoles, canChangeMember, ROLE_LABELS, type Role } from '../../../shared/permissions.js';
import type { Work } from '../../events/unit-of-work.js';
import { badRequest, conflict, forbidden, notFound, precondition } from '../../errors.js';
import { activeKeysByCreator, revokeKeysCreatedBy, transferKeysCreatedBy } from '../apiKeys/service.js';
import { User, type UserEntity } from '../auth/entities.js';
import { Membership, Organization } from '../organizations/entities.js';
import { Invitation, type InvitationEntity } from './entities.js';
import type { RowOf } from '../../db/rows.js';
import { membersSpend } from '../limits/service.js';
import { notifyInvalidation } from '../gateway/invalidation.js';

export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const LAST_OWNER = 'an organization must keep at least one owner; make someone else an owner first';

export function hashInvitationToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function invitationView(i: InvitationEntity) {
  return { id: i.id, email: i.email, role: i.role, expiresAt: i.expiresAt, createdAt: i.createdAt, invitedBy: i.invitedBy };
}

export async function listMembers(em: EntityManager, orgId: string) {
  const rows = await em.execute<(RowOf<typeof Membership, 'user_id' | 'role' | 'created_at'> & RowOf<typeof User, 'email' | 'name'>)[]>(
    `select m.user_id, u.email, u.name, m.role, m.created_at
       from membership m join app_user u on u.id = m.user_id
      where m.org_id = ? order by case m.role when 'owner' then 0 when 'admin' then 1 else 2 end, u.name`,
    [orgId],
  );
  // What removing each member would do to the organization's gateway keys (the remove dialog says it).
  const keys = await activeKeysByCreator(em, orgId);
  // Spend limits: each member's budget, what its period spent, when it resets.
  const spend = await membersSpend(em, orgId, rows.map((r) => ({ userId: r.user_id, role: r.role })));
  return rows.map((r) => ({ userId: r.user_id, email: r.email, name: r.name, role: r.role, joinedAt: r.created_at, activeApiKeys: keys.get(r.user_id) ?? 0, ...spend.get(r.user_id)! }));
}

export async function listPendingInvitations(em: EntityManager, orgId: string) {
  const list = await em.find(
    Invitation,
    { orgId, acceptedAt: null, revokedAt: null, declinedAt: null, expiresAt: { $gt: new Date() } },
    { orderBy: { createdAt: 'desc' } },
  );
  return list.map(invitationView);
}

async function lockOrganization(em: EntityManager, orgId: string) {
  const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!org) throw notFound('organization');
  return org;
}

export async function inviteMember(work: Work, actorRole: Role, orgId: string, input: { email: string; role: Role }, appUrl: string) {
  const { em } = work;
  if (!assignableRoles(actorRole).includes(input.role)) {
    throw forbidden(`your role (${actorRole}) cannot invite ${ROLE_LABELS[input.role]}s`);
  }
  const org = await lockOrganization(em, orgId);
  const existing = await em.execute<{ n: string }[]>(
    'select count(*) as n from membership m join app_user u on u.id = m.user_id where m.org_id = ? and u.email = ?',
    [orgId, input.email],
  );
  if (Number(existing[0]!.n) > 0) throw conflict(`${input.email} is already a member of this organization`);
  // A new invitation replaces a pending one for the same address: the earlier link stops working.
  const pending = await em.find(Invitation, { orgId, email: input.email, acceptedAt: null, revokedAt: null, declinedAt: null });
  const now = new Date();
  for (const old of pending) old.revokedAt = now;
  const token = randomBytes(32).toString('base64url');
  const invitation = em.create(Invitation, {
    id: randomUUID(),
    orgId,
    email: input.email,
    role: input.role,
    tokenHash: hashInvitationToken(token),
    invitedBy: work.actorId!,
    expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
    acceptedAt: null,
    acceptedBy: null,
    revokedAt: null,
    declinedAt: null,
    createdAt: now,
  });
  await em.flush();
  const inviter = await em.findOne(User, { id: work.actorId! });
  const inviteUrl = `${appUrl}/invite/${token}`;
  work.email(
    input.email,
    `${inviter?.name ?? 'A teammate'} invited you to ${org.name} on LLM Gateway`,
    `${inviter?.name ?? 'A teammate'} (${inviter?.email ?? ''}) invited you to join ${org.name} as ${ROLE_LABELS[input.role]}.\n\n` +
      `Accept the invitation: ${inviteUrl}\n\nThe link works once and expires in 7 days.` +
      (pending.length ? ' It replaces the invitation sent earlier, whose link no longer works.' : '') +
      `\nIf you sign up with ${input.email} without the link, the invitation shows on your home page once you have confirmed your address.`,
  );
  work.audit(orgId, 'invitation.created', { type: 'invitation', id: invitation.id }, null, { email: input.email, role: input.role });
  for (const old of pending) work.emit(orgId, { type: 'invitation.revoked', invitationId: old.id, email: old.email });
  work.emit(orgId, { type: 'invitation.created', invitationId: invitation.id, email: input.email, role: input.role });
  // What the new invitation did to earlier ones (the invite form says it): their links stopped working.
  const replaced = pending.map((old) => ({ id: old.id, createdAt: old.createdAt, expiresAt: old.expiresAt, role: old.role }));
  return { invitation: invitationView(invitation), inviteUrl, replaced };
}

export async function revokeInvitation(work: Work, invitationId: string) {
  const { em } = work;
  const invitation = await em.findOne(Invitation, { id: invitationId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!invitation) throw notFound('invitation');
  if (invitation.acceptedAt) throw precondition('this invitation was already accepted; remove the member instead');
  if (invitation.revokedAt) return { ok: true as const };
  invitation.revokedAt = new Date();
  await em.flush();
  work.audit(invitation.orgId, 'invitation.revoked', { type: 'invitation', id: invitation.id }, { email: invitation.email, role: invitation.role }, null);
  work.emit(invitation.orgId, { type: 'invitation.revoked', invitationId: invitation.id, email: invitation.email });
  return { ok: true as const };
}

/** What the accept page shows before the visitor signs in. */
export async function previewInvitation(em: EntityManager, token: string) {
  const invitation = await em.findOne(Invitation, { tokenHash: hashInvitationToken(token) });
  if (!invitation) throw notFound('invitation');
  const org = await em.findOne(Organization, { id: invitation.orgId });
  const inviter = await em.findOne(User, { id: invitation.invitedBy });
  const status = invitation.acceptedAt ? 'accepted' : invitation.revokedAt ? 'revoked' : invitation.declinedAt ? 'declined' : invitation.expiresAt < new Date() ? 'expired' : 'pending';
  return { organizationName: org?.name ?? '', email: invitation.email, role: invitation.role, inviterName: inviter?.name ?? null, status, expiresAt: invitation.expiresAt };
}

export async function acceptInvitation(work: Work, user: UserEntity, token: string) {
  const found = await work.em.findOne(Invitation, { tokenHash: hashInvitationToken(token) });
  if (!found) throw notFound('invitation');
  const result = await acceptInvitationRow(work, user, found.id);
  // The link was emailed to this address: opening it proves the address, as a verification link would.
  await work.em.nativeUpdate(User, { id: user.id, email: found.email, emailVerifiedAt: null }, { emailVerifiedAt: new Date() });
  return result;
}

/**
 * Invitations addressed to the caller's email, once that address is verified (the home page lists
 * them to accept or decline). An unverified account sees none: anyone can sign up with any address.
 */
export async function invitationsForUser(em: EntityManager, user: Pick<UserEntity, 'id' | 'email' | 'emailVerifiedAt'>) {
  if (!user.emailVerifiedAt) return [];
  const rows = await em.execute<
    (RowOf<typeof Invitation, 'id' | 'org_id' | 'role' | 'expires_at' | 'created_at'> & { organization_name: string; inviter_name: string | null; inviter_email: string | null })[]
  >(
    `select i.id, i.org_id, i.role, i.expires_at, i.created_at, o.name as organization_name, u.name as inviter_name, u.email as inviter_email
       from invitation i join organization o on o.id = i.org_id left join app_user u on u.id = i.invited_by
      where i.email = ? and i.accepted_at is null and i.revoked_at is null and i.declined_at is null and i.expires_at > now()
        and not exists (select 1 from membership m where m.org_id = i.org_id and m.user_id = ?)
      order by i.created_at desc`,
    [user.email, user.id],
  );
  return rows.map((r) => ({
    id: r.id,
    orgId: r.org_id,
    organizationName: r.organization_name,
    role: r.role,
    inviterName: r.inviter_name,
    inviterEmail: r.inviter_email,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
  }));
}

/** The invitation, if it is addressed to the caller's verified email; NOT_FOUND otherwise (nothing leaks). */
async function addressedInvitation(work: Work, user: UserEntity, invitationId: string) {
  const fresh = await work.em.findOne(User, { id: user.id });
  const invitation = await work.em.findOne(Invitation, { id: invitationId });
  if (!fresh?.emailVerifiedAt || !invitation || invitation.email !== fresh.email) throw notFound('invitation');
  return { invitation, user: fresh };
}

/** Accepts an invitation from the home page (no link: the verified address is the proof). */
export async function acceptPendingInvitation(work: Work, user: UserEntity, invitationId: string) {
  const found = await addressedInvitation(work, user, invitationId);
  return acceptInvitationRow(work, found.user, found.invitation.id);
}

/** Declines an invitation addressed to the caller: it leaves the organization's pending list. */
export async function declineInvitation(work: Work, user: UserEntity, invitationId: string) {
  const { em } = work;
  const found = await addressedInvitation(work, user, invitationId);
  await lockOrganization(em, found.invitation.orgId);
  const invitation = await em.findOneOrFail(Invitation, { id: found.invitation.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
  if (invitation.acceptedAt) throw precondition('you already accepted this invitation; leave the organization instead');
  if (invitation.declinedAt || invitation.revokedAt) return { ok: true as const };
  invitation.declinedAt = new Date();
  await em.flush();
  work.audit(invitation.orgId, 'invitation.declined', { type: 'invitation', id: invitation.id }, { email: invitation.email, role: invitation.role }, null);
  work.emit(invitation.orgId, { type: 'invitation.declined', invitationId: invitation.id, email: invitation.email });
  return { ok: true as const };
}

async function acceptInvitationRow(work: Work, user: UserEntity, invitationId: string) {
  const { em } = work;
  const found = await em.findOneOrFail(Invitation, { id: invitationId });
  // Lock order: organization first (as every membership change), then the invitation.
  await lockOrganization(em, found.orgId);
  const invitation = await em.findOneOrFail(Invitation, { id: found.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
  if (invitation.revokedAt) {
    const newer = await em.count(Invitation, { orgId: invitation.orgId, email: invitation.email, createdAt: { $gt: invitation.createdAt }, acceptedAt: null, revokedAt: null });
    throw precondition(newer ? 'this invitation was replaced by a newer one (revoked); open the link in the latest invitation email' : 'this invitation was revoked; ask for a new one');
  }
  if (invitation.declinedAt) throw precondition('you declined this invitation; ask for a new one');
  if (invitation.acceptedAt) throw conflict('this invitation has already been used');
  if (invitation.expiresAt < new Date()) throw precondition('this invitation has expired; ask for a new one');
  if (invitation.email !== user.email) {
    throw forbidden(`this invitation was sent to ${invitation.email}; sign in with that account to accept it`);
  }
  const member = await em.findOne(Membership, { orgId: invitation.orgId, userId: user.id });
  // Refused, not consumed: accepting would change nothing (the role stays as it is), and a role change is an owner's or admin's call.
  if (member) throw conflict(`you are already a member of this organization (as ${ROLE_LABELS[member.role]}); the invitation stays open`);
  invitation.acceptedAt = new Date();
  invitation.acceptedBy = user.id;
  em.create(Membership, { id: randomUUID(), orgId: invitation.orgId, userId: user.id, role: invitation.role, createdAt: new Date() });
  await em.flush();
  work.audit(invitation.orgId, 'invitation.accepted', { type: 'invitation', id: invitation.id }, null, { email: user.email });
  work.emit(invitation.orgId, { type: 'invitation.accepted', invitationId: invitation.id, email: invitation.email });
  work.audit(invitation.orgId, 'member.added', { type: 'member', id: user.id }, null, { email: user.email, role: invitation.role });
  work.emit(invitation.orgId, { type: 'member.added', userId: user.id, email: user.email, name: user.name, role: invitation.role });
  return { orgId: invitation.orgId };
}

async function countOwners(em: EntityManager, orgId: string): Promise<number> {
  return em.count(Membership, { orgId, role: 'owner' });
}

export async function updateMemberRole(work: Work, actorRole: Role, orgId: string, userId: string, role: Role) {
  const { em } = work;
  await lockOrganization(em, orgId);
  const member = await em.findOne(Membership, { orgId, userId });
  if (!member) throw notFound('member');
  const from = member.role;
  if (from === role) return { userId, role };
  if (!canChangeMember(actorRole, from, role)) {
    throw forbidden(`your role (${actorRole}) cannot change ${ROLE_LABELS[from]} to ${ROLE_LABELS[role]}; only owners grant or take the owner role`);
  }
  if (from === 'owner' && (await countOwners(em, orgId)) <= 1) throw precondition(LAST_OWNER);
  member.role = role;
  await em.flush();
  work.audit(orgId, 'member.role_changed', { type: 'member', id: userId }, { role: from }, { role });
  // Gateway keys carry their member's role (the developers' default budget applies by role).
  await notifyInvalidation(work, { kind: 'organization', orgId });
  work.emit(orgId, { type: 'member.updated', userId, role, previousRole: from });
  return { userId, role };
}

/**
 * Removes a member (or the member leaves). The API keys they created stop working with them: they
 * are revoked, on every instance's gateway before this answers, unless the remover gives them to a
 * member who stays (`transferKeysTo`), who then owns them.
 */
export async function removeMember(work: Work, actorRole: Role, orgId: string, userId: string, reason: 'removed' | 'left', opts: { transferKeysTo?: string } = {}) {
  const { em } = work;
  await lockOrganization(em, orgId);
  const member = await em.findOne(Membership, { orgId, userId });
  if (!member) throw notFound('member');
  if (reason === 'removed' && !canChangeMember(actorRole, member.role, null)) {
    throw forbidden(`your role (${actorRole}) cannot remove ${ROLE_LABELS[member.role]}s`);
  }
  if (member.role === 'owner' && (await countOwners(em, orgId)) <= 1) throw precondition(LAST_OWNER);
  const heirId = opts.transferKeysTo;
  if (heirId !== undefined) {
    if (heirId === userId) throw badRequest('transferKeysTo: the API keys must go to a member who stays, not to the one leaving');
    // The organization row lock above keeps the heir from being removed meanwhile.
    if (!(await em.findOne(Membership, { orgId, userId: heirId }))) throw notFound('member to transfer the API keys to');
  }
  const user = await em.findOne(User, { id: userId });
  em.remove(member);
  await em.flush();
  await em.execute('delete from presence where org_id = ? and user_id = ?', [orgId, userId]);
  // Their budget goes with them: someone invited back later starts without one.
  await em.execute('delete from member_budget where org_id = ? and user_id = ?', [orgId, userId]);
  const revoked = heirId === undefined ? await revokeKeysCreatedBy(work, orgId, userId, work.actorId) : [];
  const transferred = heirId !== undefined ? await transferKeysCreatedBy(work, orgId, userId, heirId) : [];
  work.audit(
    orgId,
    reason === 'left' ? 'member.left' : 'member.removed',
    { type: 'member', id: userId },
    { email: user?.email, role: member.role },
    { apiKeysRevoked: revoked.length, apiKeysTransferred: transferred.length, ...(heirId !== undefined ? { apiKeysTransferredTo: heirId } : {}) },
  );
  work.emit(orgId, { type: 'member.removed', userId, reason });
  return { ok: true as const, apiKeys: { revoked: revoked.length, transferred: transferred.length, transferredTo: heirId ?? null } };
}
