/**
 * Plan limits as the dashboard shows them before a form is submitted: how many organizations the
 * user owns and may own, how many projects an organization has and may have, and the refusal the
 * server would give (the same words, from shared/plans.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { organizationLimitFor, organizationLimitReason, projectLimit, projectLimitReason, type PlanId } from '../../../shared/plans.js';
import { notFound } from '../../errors.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from './entities.js';
import type { User } from '../auth/entities.js';

/** The plans of the organizations the user owns (one entry per organization). */
export async function ownedPlans(em: EntityManager, userId: string): Promise<PlanId[]> {
  const rows = await em.execute<RowOf<typeof Organization, 'plan'>[]>(
    `select o.plan from membership m join organization o on o.id = m.org_id where m.user_id = ? and m.role = 'owner'`,
    [userId],
  );
  return rows.map((r) => r.plan);
}

/** `organization.creationLimit`: {owned, limit (null: no fixed number), plan that sets it, reason when at the limit}. */
export async function organizationCreationLimit(em: EntityManager, userId: string) {
  const [plans, users] = await Promise.all([
    ownedPlans(em, userId),
    em.execute<RowOf<typeof User, 'organization_limit'>[]>('select organization_limit from app_user where id = ?', [userId]),
  ]);
  const override = users[0]?.organization_limit ?? null;
  const { limit, plan } = organizationLimitFor(plans, override);
  return { owned: plans.length, limit, plan, reason: organizationLimitReason(plans, override) };
}

/** `organization.limits`: the organization's project count against its plan (reason when at the limit). */
export async function organizationLimits(em: EntityManager, orgId: string) {
  const rows = await em.execute<(RowOf<typeof Organization, 'plan' | 'project_limit'> & { projects: string })[]>(
    'select o.plan, o.project_limit, (select count(*) from project p where p.org_id = o.id) as projects from organization o where o.id = ?',
    [orgId],
  );
  const r = rows[0];
  if (!r) throw notFound('organization');
  const used = Number(r.projects);
  return {
    plan: r.plan,
    projects: { used, limit: projectLimit(r.plan, r.project_limit), reason: projectLimitReason(r.plan, r.project_limit, used) },
  };
}
