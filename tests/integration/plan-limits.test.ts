/**
 * Plan limits that an upgrade lifts (shared/plans.ts): projects per organization (Free 10, Pro 100,
 * Enterprise none) and organizations per user (3 while all they own is Free, 10 once one is Pro).
 * Each refusal is FORBIDDEN, says which limit, and names the plan that lifts it, or "contact us"
 * where no plan does (Pro's limit, an operator's override). `organization.limits` and
 * `organization.creationLimit` give the same words before the form is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { PLANS } from '../../shared/plans.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: { data?: { code?: string }; message: string }) => e,
  );
}

/** Adds projects straight in the database up to `total` (the count is what the limit checks). */
async function fillProjects(orgId: string, total: number) {
  await sql(
    app,
    `insert into project (id, org_id, name, is_default, mode, caching_enabled, cache_ttl_seconds, allowed_origins, created_at)
     select gen_random_uuid(), ?, 'Filler ' || g, false, 'hybrid', false, 300, '{}', now()
       from generate_series(1, ? - (select count(*)::int from project where org_id = ?)) g`,
    [orgId, total, orgId],
  );
}
const setPlan = (orgId: string, plan: string) => sql(app, 'update organization set plan = ? where id = ?', [plan, orgId]);

describe('the plans table', () => {
  it('gives Pro higher organization and project limits than Free', () => {
    expect(PLANS.free).toMatchObject({ organizationsPerUser: 3, projectsPerOrganization: 10 });
    expect(PLANS.pro).toMatchObject({ organizationsPerUser: 10, projectsPerOrganization: 100 });
    expect(PLANS.enterprise).toMatchObject({ organizationsPerUser: null, projectsPerOrganization: null });
  });
});

describe('projects per organization', () => {
  it('Free stops at 10 and names Pro; Pro lifts it to 100 and then says contact us; Enterprise has none', async () => {
    const owner = await signUp(app.url, 'Project Limits');
    const orgId = (await owner.client.organization.create.mutate({ name: 'Projects' })).organization.id;
    expect(await owner.client.organization.limits.query({ orgId })).toEqual({ plan: 'free', projects: { used: 1, limit: 10, reason: null } });

    await fillProjects(orgId, 10);
    const free = await failure(owner.client.project.create.mutate({ orgId, name: 'Eleventh' }));
    expect(free.data?.code).toBe('FORBIDDEN');
    expect(free.message).toBe('the Free plan allows 10 projects per organization; delete a project, or upgrade to Pro for up to 100 projects');
    expect(await owner.client.organization.limits.query({ orgId })).toEqual({ plan: 'free', projects: { used: 10, limit: 10, reason: free.message } });

    // Pro (an upgrade) lifts it.
    await setPlan(orgId, 'pro');
    expect((await owner.client.organization.limits.query({ orgId })).projects).toEqual({ used: 10, limit: 100, reason: null });
    await owner.client.project.create.mutate({ orgId, name: 'Eleventh' });
    await fillProjects(orgId, 100);
    const pro = await failure(owner.client.project.create.mutate({ orgId, name: 'Hundred and first' }));
    expect(pro.data?.code).toBe('FORBIDDEN');
    expect(pro.message).toBe('the Pro plan allows 100 projects per organization; delete a project, or contact us about Enterprise for more');
    expect(pro.message).not.toMatch(/upgrade/);
    expect((await owner.client.organization.limits.query({ orgId })).projects.reason).toBe(pro.message);

    await setPlan(orgId, 'enterprise');
    expect((await owner.client.organization.limits.query({ orgId })).projects).toEqual({ used: 100, limit: null, reason: null });
    await owner.client.project.create.mutate({ orgId, name: 'Enterprise has no fixed limit' });
  });

  it('a limit set for the organization by support says so and promises no upgrade', async () => {
    const owner = await signUp(app.url, 'Project Override');
    const orgId = (await owner.client.organization.create.mutate({ name: 'Override' })).organization.id;
    await sql(app, 'update organization set project_limit = 2 where id = ?', [orgId]);
    await owner.client.project.create.mutate({ orgId, name: 'Second' });
    const refused = await failure(owner.client.project.create.mutate({ orgId, name: 'Third' }));
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(refused.message).toBe('this organization allows 2 projects (a limit set for it by support); delete a project, or contact us to raise the limit');
    expect((await owner.client.organization.limits.query({ orgId })).projects).toEqual({ used: 2, limit: 2, reason: refused.message });
  });
});

describe('organizations per user', () => {
  it('3 while all are Free (naming Pro); 10 once one they own is Pro; then contact us', async () => {
    const owner = await signUp(app.url, 'Org Limits');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await owner.client.organization.create.mutate({ name: `Org ${i}` })).organization.id);
    const free = await failure(owner.client.organization.create.mutate({ name: 'Fourth' }));
    expect(free.data?.code).toBe('FORBIDDEN');
    expect(free.message).toBe('the Free plan allows 3 organizations per user; delete one you own, or upgrade one of your organizations to Pro to own up to 10');
    expect(await owner.client.organization.creationLimit.query()).toEqual({ owned: 3, limit: 3, plan: 'free', reason: free.message });

    // Organizations the user is only a member of do not count, and do not raise it.
    const other = await signUp(app.url, 'Other Owner');
    const theirs = (await other.client.organization.create.mutate({ name: 'Theirs' })).organization.id;
    await setPlan(theirs, 'pro');
    const { inviteUrl } = await other.client.team.invite.mutate({ orgId: theirs, email: owner.email, role: 'admin' });
    await owner.client.team.acceptInvitation.mutate({ token: inviteUrl.split('/invite/')[1]! });
    expect((await owner.client.organization.creationLimit.query()).reason).toBe(free.message);

    await setPlan(ids[0]!, 'pro');
    expect(await owner.client.organization.creationLimit.query()).toEqual({ owned: 3, limit: 10, plan: 'pro', reason: null });
    for (let i = 3; i < 10; i++) await owner.client.organization.create.mutate({ name: `Org ${i}` });
    const pro = await failure(owner.client.organization.create.mutate({ name: 'Eleventh' }));
    expect(pro.data?.code).toBe('FORBIDDEN');
    expect(pro.message).toBe('the Pro plan allows 10 organizations per user; delete one you own, or contact us about Enterprise for more');
    expect((await owner.client.organization.creationLimit.query()).reason).toBe(pro.message);

    // Back on Free (the subscription ended): existing organizations stay, creating is refused with Free's words.
    await setPlan(ids[0]!, 'free');
    expect((await failure(owner.client.organization.create.mutate({ name: 'Eleventh' }))).message).toBe(free.message);
    expect((await owner.client.organization.creationLimit.query()).owned).toBe(10);
  });

  it('a limit set for the user by support replaces the plans and says so', async () => {
    const owner = await signUp(app.url, 'Org Override');
    await sql(app, 'update app_user set organization_limit = 1 where id = ?', [owner.user.id]);
    expect(await owner.client.organization.creationLimit.query()).toEqual({ owned: 0, limit: 1, plan: 'free', reason: null });
    await owner.client.organization.create.mutate({ name: 'Only' });
    const refused = await failure(owner.client.organization.create.mutate({ name: 'Second' }));
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(refused.message).toBe('your account allows 1 organization (a limit set for it by support); delete one you own, or contact us to raise the limit');
  });
});
