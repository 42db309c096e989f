/**
 * The roles matrix, enforced: every procedure of appRouter is enumerated; each org-scoped one is
 * called as owner, admin, developer and an outsider, and the answer must follow `can(role, permission)`
 * from shared/permissions.ts. Plus the finer rules the matrix alone does not express (owner role,
 * retention level).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { call, listProcedures, type Outcome } from '../helpers/rpc.js';
import { sql } from '../helpers/db-state.js';
import { uniqueEmail } from '../helpers/client.js';
import { ACTORS, buildWorld, ORG_FIXTURES, PERSONAL_PROCEDURES, type Actor, type World } from '../helpers/world.js';
import { can, PERMISSIONS } from '../../shared/permissions.js';

let app: TestApp;
let w: World;

beforeAll(async () => {
  app = await startTestApp();
  w = await buildWorld(app);
});
afterAll(async () => {
  await app?.close();
});

const procedures = listProcedures();
/** Input keys that name a resource (and so an organization): orgId, projectId, invitationId, apiKeyId... */
const NOT_A_RESOURCE = new Set(['lastEventId']);
const looksOrgScoped = (keys: string[]) => keys.some((k) => /Id$/.test(k) && !NOT_A_RESOURCE.has(k));

function as(actor: Actor) {
  return { cookie: w.people[actor].cookieHeader() };
}
function describeOutcome(o: Outcome) {
  return o.ok ? 'ok' : `${o.code} (${o.status}): ${o.message}`;
}

describe('the router, enumerated', () => {
  it('finds the procedures (sanity: the enumeration works)', () => {
    expect(procedures.length).toBeGreaterThan(20);
    expect(procedures.map((p) => p.path)).toContain('team.updateRole');
  });

  it('gives every org-scoped-looking procedure a permission in its meta', () => {
    const missing = procedures.filter((p) => looksOrgScoped(p.inputKeys) && !p.permission).map((p) => p.path);
    expect(missing, 'org-scoped procedures must be built with orgProcedure(permission)').toEqual([]);
  });

  it("guards each procedure with the permission API.md's roles table gives its action", () => {
    const wrong = procedures
      .filter((p) => p.permission && ORG_FIXTURES[p.path] && ORG_FIXTURES[p.path]!.permission !== p.permission)
      .map((p) => `${p.path}: ${p.permission} (expected ${ORG_FIXTURES[p.path]!.permission})`);
    expect(wrong).toEqual([]);
  });

  it('uses only permissions the shared matrix knows', () => {
    for (const p of procedures) if (p.permission) expect(Object.keys(PERMISSIONS), p.path).toContain(p.permission);
  });

  it('has a fixture for every org-scoped procedure, and lists every other one as personal/public', () => {
    const orgScoped = procedures.filter((p) => p.permission).map((p) => p.path);
    const others = procedures.filter((p) => !p.permission).map((p) => p.path);
    expect(orgScoped.filter((p) => !ORG_FIXTURES[p]), 'add a fixture in tests/helpers/world.ts').toEqual([]);
    expect(others.filter((p) => !PERSONAL_PROCEDURES[p]), 'new procedure without meta: org-scoped ones need orgProcedure(permission)').toEqual([]);
    // Stale entries would hide a procedure that lost its orgProcedure.
    expect(Object.keys(ORG_FIXTURES).filter((p) => !orgScoped.includes(p))).toEqual([]);
    expect(Object.keys(PERSONAL_PROCEDURES).filter((p) => !others.includes(p))).toEqual([]);
  });
});

