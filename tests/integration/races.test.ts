/**
 * Invariants under real concurrency: parallel HTTP requests (Promise.all) against the real server
 * and PostgreSQL. The last owner survives every mix of demote/remove/leave; plan limits hold when
 * creations race; an invitation accepted twice at once makes one membership.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, uniqueEmail } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { raiseOrganizationLimit, sql } from '../helpers/db-state.js';
import type { Person } from '../helpers/world.js';

let app: TestApp;
let ann: Person;
let ben: Person;

beforeAll(async () => {
  app = await startTestApp();
  [ann, ben] = await Promise.all([signUp(app.url, 'Ann Owner'), signUp(app.url, 'Ben Owner')]);
  await raiseOrganizationLimit(app, ann.user.id);
});
afterAll(async () => {
  await app?.close();
});

const codeOf = (o: Outcome) => (o.ok ? 'ok' : o.code);

function tokenOf(inviteUrl: string) {
  return inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1);
}

async function orgWithTwoOwners(name: string) {
  const { organization } = await ann.client.organization.create.mutate({ name });
  const { inviteUrl } = await ann.client.team.invite.mutate({ orgId: organization.id, email: ben.email, role: 'owner' });
  await ben.client.team.acceptInvitation.mutate({ token: tokenOf(inviteUrl) });
  return organization.id;
}

describe('the last owner', () => {
  // Three rounds with different mixes: the interleavings differ from run to run.
  for (const round of [0, 1, 2]) {
    it(`survives 20 parallel demote/remove/leave requests aimed at both owners (round ${round})`, async () => {
      const orgId = await orgWithTwoOwners(`Two Owners ${round}`);
      const owners = [ann, ben];
      const requests: Promise<Outcome>[] = [];
      for (let i = 0; i < 20; i++) {
        const actor = owners[(i + round) % 2]!;
        const target = owners[(i * 7 + round) % 3 === 0 ? 0 : 1]!;
        const as = { cookie: actor.cookieHeader() };
        const kind = (i + round * 5) % 4;
        if (kind === 0) requests.push(call(app.url, 'mutation', 'team.updateRole', { orgId, userId: target.user.id, role: 'admin' }, as));
        else if (kind === 1) requests.push(call(app.url, 'mutation', 'team.updateRole', { orgId, userId: target.user.id, role: 'developer' }, as));
        else if (kind === 2) requests.push(call(app.url, 'mutation', 'team.removeMember', { orgId, userId: target.user.id }, as));
        else requests.push(call(app.url, 'mutation', 'team.leave', { orgId }, as));
      }
      const outcomes = await Promise.all(requests);

      const codes = outcomes.map(codeOf);
      expect(codes, 'never a 500').not.toContain('INTERNAL_SERVER_ERROR');
      for (const o of outcomes) expect(o.status).toBeLessThan(500);
      // Losers are told why: the last-owner rule, or the member is gone, or (after being demoted) no longer allowed.
      for (const o of outcomes) if (!o.ok) expect(['PRECONDITION_FAILED', 'NOT_FOUND', 'FORBIDDEN']).toContain(o.code);
      const refusedForLastOwner = outcomes.filter((o) => !o.ok && o.code === 'PRECONDITION_FAILED');
      expect(refusedForLastOwner.length).toBeGreaterThan(0);
      for (const o of refusedForLastOwner) expect(o.ok ? '' : o.message).toMatch(/at least one owner/);

      const owned = await sql<{ user_id: string }>(app, `select user_id from membership where org_id = ? and role = 'owner'`, [orgId]);
      expect(owned).toHaveLength(1);
      // Exactly one request took an owner away, and the audit log agrees with the table.
      const ownerLosses = await sql<{ n: number }>(
        app,
        `select count(*)::int as n from audit_log
          where org_id = ? and action in ('member.role_changed', 'member.removed', 'member.left') and before->>'role' = 'owner'`,
        [orgId],
      );
      expect(ownerLosses[0]!.n).toBe(1);
      // The survivor still runs the organization.
      const survivor = owned[0]!.user_id === ann.user.id ? ann : ben;
      const get = await call(app.url, 'query', 'organization.get', { orgId }, { cookie: survivor.cookieHeader() });
      expect(get.ok && (get.data as { myRole: string }).myRole).toBe('owner');
    });
  }
});

describe('plan limits under parallel creation', () => {
  it('lets a user create exactly 3 organizations when 10 requests race (Free plan)', async () => {
    const carl = await signUp(app.url, 'Carl Creator');
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) => call(app.url, 'mutation', 'organization.create', { name: `Race Org ${i}` }, { cookie: carl.cookieHeader() })),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    const refused = outcomes.filter((o) => !o.ok);
    expect(refused).toHaveLength(7);
    for (const o of refused) {
      expect(o.ok ? 'ok' : o.code).toBe('FORBIDDEN');
      expect(o.status).toBe(403);
      // Names the limit and how to lift it.
      expect(o.ok ? '' : o.message).toMatch(/Free plan allows 3 organizations/);
      expect(o.ok ? '' : o.message).toMatch(/delete one you own|contact support|upgrade/);
    }
    const rows = await sql<{ n: number }>(app, `select count(*)::int as n from membership where user_id = ? and role = 'owner'`, [carl.user.id]);
    expect(rows[0]!.n).toBe(3);
    // No half-made organizations: each has its Default Project, and nothing else exists for the refused ones.
    const orgs = await sql<{ id: string; projects: number }>(
      app,
      `select o.id, (select count(*)::int from project p where p.org_id = o.id) as projects from organization o where o.created_by = ?`,
      [carl.user.id],
    );
    expect(orgs.map((o) => o.projects)).toEqual([1, 1, 1]);
    expect((await carl.client.organization.list.query()).map((o) => o.role)).toEqual(['owner', 'owner', 'owner']);
  });

  it('keeps an organization at 10 projects when 15 creations race', async () => {
    const { organization } = await ann.client.organization.create.mutate({ name: 'Project Race' });
    const outcomes = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        call(app.url, 'mutation', 'project.create', { orgId: organization.id, name: `P${i}` }, { cookie: ann.cookieHeader() }),
      ),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(9); // plus the Default Project = 10
    for (const o of outcomes.filter((x) => !x.ok)) {
      expect(o.ok ? 'ok' : o.code).toBe('FORBIDDEN');
      expect(o.ok ? '' : o.message).toMatch(/Free plan allows 10 projects per organization/);
      expect(o.ok ? '' : o.message).toMatch(/delete a project|upgrade|contact support/);
    }
    const rows = await sql<{ n: number }>(app, 'select count(*)::int as n from project where org_id = ?', [organization.id]);
    expect(rows[0]!.n).toBe(10);
    const audits = await sql<{ n: number }>(app, `select count(*)::int as n from audit_log where org_id = ? and action = 'project.created'`, [organization.id]);
    expect(audits[0]!.n).toBe(10);
  });
});

describe('an invitation accepted twice at once', () => {
  it('makes exactly one membership; the other request gets CONFLICT', async () => {
    const dana = await signUp(app.url, 'Dana Twice');
    for (let round = 0; round < 3; round++) {
      const { organization } = await ann.client.organization.create.mutate({ name: `Invite Race ${round}` });
      const { inviteUrl } = await ann.client.team.invite.mutate({ orgId: organization.id, email: dana.email, role: 'developer' });
      const token = tokenOf(inviteUrl);
      const outcomes = await Promise.all([
        call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: dana.cookieHeader() }),
        call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: dana.cookieHeader() }),
      ]);
      expect(outcomes.map(codeOf).sort()).toEqual(['CONFLICT', 'ok']);
      const members = await sql(app, 'select 1 from membership where org_id = ? and user_id = ?', [organization.id, dana.user.id]);
      expect(members).toHaveLength(1);
      const added = await sql(app, `select 1 from audit_log where org_id = ? and action = 'member.added'`, [organization.id]);
      expect(added).toHaveLength(1);
    }
  });

  it('lets two different accounts race for one invitation: only the invited one gets in', async () => {
    const erin = await signUp(app.url, 'Erin Invited');
    const { organization } = await ann.client.organization.create.mutate({ name: 'Invite Race Pair' });
    const { inviteUrl } = await ann.client.team.invite.mutate({ orgId: organization.id, email: erin.email, role: 'admin' });
    const token = tokenOf(inviteUrl);
    const [own, other] = await Promise.all([
      call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: erin.cookieHeader() }),
      call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: ben.cookieHeader() }),
    ]);
    expect(codeOf(own)).toBe('ok');
    expect(['FORBIDDEN', 'CONFLICT']).toContain(codeOf(other));
    const members = await sql<{ user_id: string; role: string }>(app, 'select user_id, role from membership where org_id = ? order by role', [organization.id]);
    expect(members).toEqual([
      { user_id: erin.user.id, role: 'admin' },
      { user_id: ann.user.id, role: 'owner' },
    ]);
  });
});

describe('settings edited at once', () => {
  it('applies exactly one of 8 parallel updates from the same version; the rest get CONFLICT with the current state', async () => {
    const { organization } = await ann.client.organization.create.mutate({ name: 'Settings Race' });
    const version = organization.version;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call(app.url, 'mutation', 'organization.update', { orgId: organization.id, version, name: `Name ${i}` }, { cookie: ann.cookieHeader() }),
      ),
    );
    const winners = outcomes.filter((o) => o.ok);
    expect(winners).toHaveLength(1);
    const winnerName = (winners[0]!.ok && (winners[0]!.data as { name: string }).name) as string;
    for (const o of outcomes.filter((x) => !x.ok)) {
      expect(o.ok ? 'ok' : o.code).toBe('CONFLICT');
      expect((o.ok ? undefined : (o.data?.current as { name: string; version: number }))?.name).toBe(winnerName);
    }
    const [row] = await sql<{ name: string; version: number }>(app, 'select name, version from organization where id = ?', [organization.id]);
    expect(row).toEqual({ name: winnerName, version: version + 1 });
  });
});

describe('sign-up with one email at once', () => {
  // Sign-up never reveals whether an email has an account (docs/decisions.md, "Limits"): the losing
  // request of the race answers as a new sign-up would, and creates nothing.
  it('creates one account; the other request answers like a new sign-up, not a 500', async () => {
    const email = uniqueEmail('twin');
    const outcomes = await Promise.all([
      call(app.url, 'mutation', 'auth.signUp', { email, password: 'correct horse battery', name: 'Twin A' }, {}),
      call(app.url, 'mutation', 'auth.signUp', { email: email.toUpperCase(), password: 'correct horse battery', name: 'Twin B' }, {}),
    ]);
    expect(outcomes.map(codeOf)).toEqual(['ok', 'ok']);
    const users = await sql(app, 'select 1 from app_user where email = ?', [email]);
    expect(users).toHaveLength(1);
  });
});
