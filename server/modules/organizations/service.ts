/** Organizations: creation with its Default Project, settings with optimistic versions, deletion. */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { organizationLimitReason } from '../../../shared/plans.js';
import { ownedPlans } from './plan-limits.js';
import { decimalToNanos, nanosToDecimal } from '../../../shared/money.js';
import type { LimitPeriod } from '../../../shared/limits.js';
import { dayScope, limitStatus, monthScope, spentNow } from '../limits/service.js';
import { can, type Role } from '../../../shared/permissions.js';
import { runCommand, type Work } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import { loadBillingState } from '../billing/account.js';
import { cancelSubscriptionNow, isLiveSubscription } from '../billing/subscriptions.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { conflict, forbidden, badRequest, notFound, precondition } from '../../errors.js';
import { User } from '../auth/entities.js';
import { Project } from '../projects/entities.js';
import { Membership, Organization, type OrganizationEntity } from './entities.js';
import type { RowOf } from '../../db/rows.js';

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
    ...limitSettings(org),
  };
}

/** Spend limits (issue #12): developers' default budget, caps on credits per UTC day and month, calls in flight. */
function limitSettings(org: OrganizationEntity) {
  return {
    developerBudget: org.developerBudgetNanos != null && org.developerBudgetPeriod ? { amount: nanosToDecimal(BigInt(org.developerBudgetNanos)), period: org.developerBudgetPeriod } : null,
    dailySpendCap: org.dailySpendCapNanos == null ? null : nanosToDecimal(BigInt(org.dailySpendCapNanos)),
    monthlySpendCap: org.monthlySpendCapNanos == null ? null : nanosToDecimal(BigInt(org.monthlySpendCapNanos)),
    maxConcurrentCalls: org.maxConcurrentCalls ?? null,
  };
}
export type OrganizationView = ReturnType<typeof organizationView>;

function settingsSnapshot(org: OrganizationEntity) {
  const limits = limitSettings(org);
  return {
    name: org.name,
    billingEmail: org.billingEmail ?? null,
    retentionLevel: org.retentionLevel,
    developerBudget: limits.developerBudget ? `${limits.developerBudget.amount} per ${limits.developerBudget.period}` : null,
    dailySpendCap: limits.dailySpendCap,
    monthlySpendCap: limits.monthlySpendCap,
    maxConcurrentCalls: limits.maxConcurrentCalls,
  };
}
const LIMIT_FIELDS = ['developerBudget', 'dailySpendCap', 'monthlySpendCap', 'maxConcurrentCalls'] as const;

export async function createOrganization(work: Work, userId: string, input: { name: string; billingEmail?: string }) {
  const { em } = work;
  // The user's row lock serialises this user's creations, so parallel requests cannot overshoot the limit.
  const user = await em.findOneOrFail(User, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  const refused = organizationLimitReason(await ownedPlans(em, userId), user.organizationLimit);
  if (refused) throw forbidden(refused);
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
    allowedOrigins: [],
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
  const rows = await em.execute<(RowOf<typeof Organization, 'id' | 'name' | 'plan' | 'credits_nanos' | 'created_at'> & RowOf<typeof Membership, 'role'>)[]>(
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
  return organizationDetails(em, org, myRole);
}

/** The view plus the spend caps' current periods: spent and the next reset (UTC); null where no cap. */
async function organizationDetails(em: EntityManager, org: OrganizationEntity, myRole: Role) {
  const spent = await spentNow(em, [{ scope: dayScope(org.id), period: 'day' }, { scope: monthScope(org.id), period: 'month' }]);
  return {
    ...organizationView(org, myRole),
    dailySpend: limitStatus(org.dailySpendCapNanos ?? null, 'day', spent.get(dayScope(org.id))),
    monthlySpend: limitStatus(org.monthlySpendCapNanos ?? null, 'month', spent.get(monthScope(org.id))),
  };
}

export async function updateOrganization(
  work: Work,
  orgId: string,
  myRole: Role,
  input: {
    version: number;
    name?: string;
    billingEmail?: string | null;
    retentionLevel?: 'none' | 'retain';
    /** Decimal dollars (limit-schemas.ts limitAmount). */
    dailySpendCap?: string | null;
    monthlySpendCap?: string | null;
    maxConcurrentCalls?: number | null;
    developerBudget?: { amount: string; period: LimitPeriod } | null;
  },
) {
  // Caps on the organization's credits are the owners' (billing); a default budget for developers, owners' and admins'.
  if ((input.dailySpendCap !== undefined || input.monthlySpendCap !== undefined || input.maxConcurrentCalls !== undefined) && !can(myRole, 'billing.manage')) {
    throw forbidden(`your role (${myRole}) cannot change the organization's spend caps; ask an owner`);
  }
  if (input.developerBudget !== undefined && !can(myRole, 'member.manage')) throw forbidden(`your role (${myRole}) cannot change the developers' budget`);
  // Renaming is for admins too; the retention level is the owners' alone.
  if (input.retentionLevel !== undefined && !can(myRole, 'org.retention')) throw retentionForbidden(myRole);
  const { em } = work;
  const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!org) throw notFound('organization');
  if (org.version !== input.version) {
    throw conflict('someone else changed these settings while you were editing; review their changes and try again', await organizationDetails(em, org, myRole));
  }
  const before = settingsSnapshot(org);
  if (input.name !== undefined) org.name = input.name;
  if (input.billingEmail !== undefined) org.billingEmail = input.billingEmail;
  if (input.retentionLevel !== undefined) org.retentionLevel = input.retentionLevel;
  if (input.dailySpendCap !== undefined) org.dailySpendCapNanos = input.dailySpendCap === null ? null : decimalToNanos(input.dailySpendCap);
  if (input.monthlySpendCap !== undefined) org.monthlySpendCapNanos = input.monthlySpendCap === null ? null : decimalToNanos(input.monthlySpendCap);
  if (input.maxConcurrentCalls !== undefined) org.maxConcurrentCalls = input.maxConcurrentCalls;
  if (input.developerBudget !== undefined) {
    org.developerBudgetNanos = input.developerBudget ? decimalToNanos(input.developerBudget.amount) : null;
    org.developerBudgetPeriod = input.developerBudget?.period ?? null;
  }
  const after = settingsSnapshot(org);
  const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => before[k] !== after[k]);
  if (changed.length === 0) return organizationDetails(em, org, myRole);
  await em.flush(); // bumps version
  // Turning body retention off must stop the very next call from storing bodies, on every instance.
  // Spend limits likewise: every instance's gateway reads the new caps and budgets before this answers.
  if (changed.includes('retentionLevel') || LIMIT_FIELDS.some((f) => changed.includes(f))) await notifyInvalidation(work, { kind: 'organization', orgId });
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
  return organizationDetails(em, org, myRole);
}