describe('every org-scoped procedure against the matrix', () => {
  const orgScoped = procedures.filter((p) => p.permission && !ORG_FIXTURES[p.path]?.subscription);

  for (const proc of orgScoped) {
    it(`${proc.path} (${proc.permission})`, async () => {
      const fixture = ORG_FIXTURES[proc.path];
      expect(fixture, `fixture for ${proc.path}`).toBeDefined();
      const type = proc.type as 'query' | 'mutation';
      for (const actor of ACTORS) {
        const input = await fixture!.input(w, actor);
        const outcome = await call(app.url, type, proc.path, input, as(actor));
        expect(outcome.ok || outcome.code !== 'INTERNAL_SERVER_ERROR', `${proc.path} as ${actor}: ${describeOutcome(outcome)}`).toBe(true);
        if (actor === 'outsider') {
          // The same answer as for an organization that does not exist: nothing leaks.
          expect(describeOutcome(outcome), `${proc.path} as outsider must not reveal the organization`).toBe('NOT_FOUND (404): not found');
        } else if (!can(actor, proc.permission!)) {
          expect(outcome.ok ? 'ok' : outcome.code, `${proc.path} as ${actor}: ${describeOutcome(outcome)}`).toBe('FORBIDDEN');
          expect(outcome.status).toBe(403);
          expect(outcome.ok ? '' : outcome.message).toContain(actor);
        } else {
          // Permitted: anything but a refusal. A domain NOT_FOUND names what is missing ("payment
          // method not found"); the bare "not found" is orgProcedure refusing a non-member.
          const refused = !outcome.ok && (['FORBIDDEN', 'UNAUTHORIZED'].includes(outcome.code!) || (outcome.code === 'NOT_FOUND' && outcome.message === 'not found'));
          expect(refused, `${proc.path} as ${actor}: ${describeOutcome(outcome)}`).toBe(false);
        }
      }
      // Anonymous callers are asked to sign in, before anything else is looked at.
      const anonymous = await call(app.url, type, proc.path, await fixture!.input(w, 'outsider'), {});
      expect(anonymous.ok ? 'ok' : anonymous.code).toBe('UNAUTHORIZED');
      expect(anonymous.status).toBe(401);
    });
  }

  it('succeeds (not just "not refused") for a permitted read and a permitted write', async () => {
    const get = await call(app.url, 'query', 'organization.get', { orgId: w.orgId }, as('developer'));
    expect(get.ok && (get.data as { myRole: string }).myRole).toBe('developer');
    const created = await call(app.url, 'mutation', 'project.create', { orgId: w.orgId, name: 'By the admin' }, as('admin'));
    expect(created.ok).toBe(true);
  });
});

describe('personal and public procedures', () => {
  for (const [path, spec] of Object.entries(PERSONAL_PROCEDURES)) {
    if (spec.access !== 'authed') continue;
    it(`${path} asks anonymous callers to sign in`, async () => {
      const proc = procedures.find((p) => p.path === path)!;
      const outcome = await call(app.url, proc.type as 'query' | 'mutation', path, spec.input(w), {});
      expect(outcome.ok ? 'ok' : outcome.code).toBe('UNAUTHORIZED');
    });
  }
});

