/** Every plan number lives here (DESIGN.md "Plans and limits"). */
export const PLAN_IDS = ['free', 'pro', 'enterprise'] as const;
export type PlanId = (typeof PLAN_IDS)[number];
export type RetentionLevel = 'none' | 'retain';

export interface Plan {
  id: PlanId;
  name: string;
  /**
   * Organizations a user may own while their best owned organization is on this plan (null: no
   * fixed number; the operator may set one per user). See `organizationLimitFor`.
   */
  organizationsPerUser: number | null;
  /** Projects one organization on this plan may have (null: no fixed number; the operator may set one per organization). */
  projectsPerOrganization: number | null;
  /** Days request logs are kept, by retention level (null: custom). */
  retentionDays: Record<RetentionLevel, number | null>;
  /** Price in whole US cents (null: contact sales). */
  priceCents: { monthly: number; yearly: number } | null;
  support: string;
}

export const PLANS: Record<PlanId, Plan> = {
  free: {
    id: 'free',
    name: 'Free',
    organizationsPerUser: 3,
    projectsPerOrganization: 10,
    retentionDays: { none: 3, retain: 3 },
    priceCents: { monthly: 0, yearly: 0 },
    support: 'Community support',
  },
  pro: {
    id: 'pro',
    name: 'Pro',
    organizationsPerUser: 10,
    projectsPerOrganization: 100,
    retentionDays: { none: 3, retain: 90 },
    priceCents: { monthly: 5000, yearly: 50000 },
    support: 'Email support',
  },
  enterprise: {
    id: 'enterprise',
    name: 'Enterprise',
    organizationsPerUser: null,
    projectsPerOrganization: null,
    retentionDays: { none: 90, retain: null },
    priceCents: null,
    support: 'Dedicated support',
  },
};

/** The number of organizations a user who owns only Free organizations (or none) may own. */
export const DEFAULT_ORGANIZATIONS_PER_USER = PLANS.free.organizationsPerUser as number;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Plans from lowest to highest. */
const RANK: Record<PlanId, number> = { free: 0, pro: 1, enterprise: 2 };

/** The plan after `plan` that lifts `value` above `current` (null: none does; Enterprise is "contact us"). */
function liftingPlan(plan: PlanId, current: number, value: (p: Plan) => number | null): Plan | null {
  for (const id of PLAN_IDS) {
    if (RANK[id] <= RANK[plan] || id === 'enterprise') continue;
    const next = value(PLANS[id]);
    if (next !== null && next > current) return PLANS[id];
  }
  return null;
}

export function projectLimit(plan: PlanId, override: number | null | undefined): number | null {
  return override ?? PLANS[plan].projectsPerOrganization;
}

/**
 * Why an organization cannot have another project, in words (null: it can). Names the plan that
 * would lift the limit, and only one that does: past Pro, or with a limit set for the organization
 * by the operator, the way up is to contact us (Enterprise).
 */
export function projectLimitReason(plan: PlanId, override: number | null | undefined, count: number): string | null {
  const limit = projectLimit(plan, override);
  if (limit === null || count < limit) return null;
  if (override != null) {
    return `this organization allows ${plural(limit, 'project')} (a limit set for it by support); delete a project, or contact us to raise the limit`;
  }
  const lift = liftingPlan(plan, limit, (p) => p.projectsPerOrganization);
  const up = lift ? `upgrade to ${lift.name} for up to ${lift.projectsPerOrganization} projects` : `contact us about ${PLANS.enterprise.name} for more`;
  return `the ${PLANS[plan].name} plan allows ${limit} projects per organization; delete a project, or ${up}`;
}

/**
 * How many organizations a user may own. Counted per user, and raised by what they already own:
 * the best plan among the organizations they own sets the number (3 while all are Free, 10 once
 * one of them is on Pro, no fixed number once one is on Enterprise). A number set for the user by
 * the operator (`app_user.organization_limit`) replaces all of that.
 */
export function organizationLimitFor(ownedPlans: readonly PlanId[], override: number | null | undefined): { limit: number | null; plan: PlanId } {
  const best = ownedPlans.reduce<PlanId>((a, b) => (RANK[b] > RANK[a] ? b : a), 'free');
  if (override != null) return { limit: override, plan: best };
  return { limit: PLANS[best].organizationsPerUser, plan: best };
}

/** Why a user cannot create another organization, in words (null: they can). */
export function organizationLimitReason(ownedPlans: readonly PlanId[], override: number | null | undefined): string | null {
  const { limit, plan } = organizationLimitFor(ownedPlans, override);
  if (limit === null || ownedPlans.length < limit) return null;
  if (override != null) {
    return `your account allows ${plural(limit, 'organization')} (a limit set for it by support); delete one you own, or contact us to raise the limit`;
  }
  const lift = liftingPlan(plan, limit, (p) => p.organizationsPerUser);
  const up = lift
    ? `upgrade one of your organizations to ${lift.name} to own up to ${lift.organizationsPerUser}`
    : `contact us about ${PLANS.enterprise.name} for more`;
  return `the ${PLANS[plan].name} plan allows ${limit} organizations per user; delete one you own, or ${up}`;
}
