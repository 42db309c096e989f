/**
 * Organizations, projects and the audit log: optimistic settings versions, deletion confirmed by
 * name (gone for every member), project rules, and an audit trail of membership, role, project
 * and settings changes with actor and before/after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { raiseOrganizationLimit, sql } from '../helpers/db-state.js';
import { addMember } from '../helpers/live.js';
import type { Person } from '../helpers/world.js';

let app: TestApp;
let owner: Person;
let admin: Person;
let dev: Person;

beforeAll(async () => {
  app = await startTestApp();
  [owner, admin, dev] = await Promise.all([signUp(app.url, 'Ora Owner'), signUp(app.url, 'Abe Admin'), signUp(app.url, 'Dev Developer')]);
  // More organizations than the Free plan's 3 (the operator override); the limit itself is tested in races.test.ts.
  await raiseOrganizationLimit(app, owner.user.id);
});
afterAll(async () => {
  await app?.close();
});

const codeOf = (o: Outcome) => (o.ok ? 'ok' : o.code);

async function join(orgId: string, who: Person, role: 'admin' | 'developer') {
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role });
  await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
}

describe('creating an organization', () => {
  it('makes the creator its owner, with a Default Project, billing email defaulting to theirs', async () => {
    const { organization, defaultProject } = await owner.client.organization.create.mutate({ name: '  Spaced Name  ' });
    expect(organization).toMatchObject({ name: 'Spaced Name', billingEmail: owner.email, plan: 'free', retentionLevel: 'none', credits: '0.00', myRole: 'owner', version: 1 });
    expect(defaultProject.name).toBe('Default Project');
    const projects = await sql<{ name: string; is_default: boolean }>(app, 'select name, is_default from project where org_id = ?', [organization.id]);
    expect(projects).toEqual([{ name: 'Default Project', is_default: true }]);
    const audit = await owner.client.audit.list.query({ orgId: organization.id });
    expect(audit.items.map((i) => i.action).sort()).toEqual(['organization.created', 'project.created']);
  });
});

describe('batched requests', () => {
  it('answers a batch of queries as the dashboard sends them (httpBatchLink)', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Batched' });
    const orgId = organization.id;
    const batched = browserClient(app.url, { batch: true });
    for (const [k, v] of owner.cookies) batched.cookies.set(k, v);
    // One HTTP request for all of these, as the overview page loads them.
    // The batched path ("organization.get,project.list,...") is longer than Fastify's default
    // route-parameter limit of 100 characters: the server must accept it.
    const [org, projects, members, invitations, audit, orgs, billing] = await Promise.all([
      batched.client.organization.get.query({ orgId }),
      batched.client.project.list.query({ orgId }),
      batched.client.team.members.query({ orgId }),
      batched.client.team.invitations.query({ orgId }),
      batched.client.audit.list.query({ orgId }),
      batched.client.organization.list.query(),
      batched.client.billing.overview.query({ orgId }),
    ]);
    expect(billing.credits).toBe('0.00');
    expect(org.name).toBe('Batched');
    expect(projects).toHaveLength(1);
    expect(members.map((m) => m.userId)).toEqual([owner.user.id]);
    expect(invitations).toEqual([]);
    expect(audit.items.length).toBeGreaterThan(0);
    expect(orgs.map((o) => o.id)).toContain(orgId);
  });
});

describe('organization settings', () => {
  it('refuses a stale version with CONFLICT carrying the current settings, and accepts a retry', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Versioned' });
    await join(organization.id, admin, 'admin');
    const v1 = organization.version;
    const first = await owner.client.organization.update.mutate({ orgId: organization.id, version: v1, name: 'Versioned by owner' });
    expect(first.version).toBe(v1 + 1);

    const stale = await call(app.url, 'mutation', 'organization.update', { orgId: organization.id, version: v1, billingEmail: 'finance@example.com' }, { cookie: admin.cookieHeader() });
    expect(codeOf(stale)).toBe('CONFLICT');
    expect(stale.status).toBe(409);
    const current = (stale.ok ? undefined : stale.data?.current) as { name: string; version: number; billingEmail: string } | undefined;
    expect(current).toMatchObject({ id: organization.id, name: 'Versioned by owner', version: v1 + 1, billingEmail: owner.email });
    expect(stale.ok ? '' : stale.message).toMatch(/someone else changed/);
    const [row] = await sql<{ billing_email: string; version: number }>(app, 'select billing_email, version from organization where id = ?', [organization.id]);
    expect(row).toEqual({ billing_email: owner.email, version: v1 + 1 });

    const retry = await admin.client.organization.update.mutate({ orgId: organization.id, version: current!.version, billingEmail: 'Finance@Example.com' });
    expect(retry).toMatchObject({ name: 'Versioned by owner', billingEmail: 'finance@example.com', version: v1 + 2 });

    // Saving without a change does not bump the version (nobody else gets a needless CONFLICT).
    const same = await admin.client.organization.update.mutate({ orgId: organization.id, version: v1 + 2, name: 'Versioned by owner' });
    expect(same.version).toBe(v1 + 2);
  });
});

// The last-owner rules are tested through createCaller in rules-caller.test.ts.

describe('deleting an organization', () => {
  it('requires the exact name, then removes it and everything in it for every member', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Doomed Org' });
    await join(organization.id, admin, 'admin');
    await join(organization.id, dev, 'developer');
    await owner.client.project.create.mutate({ orgId: organization.id, name: 'Doomed project' });
    await owner.client.team.invite.mutate({ orgId: organization.id, email: 'pending@example.com', role: 'developer' });

    for (const confirmName of ['doomed org', 'Doomed', 'Doomed Org!', '']) {
      const wrong = await call(app.url, 'mutation', 'organization.delete', { orgId: organization.id, confirmName }, { cookie: owner.cookieHeader() });
      expect(codeOf(wrong), confirmName).toBe('BAD_REQUEST');
      expect(wrong.ok ? '' : wrong.message).toContain('"Doomed Org"');
    }
    expect(await sql(app, 'select 1 from organization where id = ?', [organization.id])).toHaveLength(1);

    expect(await owner.client.organization.delete.mutate({ orgId: organization.id, confirmName: 'Doomed Org' })).toEqual({ ok: true, forfeitedCredits: '0.00', subscription: null });
    for (const member of [owner, admin, dev]) {
      expect((await member.client.organization.list.query()).map((o) => o.id)).not.toContain(organization.id);
      const get = await call(app.url, 'query', 'organization.get', { orgId: organization.id }, { cookie: member.cookieHeader() });
      expect(codeOf(get)).toBe('NOT_FOUND');
    }
    for (const table of ['organization', 'membership', 'project', 'invitation', 'org_event']) {
      const column = table === 'organization' ? 'id' : 'org_id';
      expect(await sql(app, `select 1 from "${table}" where ${column} = ?`, [organization.id]), table).toHaveLength(0);
    }
    // Its audit trail stays for the operator (docs/billing.md, "Deleting an organization"), ending with the deletion.
    const audit = await sql<{ action: string }>(app, 'select action from audit_log where org_id = ? order by id', [organization.id]);
    expect(audit.at(-1)?.action).toBe('organization.deleted');
    expect(await sql(app, 'select 1 from deleted_organization where id = ?', [organization.id])).toHaveLength(1);
    // The users themselves remain.
    expect(await sql(app, 'select 1 from app_user where id in (?, ?, ?)', [owner.user.id, admin.user.id, dev.user.id])).toHaveLength(3);
  });
});

describe('projects', () => {
  it('keeps at least one project, and validates settings', async () => {
    const { organization, defaultProject } = await owner.client.organization.create.mutate({ name: 'Project Rules' });
    const last = await call(app.url, 'mutation', 'project.delete', { projectId: defaultProject.id }, { cookie: owner.cookieHeader() });
    expect(codeOf(last)).toBe('PRECONDITION_FAILED');
    const bad = await call(app.url, 'mutation', 'project.update', { projectId: defaultProject.id, cacheTtlSeconds: 5 }, { cookie: owner.cookieHeader() });
    expect(codeOf(bad)).toBe('BAD_REQUEST');
    expect(bad.ok ? undefined : bad.data?.zodIssues).toEqual([{ path: ['cacheTtlSeconds'], message: expect.any(String) }]);
    const updated = await owner.client.project.update.mutate({ projectId: defaultProject.id, mode: 'credits', cachingEnabled: true, cacheTtlSeconds: 600 });
    expect(updated).toMatchObject({ mode: 'credits', cachingEnabled: true, cacheTtlSeconds: 600 });
    expect((await owner.client.project.list.query({ orgId: organization.id }))[0]).toMatchObject({ id: defaultProject.id, isDefault: true, mode: 'credits' });
  });
});

describe('the audit log', () => {
  it('records membership, role, project and settings changes with actor and before/after', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Audited' });
    const orgId = organization.id;
    await join(orgId, admin, 'developer');
    await owner.client.team.updateRole.mutate({ orgId, userId: admin.user.id, role: 'admin' });
    const project = await admin.client.project.create.mutate({ orgId, name: 'Audited project' });
    await admin.client.project.update.mutate({ projectId: project.id, name: 'Renamed project', cachingEnabled: true });
    await admin.client.project.delete.mutate({ projectId: project.id });
    await owner.client.organization.update.mutate({ orgId, version: organization.version, name: 'Audited Inc', retentionLevel: 'retain' });
    const devMember = await addMember(app.url, owner, orgId, 'Temp Dev');
    await admin.client.team.removeMember.mutate({ orgId, userId: devMember.user.id });
    await join(orgId, dev, 'developer');
    await dev.client.team.leave.mutate({ orgId });

    const { items } = await owner.client.audit.list.query({ orgId, limit: 100 });
    const find = (action: string, targetId?: string) => items.find((i) => i.action === action && (targetId === undefined || i.target.id === targetId));
    const ownerActor = { id: owner.user.id, name: 'Ora Owner', email: owner.email };
    const adminActor = { id: admin.user.id, name: 'Abe Admin', email: admin.email };

    expect(find('member.added', admin.user.id)).toMatchObject({ actor: adminActor, target: { type: 'member', id: admin.user.id }, before: null, after: { email: admin.email, role: 'developer' } });
    expect(find('member.role_changed', admin.user.id)).toMatchObject({ actor: ownerActor, before: { role: 'developer' }, after: { role: 'admin' } });
    expect(find('project.created', project.id)).toMatchObject({ actor: adminActor, before: null, after: { name: 'Audited project' } });
    expect(find('project.updated', project.id)).toMatchObject({ actor: adminActor, before: { name: 'Audited project', cachingEnabled: false }, after: { name: 'Renamed project', cachingEnabled: true } });
    expect(find('project.deleted', project.id)).toMatchObject({ actor: adminActor, before: { name: 'Renamed project' }, after: null });
    expect(find('organization.updated')).toMatchObject({ actor: ownerActor, target: { type: 'organization', id: orgId }, before: { name: 'Audited', retentionLevel: 'none' }, after: { name: 'Audited Inc', retentionLevel: 'retain' } });
    // Removing or leaving says what happened to the member's API keys (none here).
    expect(find('member.removed', devMember.user.id)).toMatchObject({ actor: adminActor, before: { email: devMember.email, role: 'developer' }, after: { apiKeysRevoked: 0, apiKeysTransferred: 0 } });
    expect(find('member.left', dev.user.id)).toMatchObject({ actor: { id: dev.user.id }, before: { email: dev.email, role: 'developer' }, after: { apiKeysRevoked: 0, apiKeysTransferred: 0 } });
    expect(find('invitation.created')).toMatchObject({ actor: ownerActor });
    // Newest first, each with a time.
    const ids = items.map((i) => BigInt(i.id));
    expect([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(ids);
    for (const i of items) expect(new Date(i.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    // A member who left can no longer read it; a developer never could.
    expect(codeOf(await call(app.url, 'query', 'audit.list', { orgId }, { cookie: dev.cookieHeader() }))).toBe('NOT_FOUND');
  });

  it('pages with a cursor, and refuses a cursor that is not an id', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Paged Audit' });
    const orgId = organization.id;
    for (let i = 0; i < 4; i++) await owner.client.project.create.mutate({ orgId, name: `Paged ${i}` });
    const all = await owner.client.audit.list.query({ orgId, limit: 100 });
    expect(all.items).toHaveLength(6); // organization.created, 5x project.created
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await owner.client.audit.list.query({ orgId, limit: 4, ...(cursor ? { cursor } : {}) });
      seen.push(...res.items.map((i) => i.id));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen).toEqual(all.items.map((i) => i.id));
    for (const bad of ['abc', '-1', '9999999999999999999', '1.5']) {
      const outcome = await call(app.url, 'query', 'audit.list', { orgId, cursor: bad }, { cookie: owner.cookieHeader() });
      expect(codeOf(outcome), bad).toBe('BAD_REQUEST');
    }
  });

  it('does not show one organization’s entries in another', async () => {
    const a = await owner.client.organization.create.mutate({ name: 'Audit A' });
    const b = await admin.client.organization.create.mutate({ name: 'Audit B' });
    await admin.client.project.create.mutate({ orgId: b.organization.id, name: 'Only in B' });
    const listA = await owner.client.audit.list.query({ orgId: a.organization.id });
    expect(listA.items.every((i) => i.action === 'organization.created' || i.target.id === a.defaultProject.id || i.target.id === a.organization.id)).toBe(true);
    expect(JSON.stringify(listA)).not.toContain('Only in B');
  });
});