describe('finer rules', () => {
  async function roleOf(orgId: string, userId: string) {
    const [row] = await sql<{ role: string }>(app, 'select role from membership where org_id = ? and user_id = ?', [orgId, userId]);
    return row?.role ?? null;
  }

  it('admins cannot invite owners, developers cannot invite at all; owners can invite owners', async () => {
    const email = uniqueEmail('would-be-owner');
    const byAdmin = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'owner' }, as('admin'));
    expect(byAdmin.ok ? 'ok' : byAdmin.code).toBe('FORBIDDEN');
    const byDeveloper = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'developer' }, as('developer'));
    expect(byDeveloper.ok ? 'ok' : byDeveloper.code).toBe('FORBIDDEN');
    expect(await sql(app, 'select 1 from invitation where email = ?', [email])).toHaveLength(0);
    const byOwner = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'owner' }, as('owner'));
    expect(byOwner.ok).toBe(true);
  });

  it("admins cannot change an owner's role, nor make anyone an owner", async () => {
    const org = await w.freshOrg();
    const demote = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.owner.user.id, role: 'developer' }, as('admin'));
    expect(demote.ok ? 'ok' : demote.code).toBe('FORBIDDEN');
    const promote = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.developer.user.id, role: 'owner' }, as('admin'));
    expect(promote.ok ? 'ok' : promote.code).toBe('FORBIDDEN');
    const self = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.admin.user.id, role: 'owner' }, as('admin'));
    expect(self.ok ? 'ok' : self.code).toBe('FORBIDDEN');
    expect(await roleOf(org.id, w.people.owner.user.id)).toBe('owner');
    expect(await roleOf(org.id, w.people.developer.user.id)).toBe('developer');
    expect(await roleOf(org.id, w.people.admin.user.id)).toBe('admin');
    // What admins may do: move people between admin and developer.
    const fine = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.developer.user.id, role: 'admin' }, as('admin'));
    expect(fine.ok).toBe(true);
    expect(await roleOf(org.id, w.people.developer.user.id)).toBe('admin');
    // And owners grant the owner role.
    const byOwner = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.admin.user.id, role: 'owner' }, as('owner'));
    expect(byOwner.ok).toBe(true);
    expect(await roleOf(org.id, w.people.admin.user.id)).toBe('owner');
  });

  it('admins cannot remove an owner', async () => {
    const org = await w.freshOrg();
    const outcome = await call(app.url, 'mutation', 'team.removeMember', { orgId: org.id, userId: w.people.owner.user.id }, as('admin'));
    expect(outcome.ok ? 'ok' : outcome.code).toBe('FORBIDDEN');
    expect(await roleOf(org.id, w.people.owner.user.id)).toBe('owner');
  });

  it('only owners change the retention level; admins may still rename', async () => {
    const org = await w.freshOrg();
    for (const actor of ['admin', 'developer'] as const) {
      const outcome = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain' }, as(actor));
      expect(outcome.ok ? 'ok' : outcome.code, actor).toBe('FORBIDDEN');
    }
    const [unchanged] = await sql<{ retention_level: string }>(app, 'select retention_level from organization where id = ?', [org.id]);
    expect(unchanged!.retention_level).toBe('none');
    const admin = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain', name: 'Sneaky' }, as('admin'));
    expect(admin.ok ? 'ok' : admin.code).toBe('FORBIDDEN');
    expect(admin.ok ? '' : admin.message).toMatch(/owner/i);
    const [stillNamed] = await sql<{ name: string }>(app, 'select name from organization where id = ?', [org.id]);
    expect(stillNamed!.name).toBe(org.name);

    const rename = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), name: 'Renamed by admin' }, as('admin'));
    expect(rename.ok).toBe(true);
    const owner = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain' }, as('owner'));
    expect(owner.ok).toBe(true);
    const [changed] = await sql<{ retention_level: string; name: string }>(app, 'select retention_level, name from organization where id = ?', [org.id]);
    expect(changed).toEqual({ retention_level: 'retain', name: 'Renamed by admin' });
  });

  it('everyone revokes their own API keys; only owners and admins revoke other people’s', async () => {
    const ownersKey = await w.freshApiKey('owner');
    const byDeveloper = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: ownersKey }, as('developer'));
    expect(byDeveloper.ok ? 'ok' : byDeveloper.code).toBe('FORBIDDEN');
    const [still] = await sql<{ revoked_at: Date | null }>(app, 'select revoked_at from api_key where id = ?', [ownersKey]);
    expect(still!.revoked_at).toBeNull();
    const developersKey = await w.freshApiKey('developer');
    const own = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: developersKey }, as('developer'));
    expect(own.ok).toBe(true);
    const byAdmin = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: ownersKey }, as('admin'));
    expect(byAdmin.ok).toBe(true);
    const revoked = await sql<{ id: string }>(app, 'select id from api_key where id in (?, ?) and revoked_at is not null', [ownersKey, developersKey]);
    expect(revoked).toHaveLength(2);
  });

  it('refuses an input naming resources of two organizations, even to a member of both', async () => {
    const other = await w.freshOrg();
    const foreignProject = await w.freshProject(other.id);
    const range = { from: new Date(Date.now() - 3_600_000), to: new Date() };
    for (const actor of ['owner', 'developer', 'outsider'] as const) {
      const mixed = await call(app.url, 'query', 'analytics.summary', { orgId: w.orgId, projectId: foreignProject, ...range }, as(actor));
      expect(describeOutcome(mixed), actor).toBe('NOT_FOUND (404): not found');
    }
    const outsiderOrg = (await w.people.outsider.client.organization.list.query())[0]!.id;
    const viaOwnOrg = await call(app.url, 'query', 'logs.list', { orgId: outsiderOrg, projectId: w.projectId }, as('outsider'));
    expect(describeOutcome(viaOwnOrg)).toBe('NOT_FOUND (404): not found');
    const sameOrg = await call(app.url, 'query', 'analytics.summary', { orgId: other.id, projectId: foreignProject, ...range }, as('developer'));
    expect(sameOrg.ok).toBe(true);
  });

  it('treats an optional id sent as undefined (the typed client keeps the key) as left out', async () => {
    const summary = await w.people.developer.client.analytics.summary.query({ orgId: w.orgId, projectId: undefined, from: new Date(Date.now() - 3_600_000), to: new Date() });
    expect(summary.requests).toBe(0);
  });

  it('a resource id from another organization is NOT_FOUND for a non-member, whatever their role elsewhere', async () => {
    // The outsider owns their own organization; owning something must not open ours.
    const outsiderOrgs = await w.people.outsider.client.organization.list.query();
    expect(outsiderOrgs.map((o) => o.role)).toEqual(['owner']);
    const update = await call(app.url, 'mutation', 'project.update', { projectId: w.projectId, name: 'Hijacked' }, as('outsider'));
    expect(update.ok ? 'ok' : update.code).toBe('NOT_FOUND');
    const [project] = await sql<{ name: string }>(app, 'select name from project where id = ?', [w.projectId]);
    expect(project!.name).not.toBe('Hijacked');
  });
});
