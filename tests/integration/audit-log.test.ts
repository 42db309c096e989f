/**
 * audit.list filters against real PostgreSQL (actor, including "system"; actions; time range),
 * the target's current name on each entry, audit.actors (also people who have left), and the
 * changed-fields rule the page applies (shared/audit-actions.ts) on real entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { addMember } from '../helpers/live.js';
import { newOwner, type Owner } from '../helpers/gateway.js';
import { changedFields, describeAuditAction } from '../../shared/audit-actions.js';

let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  app = await startTestApp();
  owner = await newOwner(app, 'Olive Owner');
});
afterAll(async () => {
  await app?.close();
});

describe('audit.list filters', () => {
  it('filters by actor, action and time; names targets; lists actors', async () => {
    const { organization, defaultProject } = await owner.client.organization.create.mutate({ name: 'Audited Co' });
    const orgId = organization.id;
    const admin = await addMember(app.url, owner, orgId, 'Adele Admin', 'admin');
    const project = await admin.client.project.create.mutate({ orgId, name: 'Search' });
    await admin.client.project.update.mutate({ projectId: project.id, name: 'Search v2' });
    await owner.client.project.update.mutate({ projectId: defaultProject.id, cachingEnabled: true });
    // An entry no person made (a job, a payment webhook, the operator).
    await sql(app, `insert into audit_log (org_id, actor_id, action, target_type, target_id, before, after, created_at) values (?, null, 'billing.auto_top_up_disabled', 'organization', ?, '{"enabled":true}', '{"enabled":false}', now())`, [orgId, orgId]);

    const list = (input: Record<string, unknown> = {}) => owner.client.audit.list.query({ orgId, ...input });
    const all = await list();
    expect(all.items.map((e) => e.action)).toEqual([
      'billing.auto_top_up_disabled', 'project.updated', 'project.updated', 'project.created', 'member.added', 'invitation.accepted', 'invitation.created', 'project.created', 'organization.created',
    ]);

    const byAdmin = await list({ actorId: admin.user.id });
    expect(byAdmin.items.map((e) => e.action)).toEqual(['project.updated', 'project.created', 'member.added', 'invitation.accepted']);
    expect((await list({ actorId: 'system' })).items.map((e) => e.action)).toEqual(['billing.auto_top_up_disabled']);
    // Someone who never acted in this organization: NOT_FOUND, not an empty page that looks like no activity.
    await expect(list({ actorId: '33333333-3333-4333-8333-333333333333' })).rejects.toMatchObject({ data: { code: 'NOT_FOUND' } });
    const projects = await list({ actions: ['project.created', 'project.updated', 'project.deleted'] });
    expect(projects.items).toHaveLength(4);
    expect((await list({ actions: ['project.updated'], actorId: owner.user.id })).items.map((e) => e.target.id)).toEqual([defaultProject.id]);

    // Targets carry their current name (the renamed project reads "Search v2" on every entry).
    const renamed = projects.items.filter((e) => e.target.id === project.id);
    expect(renamed.map((e) => e.target.name)).toEqual(['Search v2', 'Search v2']);
    expect(byAdmin.items.find((e) => e.action === 'member.added')!.target.name).toBe('Adele Admin');

    // Time range: [from, to).
    await sql(app, `update audit_log set created_at = now() - interval '3 days' where org_id = ? and action = 'organization.created'`, [orgId]);
    const old = await list({ to: new Date(Date.now() - 2 * 86_400_000) });
    expect(old.items.map((e) => e.action)).toEqual(['organization.created']);
    const recent = await list({ from: new Date(Date.now() - 86_400_000) });
    expect(recent.items).toHaveLength(all.items.length - 1);

    // Paging keeps the filters.
    const first = await list({ actorId: admin.user.id, limit: 3 });
    const second = await list({ actorId: admin.user.id, limit: 3, cursor: first.nextCursor! });
    expect([...first.items, ...second.items].map((e) => e.id)).toEqual(byAdmin.items.map((e) => e.id));

    // Actors: everyone who appears, also after they left; "system" when no person acted.
    await admin.client.team.leave.mutate({ orgId });
    const actors = await owner.client.audit.actors.query({ orgId });
    expect(actors.system).toBe(true);
    expect(actors.actors.map((a) => a.name).sort()).toEqual(['Adele Admin', 'Olive Owner']);
    expect(actors.actors.find((a) => a.id === admin.user.id)!.entries).toBe(5);

    // Another organization's entries never show, whatever the filter.
    const other = await owner.client.organization.create.mutate({ name: 'Other Audited' });
    await expect(owner.client.audit.list.query({ orgId: other.organization.id, actorId: admin.user.id })).rejects.toMatchObject({ data: { code: 'NOT_FOUND' } });
  });

  it('shows only the fields an update changed, and names every entry in words', async () => {
    const { organization, defaultProject } = await owner.client.organization.create.mutate({ name: 'Changes Co' });
    const orgId = organization.id;
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: false, threshold: 10, amount: 50 });
    await owner.client.billing.updateAutoTopUp.mutate({ orgId, enabled: false, threshold: 20, amount: 50 });
    await owner.client.project.update.mutate({ projectId: defaultProject.id, name: 'Main' });
    const { items } = await owner.client.audit.list.query({ orgId });
    const [rename, second] = items;
    expect(describeAuditAction(rename!.action, rename!)).toBe('Renamed project “Default Project” to “Main”');
    // The second auto top-up change recorded the whole setting; only the threshold changed.
    expect(second!.action).toBe('billing.auto_top_up_updated');
    expect(changedFields(second!).map((f) => [f.key, f.before, f.after])).toEqual([['threshold', '10.00', '20.00']]);
    for (const e of items) expect(describeAuditAction(e.action, e)).not.toMatch(/[._]/);
  });
});
