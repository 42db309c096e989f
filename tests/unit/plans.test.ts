/** The plans table in shared/plans.ts against DESIGN.md "Plans and limits". */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ORGANIZATIONS_PER_USER, organizationLimitFor, organizationLimitReason, PLAN_IDS, PLANS, projectLimit, projectLimitReason } from '../../shared/plans.js';

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

  it('Pro lifts the organization and project limits (10 and 100); Enterprise has no fixed number', () => {
    expect(PLANS.pro.organizationsPerUser).toBe(10);
    expect(PLANS.pro.projectsPerOrganization).toBe(100);
    expect(projectLimit('pro', null)).toBe(100);
    expect(organizationLimitFor([], null)).toEqual({ limit: 3, plan: 'free' });
    expect(organizationLimitFor(['free', 'pro', 'free'], null)).toEqual({ limit: 10, plan: 'pro' });
    expect(organizationLimitFor(['enterprise'], null)).toEqual({ limit: null, plan: 'enterprise' });
    expect(organizationLimitFor(['pro'], 2)).toEqual({ limit: 2, plan: 'pro' });
  });

  it('refusals name the plan that lifts the limit, and only one that does', () => {
    expect(projectLimitReason('free', null, 9)).toBeNull();
    expect(projectLimitReason('free', null, 10)).toMatch(/^the Free plan allows 10 projects per organization; .*upgrade to Pro for up to 100 projects$/);
    expect(projectLimitReason('pro', null, 100)).toMatch(/^the Pro plan allows 100 projects per organization; .*contact us about Enterprise/);
    expect(projectLimitReason('pro', null, 100)).not.toMatch(/upgrade/);
    expect(projectLimitReason('enterprise', null, 10_000)).toBeNull();
    expect(projectLimitReason('free', 1, 1)).toMatch(/allows 1 project \(a limit set for it by support\).*contact us/);
    expect(projectLimitReason('free', 1, 1)).not.toMatch(/upgrade/);
    expect(organizationLimitReason(['free', 'free', 'free'], null)).toMatch(/^the Free plan allows 3 organizations per user; .*upgrade one of your organizations to Pro to own up to 10$/);
    expect(organizationLimitReason(Array(10).fill('pro'), null)).toMatch(/^the Pro plan allows 10 organizations per user; .*contact us about Enterprise/);
    expect(organizationLimitReason(['free'], 1)).toMatch(/your account allows 1 organization \(.*contact us/);
  });
});
