/** Every plan number lives here (DESIGN.md "Plans and limits"). */
export const PLAN_IDS = ['free', 'pro', 'enterprise'] as const;
export type PlanId = (typeof PLAN_IDS)[number];
export type RetentionLevel = 'none' | 'retain';

export interface Plan {
  id: PlanId;
  name: string;
  /** Organizations a user may own on this plan (null: custom, set by the operator). */
  organizationsPerUser: number | null;
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
    organizationsPerUser: 3,
    projectsPerOrganization: 10,
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

/** The number of organizations a user may own: their personal override, else the Free plan's. */
export const DEFAULT_ORGANIZATIONS_PER_USER = PLANS.free.organizationsPerUser as number;

export function projectLimit(plan: PlanId, override: number | null | undefined): number | null {
  return override ?? PLANS[plan].projectsPerOrganization;
}