/** What deleting the organization does to its money: shown in the confirmation before anything happens. */
export async function deletionPreview(em: EntityManager, orgId: string) {
  const state = await loadBillingState(em, orgId);
  const live = state.subscription.id && isLiveSubscription(state.subscription.status);
  return {
    name: state.name,
    plan: state.plan,
    /** Credits left in the balance: forfeited by the deletion (they are not refunded). */
    forfeitedCredits: nanosToDecimal(state.creditsNanos > 0n ? state.creditsNanos : 0n),
    /** The Pro subscription the deletion cancels at once (no further renewals), if any. */
    subscription: live ? { id: state.subscription.id!, status: state.subscription.status!, periodEnd: state.subscription.periodEnd, cancelAtPeriodEnd: state.subscription.cancelAtPeriodEnd } : null,
  };
}

/**
 * Deletes an organization for its members (memberships, projects, keys, invitations, provider keys
 * and usage go with it) while its financial records stay: the ledger, auto top-up attempts, Stripe
 * events and the audit trail keep its id, and a `deleted_organization` row archives what it was,
 * the credits it forfeited and what became of its subscription.
 *
 * A live subscription is canceled at Stripe first, before the transaction (idempotent, so a retry
 * cancels nothing twice); if Stripe refuses, nothing is deleted.
 */
export async function deleteOrganization(services: Services, actorId: string, orgId: string, confirmName: string) {
  const preview = await deletionPreview(services.orm.em.fork(), orgId);
  if (confirmName.trim() !== preview.name) throw badRequest(`type the organization's name exactly ("${preview.name}") to delete it`);
  let cancellation = 'none';
  let subscription: { id: string; canceled: boolean; status: string } | null = null;
  if (preview.subscription) {
    try {
      const result = await cancelSubscriptionNow(services.billing, preview.subscription.id);
      cancellation = `canceled (${result.status})`;
      subscription = { id: preview.subscription.id, canceled: true, status: result.status };
    } catch (err) {
      services.log.error({ err, orgId, subscription: preview.subscription.id }, 'could not cancel the subscription of an organization being deleted');
      throw precondition('the Pro subscription could not be canceled at the payment provider, so nothing was deleted; try again in a moment or contact support');
    }
  }
  return runCommand(services, actorId, async (work) => {
    const { em } = work;
    const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!org) throw notFound('organization');
    if (confirmName.trim() !== org.name) throw badRequest(`type the organization's name exactly ("${org.name}") to delete it`);
    const state = await loadBillingState(em, orgId);
    const forfeited = state.creditsNanos;
    if (forfeited !== 0n) {
      // The ledger still sums to the balance it ended with: zero.
      await em.execute(
        `insert into credit_ledger (org_id, type, amount_nanos, balance_after_nanos, status, description, actor_id, created_at)
         values (?, 'adjustment', ?::bigint, 0, 'completed', ?, ?, now())`,
        [orgId, (-forfeited).toString(), `Credits forfeited: the organization was deleted (${nanosToDecimal(forfeited)})`, actorId],
      );
    }
    await em.execute(
      `insert into deleted_organization (id, name, plan, billing_email, stripe_customer_id, subscription_id, subscription_cancellation,
         forfeited_credits_nanos, created_at, deleted_by, deleted_at)
       values (?, ?, ?, ?, ?, ?, ?, ?::bigint, ?, ?, now())`,
      [orgId, org.name, org.plan, org.billingEmail ?? null, state.stripeCustomerId, state.subscription.id, cancellation, forfeited.toString(), org.createdAt, actorId],
    );
    work.audit(orgId, 'organization.deleted', { type: 'organization', id: orgId }, { name: org.name, plan: org.plan }, {
      forfeitedCredits: nanosToDecimal(forfeited),
      subscription: cancellation,
    });
    // Cascades remove projects, memberships, invitations, keys, usage and stored events; the
    // ledger, auto top-up attempts and audit entries have no foreign key and stay.
    await em.execute('delete from organization where id = ?', [orgId]);
    // Its API keys went with it: no instance may answer another call with them from its caches.
    await notifyInvalidation(work, { kind: 'organization', orgId });
    work.emit(orgId, { type: 'organization.deleted' }, { store: false });
    return { ok: true as const, forfeitedCredits: nanosToDecimal(forfeited), subscription };
  });
}

export function retentionForbidden(role: Role) {
  return forbidden(`your role (${role}) cannot change the data retention level; only owners can`);
}
