/** The plans table in shared/plans.ts against DESIGN.md "Plans and limits". */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ORGANIZATIONS_PER_USER, PLAN_IDS, PLANS, projectLimit } from '../../shared/plans.js';

describe('plans', () => {
  it('has Free, Pro and Enterprise', () => {
    expect(PLAN_IDS).toEqual(['free', 'pro', 'enterprise']);
    for (const id of PLAN_IDS) expect(PLANS[id].id).toBe(id);
  });

  it('Free: 3 organizations per user, 10 projects per organization, 3-day retention at both levels', () => {
    expect(PLANS.free.organizationsPerUser).toBe(3);
    expect(DEFAULT_ORGANIZATIONS_PER_USER).toBe(3);
    expect(PLANS.free.projectsPerOrganization).toBe(10);
    expect(PLANS.free.retentionDays).toEqual({ none: 3, retain: 3 });
  });

  it('Pro keeps bodies (retain) 90 days and metadata 3; Enterprise metadata 90 days and bodies custom', () => {
    expect(PLANS.pro.retentionDays).toEqual({ none: 3, retain: 90 });
    expect(PLANS.enterprise.retentionDays).toEqual({ none: 90, retain: null });
    expect(PLANS.enterprise.priceCents).toBeNull();
  });

  it('uses an operator override of the project limit before the plan’s', () => {
    expect(projectLimit('free', null)).toBe(10);
    expect(projectLimit('free', undefined)).toBe(10);
    expect(projectLimit('free', 25)).toBe(25);
    expect(projectLimit('enterprise', null)).toBeNull();
    expect(projectLimit('enterprise', 500)).toBe(500);
  });
});
