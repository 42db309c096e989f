/** Organizations: creation with its Default Project, settings with optimistic versions, deletion. */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { DEFAULT_ORGANIZATIONS_PER_USER, PLANS } from '../../../shared/plans.js';
import { nanosToDecimal } from '../../../shared/money.js';
import type { Role } from '../../../shared/permissions.js';
import type { Work } from '../../events/unit-of-work.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { conflict, forbidden, badRequest, notFound } from '../../trpc/errors.js';
import { User } from '../auth/entities.js';
import { Project } from '../projects/entities.js';
import { Membership, Organization, type OrganizationEntity } from './entities.js';

export const DEFAULT_PROJECT_NAME = 'Default Project';

export function organizationView(org: OrganizationEntity, myRole: Role) {
  return {
    id: org.id,
    name: org.name,
    billingEmail: org.billingEmail ?? null,
    plan: org.plan,
    billingCycle: org.billingCycle ?? null,
    retentionLevel: org.retentionLevel,
    credits: nanosToDecimal(BigInt(org.creditsNanos)),
    version: org.version,
    myRole,
    createdAt: org.createdAt,
  };
}
export type OrganizationView = ReturnType<typeof organizationView>;

function settingsSnapshot(org: OrganizationEntity) {
  return { name: org.name, billingEmail: org.billingEmail ?? null, retentionLevel: org.retentionLevel };
}

export async function createOrganization(work: Work, userId: string, input: { name: string; billingEmail?: string }) {
  const { em } = work;
  // The user's row lock serialises this user's creations, so parallel requests cannot overshoot the limit.
  const user = await em.findOneOrFail(User, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  const limit = user.organizationLimit ?? DEFAULT_ORGANIZATIONS_PER_USER;
  const owned = await em.count(Membership, { userId, role: 'owner' });
  if (owned >= limit) {
    throw forbidden(
      `the ${PLANS.free.name} plan allows ${limit} organizations per user; delete one you own or contact support to raise the limit`,
    );
  }
  const now = new Date();
  const org = em.create(Organization, {
    id: randomUUID(),
    name: input.name,
    billingEmail: input.billingEmail ?? user.email,
    plan: 'free',
    billingCycle: null,
    retentionLevel: 'none',
    creditsNanos: 0n,
    projectLimit: null,
    createdBy: userId,
    createdAt: now,
  });
  const project = em.create(Project, {
    id: randomUUID(),
    orgId: org.id,
    name: DEFAULT_PROJECT_NAME,
    isDefault: true,
    mode: 'hybrid',
    cachingEnabled: false,
    cacheTtlSeconds: 300,
    createdAt: now,
  });
  em.create(Membership, { id: randomUUID(), orgId: org.id, userId, role: 'owner', createdAt: now });
  await em.flush();
  work.audit(org.id, 'organization.created', { type: 'organization', id: org.id }, null, settingsSnapshot(org));
  work.audit(org.id, 'project.created', { type: 'project', id: project.id }, null, { name: project.name });
  work.emit(org.id, { type: 'member.added', userId, email: user.email, name: user.name, role: 'owner' });
  return { organization: organizationView(org, 'owner'), defaultProject: { id: project.id, name: project.name } };
}

export async function listOrganizationsForUser(em: EntityManager, userId: string) {
  const rows = await em.execute<{ id: string; name: string; role: Role; plan: string; credits_nanos: string; created_at: Date }[]>(
    `select o.id, o.name, m.role, o.plan, o.credits_nanos, o.created_at
       from membership m join organization o on o.id = m.org_id
      where m.user_id = ? order by o.name, o.created_at`,
    [userId],
  );
  return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, plan: r.plan, credits: nanosToDecimal(BigInt(r.credits_nanos)) }));
}

export async function getOrganization(em: EntityManager, orgId: string, myRole: Role) {
  const org = await em.findOne(Organization, { id: orgId });
  if (!org) throw notFound('organization');
  return organizationView(org, myRole);
}

export async function updateOrganization(
  work: Work,
  orgId: string,
  myRole: Role,
  input: { version: number; name?: string; billingEmail?: string | null; retentionLevel?: 'none' | 'retain' },
) {
  const { em } = work;
  const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!org) throw notFound('organization');
  if (org.version !== input.version) {
    throw conflict('someone else changed these settings while you were editing; review their changes and try again', organizationView(org, myRole));
  }
  const before = settingsSnapshot(org);
  if (input.name !== undefined) org.name = input.name;
  if (input.billingEmail !== undefined) org.billingEmail = input.billingEmail;
  if (input.retentionLevel !== undefined) org.retentionLevel = input.retentionLevel;
  const after = settingsSnapshot(org);
  const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => before[k] !== after[k]);
  if (changed.length === 0) return organizationView(org, myRole);
  await em.flush(); // bumps version
  // Turning body retention off must stop the very next call from storing bodies, on every instance.
  if (changed.includes('retentionLevel')) await notifyInvalidation(work, { kind: 'organization', orgId });
  const changedBefore = Object.fromEntries(changed.map((k) => [k, before[k]]));
  const changedAfter = Object.fromEntries(changed.map((k) => [k, after[k]]));
  work.audit(orgId, 'organization.updated', { type: 'organization', id: orgId }, changedBefore, changedAfter);
  work.emit(orgId, {
    type: 'organization.updated',
    version: org.version,
    name: org.name,
    billingEmail: org.billingEmail ?? null,
    retentionLevel: org.retentionLevel,
    plan: org.plan,
  });
  return organizationView(org, myRole);
}

export async function deleteOrganization(work: Work, orgId: string, confirmName: string) {
  const { em } = work;
  const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!org) throw notFound('organization');
  if (confirmName.trim() !== org.name) throw badRequest(`type the organization's name exactly ("${org.name}") to delete it`);
  // Cascades remove projects, memberships, invitations, audit entries and stored events.
  await em.execute('delete from organization where id = ?', [orgId]);
  // Its API keys went with it: no instance may answer another call with them from its caches.
  await notifyInvalidation(work, { kind: 'organization', orgId });
  work.emit(orgId, { type: 'organization.deleted' }, { store: false });
  return { ok: true as const };
}

export function retentionForbidden(role: Role) {
  return forbidden(`your role (${role}) cannot change the data retention level; only owners can`);
}
