/**
 * Domain rules, called in-process through createCaller (tests/helpers/caller.ts): the last owner,
 * plan limits, settings versions, role changes and removals, invitation rules. HTTP adds nothing to
 * these; the HTTP edge (status codes, error shapes, cookies, origins) is tested in the other files.
 * Each rule is checked by its effect on the state as well as by its answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, outcome, startCallerApp, type CallerApp, type CallerUser } from '../helpers/caller.js';
import { uniqueEmail } from '../helpers/client.js';

let t: CallerApp;
let owner: CallerUser;
let admin: CallerUser;
let dev: CallerUser;

beforeAll(async () => {
  t = await startCallerApp();
  owner = await t.signUp('Ona Owner');
  admin = await t.signUp('Ari Admin');
  dev = await t.signUp('Dee Developer');
  await t.raiseOrganizationLimit(owner);
});
afterAll(async () => {
  await t?.close();
});

const tokenOf = (inviteUrl: string) => inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1);

async function roleOf(orgId: string, who: CallerUser): Promise<string | null> {
  const [row] = await t.sql<{ role: string }>('select role from membership where org_id = ? and user_id = ?', [orgId, who.user.id]);
  return row?.role ?? null;
}
async function rolesIn(orgId: string): Promise<Record<string, string>> {
  const rows = await t.sql<{ user_id: string; role: string }>('select user_id, role from membership where org_id = ?', [orgId]);
  return Object.fromEntries(rows.map((r) => [r.user_id, r.role]));
}

describe('the last owner', () => {
  it('cannot leave, be demoted or be removed; with a second owner they can', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    const attempts: (() => Promise<unknown>)[] = [
      () => owner.call.team.leave({ orgId: org.id }),
      () => owner.call.team.updateRole({ orgId: org.id, userId: owner.user.id, role: 'admin' }),
      () => owner.call.team.removeMember({ orgId: org.id, userId: owner.user.id }),
    ];
    for (const attempt of attempts) {
      const o = await outcome(attempt());
      expect(o.ok ? 'ok' : o.code).toBe('PRECONDITION_FAILED');
      expect(o.ok ? '' : o.message).toMatch(/at least one owner/);
    }
    expect(await rolesIn(org.id)).toEqual({ [owner.user.id]: 'owner', [admin.user.id]: 'admin' });

    await owner.call.team.updateRole({ orgId: org.id, userId: admin.user.id, role: 'owner' });
    await owner.call.team.leave({ orgId: org.id });
    expect((await owner.call.organization.list()).map((o) => o.id)).not.toContain(org.id);
    expect(await rolesIn(org.id)).toEqual({ [admin.user.id]: 'owner' });
    // The one left is the last owner now.
    expect(await codeOf(admin.call.team.leave({ orgId: org.id }))).toBe('PRECONDITION_FAILED');
  });

  it('lets one of two owners demote the other, but not the last one left', async () => {
    const org = await t.orgWith(owner, [[admin, 'owner']]);
    await admin.call.team.updateRole({ orgId: org.id, userId: owner.user.id, role: 'developer' });
    expect(await roleOf(org.id, owner)).toBe('developer');
    expect(await codeOf(admin.call.team.updateRole({ orgId: org.id, userId: admin.user.id, role: 'admin' }))).toBe('PRECONDITION_FAILED');
    expect(await roleOf(org.id, admin)).toBe('owner');
  });
});

describe('plan limits', () => {
  it('lets a user own 3 organizations on the Free plan; memberships elsewhere do not count, a promotion to owner does', async () => {
    const founder = await t.signUp('Fay Founder');
    // Admin somewhere else first: not owned, not counted.
    const elsewhere = await t.orgWith(owner, [[founder, 'admin']]);
    for (let i = 1; i <= 3; i++) expect(await codeOf(founder.call.organization.create({ name: `Founder ${i}` }))).toBe('ok');
    const fourth = await outcome(founder.call.organization.create({ name: 'Founder 4' }));
    expect(fourth.ok ? 'ok' : fourth.code).toBe('FORBIDDEN');
    expect(fourth.ok ? '' : fourth.message).toMatch(/allows 3 organizations per user/);
    const owned = async () => (await founder.call.organization.list()).filter((o) => o.role === 'owner').map((o) => o.name).sort();
    expect(await owned()).toEqual(['Founder 1', 'Founder 2', 'Founder 3']);

    // Deleting one frees the slot.
    const deleteOwn = async (name: string) => {
      const org = (await founder.call.organization.list()).find((o) => o.name === name)!;
      await founder.call.organization.delete({ orgId: org.id, confirmName: name });
    };
    await deleteOwn('Founder 1');
    expect(await codeOf(founder.call.organization.create({ name: 'Founder 5' }))).toBe('ok');
    expect(await codeOf(founder.call.organization.create({ name: 'Founder 6' }))).toBe('FORBIDDEN');

    // Becoming an owner of someone else's organization takes a slot too.
    await deleteOwn('Founder 2');
    await owner.call.team.updateRole({ orgId: elsewhere.id, userId: founder.user.id, role: 'owner' });
    expect(await codeOf(founder.call.organization.create({ name: 'Founder 6' }))).toBe('FORBIDDEN');

    // The operator's override raises the limit.
    await t.raiseOrganizationLimit(founder, 4);
    expect(await codeOf(founder.call.organization.create({ name: 'Founder 6' }))).toBe('ok');
    expect(await codeOf(founder.call.organization.create({ name: 'Founder 7' }))).toBe('FORBIDDEN');
    expect(await owned()).toEqual([elsewhere.name, 'Founder 3', 'Founder 5', 'Founder 6'].sort());
  });

  it('keeps an organization at 10 projects (the Default Project included), unless the operator raises it', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    for (let i = 2; i <= 10; i++) await admin.call.project.create({ orgId: org.id, name: `P${i}` });
    const eleventh = await outcome(admin.call.project.create({ orgId: org.id, name: 'P11' }));
    expect(eleventh.ok ? 'ok' : eleventh.code).toBe('FORBIDDEN');
    expect(eleventh.ok ? '' : eleventh.message).toMatch(/Free plan allows 10 projects/);
    expect(await owner.call.project.list({ orgId: org.id })).toHaveLength(10);

    // Deleting one frees a slot.
    const p10 = (await owner.call.project.list({ orgId: org.id })).find((p) => p.name === 'P10')!;
    await admin.call.project.delete({ projectId: p10.id });
    expect(await codeOf(admin.call.project.create({ orgId: org.id, name: 'P10 again' }))).toBe('ok');
    expect(await codeOf(admin.call.project.create({ orgId: org.id, name: 'P11' }))).toBe('FORBIDDEN');

    await t.sql('update organization set project_limit = 11 where id = ?', [org.id]);
    expect(await codeOf(admin.call.project.create({ orgId: org.id, name: 'P11' }))).toBe('ok');
    expect(await codeOf(admin.call.project.create({ orgId: org.id, name: 'P12' }))).toBe('FORBIDDEN');
    expect(await owner.call.project.list({ orgId: org.id })).toHaveLength(11);
  });

  it('has no project limit on Enterprise', async () => {
    const org = await t.orgWith(owner);
    await t.sql(`update organization set plan = 'enterprise' where id = ?`, [org.id]);
    for (let i = 2; i <= 11; i++) await owner.call.project.create({ orgId: org.id, name: `E${i}` });
    expect(await owner.call.project.list({ orgId: org.id })).toHaveLength(11);
  });

  it('never leaves an organization without a project', async () => {
    const org = await t.orgWith(owner);
    const o = await outcome(owner.call.project.delete({ projectId: org.defaultProjectId }));
    expect(o.ok ? 'ok' : o.code).toBe('PRECONDITION_FAILED');
    expect((await owner.call.project.list({ orgId: org.id })).map((p) => p.id)).toEqual([org.defaultProjectId]);
    // With a second project, the default one can go.
    const other = await owner.call.project.create({ orgId: org.id, name: 'Second' });
    await owner.call.project.delete({ projectId: org.defaultProjectId });
    expect((await owner.call.project.list({ orgId: org.id })).map((p) => p.id)).toEqual([other.id]);
    expect(await codeOf(owner.call.project.delete({ projectId: other.id }))).toBe('PRECONDITION_FAILED');
  });
});

describe('organization settings versions', () => {
  it('applies an update made from the current version and bumps it by one', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    const updated = await admin.call.organization.update({ orgId: org.id, version: org.version, name: 'Renamed', billingEmail: 'Billing@Example.com' });
    expect(updated).toMatchObject({ name: 'Renamed', billingEmail: 'billing@example.com', version: org.version + 1, myRole: 'admin' });
    expect(await owner.call.organization.get({ orgId: org.id })).toMatchObject({ name: 'Renamed', billingEmail: 'billing@example.com', version: org.version + 1, myRole: 'owner' });
  });

  it('refuses an update from a stale version with CONFLICT and changes nothing', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    await owner.call.organization.update({ orgId: org.id, version: org.version, name: 'First' });
    const stale = await outcome(admin.call.organization.update({ orgId: org.id, version: org.version, name: 'Second', billingEmail: null }));
    expect(stale.ok ? 'ok' : stale.code).toBe('CONFLICT');
    expect(stale.ok ? '' : stale.message).toMatch(/someone else changed/);
    const [row] = await t.sql<{ name: string; billing_email: string | null; version: number }>('select name, billing_email, version from organization where id = ?', [org.id]);
    expect(row).toEqual({ name: 'First', billing_email: owner.email, version: org.version + 1 });
    // A version from the future is just as stale.
    expect(await codeOf(admin.call.organization.update({ orgId: org.id, version: org.version + 5, name: 'Second' }))).toBe('CONFLICT');
  });

  it('does not bump the version for a save that changes nothing (nobody else gets a needless CONFLICT)', async () => {
    const org = await t.orgWith(owner);
    const same = await owner.call.organization.update({ orgId: org.id, version: org.version, name: org.name, retentionLevel: 'none' });
    expect(same.version).toBe(org.version);
    const audit = await owner.call.audit.list({ orgId: org.id });
    expect(audit.items.map((i) => i.action)).not.toContain('organization.updated');
  });
});

describe('role changes and removals', () => {
  it('lets admins move people between admin and developer, and nothing more', async () => {
    const other = await t.signUp('Oli Other');
    const org = await t.orgWith(owner, [[admin, 'admin'], [dev, 'developer'], [other, 'admin']]);
    await admin.call.team.updateRole({ orgId: org.id, userId: dev.user.id, role: 'admin' });
    await admin.call.team.updateRole({ orgId: org.id, userId: other.user.id, role: 'developer' });
    expect(await rolesIn(org.id)).toEqual({ [owner.user.id]: 'owner', [admin.user.id]: 'admin', [dev.user.id]: 'admin', [other.user.id]: 'developer' });

    for (const [userId, role] of [
      [other.user.id, 'owner'],
      [admin.user.id, 'owner'],
      [owner.user.id, 'admin'],
      [owner.user.id, 'developer'],
    ] as const) {
      const o = await outcome(admin.call.team.updateRole({ orgId: org.id, userId, role }));
      expect(o.ok ? 'ok' : o.code, `${userId} → ${role}`).toBe('FORBIDDEN');
      expect(o.ok ? '' : o.message).toMatch(/only owners grant or take the owner role/);
    }
    expect(await codeOf(admin.call.team.removeMember({ orgId: org.id, userId: owner.user.id }))).toBe('FORBIDDEN');
    expect(await rolesIn(org.id)).toEqual({ [owner.user.id]: 'owner', [admin.user.id]: 'admin', [dev.user.id]: 'admin', [other.user.id]: 'developer' });

    // Admins remove admins and developers; the removed lose access at once.
    await admin.call.team.removeMember({ orgId: org.id, userId: other.user.id });
    expect(await roleOf(org.id, other)).toBeNull();
    const gone = await outcome(other.call.organization.get({ orgId: org.id }));
    expect(gone.ok ? 'ok' : `${gone.code}: ${gone.message}`).toBe('NOT_FOUND: not found');
  });

  it('lets owners grant and take the owner role', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    await owner.call.team.updateRole({ orgId: org.id, userId: admin.user.id, role: 'owner' });
    expect(await roleOf(org.id, admin)).toBe('owner');
    await owner.call.team.updateRole({ orgId: org.id, userId: admin.user.id, role: 'developer' });
    expect(await roleOf(org.id, admin)).toBe('developer');
  });

  it('refuses developers any change, and answers NOT_FOUND for someone who is not a member', async () => {
    const stranger = await t.signUp('Sam Stranger');
    const org = await t.orgWith(owner, [[admin, 'admin'], [dev, 'developer']]);
    expect(await codeOf(dev.call.team.updateRole({ orgId: org.id, userId: dev.user.id, role: 'admin' }))).toBe('FORBIDDEN');
    expect(await codeOf(dev.call.team.removeMember({ orgId: org.id, userId: admin.user.id }))).toBe('FORBIDDEN');
    const missing = await outcome(admin.call.team.updateRole({ orgId: org.id, userId: stranger.user.id, role: 'admin' }));
    expect(missing.ok ? 'ok' : `${missing.code}: ${missing.message}`).toBe('NOT_FOUND: member not found');
    expect(await codeOf(admin.call.team.removeMember({ orgId: org.id, userId: stranger.user.id }))).toBe('NOT_FOUND');
    expect(await rolesIn(org.id)).toEqual({ [owner.user.id]: 'owner', [admin.user.id]: 'admin', [dev.user.id]: 'developer' });
  });

  it('records a role change once, and a change to the same role not at all', async () => {
    const org = await t.orgWith(owner, [[dev, 'developer']]);
    await owner.call.team.updateRole({ orgId: org.id, userId: dev.user.id, role: 'developer' });
    await owner.call.team.updateRole({ orgId: org.id, userId: dev.user.id, role: 'admin' });
    const audit = await owner.call.audit.list({ orgId: org.id });
    const changes = audit.items.filter((i) => i.action === 'member.role_changed');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ before: { role: 'developer' }, after: { role: 'admin' } });
  });

  it('lets any member leave, developers included', async () => {
    const org = await t.orgWith(owner, [[dev, 'developer']]);
    await dev.call.team.leave({ orgId: org.id });
    expect(await roleOf(org.id, dev)).toBeNull();
    expect((await dev.call.organization.list()).map((o) => o.id)).not.toContain(org.id);
  });
});

describe('invitation rules', () => {
  it('hands out the invited role; admins may invite admins and developers, not owners', async () => {
    const org = await t.orgWith(owner, [[admin, 'admin']]);
    const asAdmin = await t.signUp('Ada Invited');
    const asDev = await t.signUp('Dan Invited');
    await t.join(admin, org.id, asAdmin, 'admin');
    await t.join(admin, org.id, asDev, 'developer');
    expect(await roleOf(org.id, asAdmin)).toBe('admin');
    expect(await roleOf(org.id, asDev)).toBe('developer');
    const email = uniqueEmail('would-be-owner');
    expect(await codeOf(admin.call.team.invite({ orgId: org.id, email, role: 'owner' }))).toBe('FORBIDDEN');
    expect(await t.sql('select 1 from invitation where email = ?', [email])).toHaveLength(0);
  });

  it('refuses inviting someone who is already a member (CONFLICT), and accepting twice', async () => {
    const org = await t.orgWith(owner, [[dev, 'developer']]);
    const again = await outcome(owner.call.team.invite({ orgId: org.id, email: dev.email.toUpperCase(), role: 'admin' }));
    expect(again.ok ? 'ok' : again.code).toBe('CONFLICT');
    expect(await roleOf(org.id, dev)).toBe('developer');

    const newcomer = await t.signUp('Nell Newcomer');
    const { inviteUrl } = await owner.call.team.invite({ orgId: org.id, email: newcomer.email, role: 'admin' });
    expect(await newcomer.call.team.acceptInvitation({ token: tokenOf(inviteUrl) })).toEqual({ orgId: org.id });
    expect(await codeOf(newcomer.call.team.acceptInvitation({ token: tokenOf(inviteUrl) }))).toBe('CONFLICT');
    expect(await t.sql('select 1 from membership where org_id = ? and user_id = ?', [org.id, newcomer.user.id])).toHaveLength(1);
  });

  it('is refused once revoked, and a new invitation to the same address replaces the pending one', async () => {
    const org = await t.orgWith(owner);
    const zoe = await t.signUp('Zoe Invitee');
    const first = await owner.call.team.invite({ orgId: org.id, email: zoe.email, role: 'developer' });
    const second = await owner.call.team.invite({ orgId: org.id, email: zoe.email, role: 'admin' });
    const pending = await owner.call.team.invitations({ orgId: org.id });
    expect(pending.map((i) => [i.id, i.role])).toEqual([[second.invitation.id, 'admin']]);
    const replaced = await outcome(zoe.call.team.acceptInvitation({ token: tokenOf(first.inviteUrl) }));
    expect(replaced.ok ? 'ok' : replaced.code).toBe('PRECONDITION_FAILED');
    expect(replaced.ok ? '' : replaced.message).toMatch(/revoked/);

    await owner.call.team.revokeInvitation({ invitationId: second.invitation.id });
    expect(await owner.call.team.invitations({ orgId: org.id })).toEqual([]);
    expect(await codeOf(zoe.call.team.acceptInvitation({ token: tokenOf(second.inviteUrl) }))).toBe('PRECONDITION_FAILED');
    expect(await roleOf(org.id, zoe)).toBeNull();
    expect((await t.callerFor(null).team.invitationPreview({ token: tokenOf(second.inviteUrl) })).status).toBe('revoked');
    // Revoking again is a no-op; revoking an accepted invitation is refused (remove the member instead).
    expect(await owner.call.team.revokeInvitation({ invitationId: second.invitation.id })).toEqual({ ok: true });
    const third = await owner.call.team.invite({ orgId: org.id, email: zoe.email, role: 'developer' });
    await zoe.call.team.acceptInvitation({ token: tokenOf(third.inviteUrl) });
    const late = await outcome(owner.call.team.revokeInvitation({ invitationId: third.invitation.id }));
    expect(late.ok ? 'ok' : late.code).toBe('PRECONDITION_FAILED');
    expect(await roleOf(org.id, zoe)).toBe('developer');
  });

  it('expires after 7 days', async () => {
    const org = await t.orgWith(owner);
    const late = await t.signUp('Lou Late');
    const { invitation, inviteUrl } = await owner.call.team.invite({ orgId: org.id, email: late.email, role: 'developer' });
    const days = (new Date(invitation.expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
    await t.sql(`update invitation set expires_at = now() - interval '1 second' where id = ?`, [invitation.id]);
    const o = await outcome(late.call.team.acceptInvitation({ token: tokenOf(inviteUrl) }));
    expect(o.ok ? 'ok' : o.code).toBe('PRECONDITION_FAILED');
    expect(o.ok ? '' : o.message).toMatch(/expired/);
    expect(await roleOf(org.id, late)).toBeNull();
    expect(await owner.call.team.invitations({ orgId: org.id })).toEqual([]);
    const preview = await t.callerFor(null).team.invitationPreview({ token: tokenOf(inviteUrl) });
    expect(preview.status).toBe('expired');
  });

  it('is bound to the invited address: another account is refused and nothing changes', async () => {
    const org = await t.orgWith(owner);
    const invited = await t.signUp('Ivy Invited');
    const { inviteUrl } = await owner.call.team.invite({ orgId: org.id, email: invited.email, role: 'admin' });
    const o = await outcome(dev.call.team.acceptInvitation({ token: tokenOf(inviteUrl) }));
    expect(o.ok ? 'ok' : o.code).toBe('FORBIDDEN');
    expect(o.ok ? '' : o.message).toContain(invited.email);
    expect(await roleOf(org.id, dev)).toBeNull();
    // Still usable by the right person.
    await invited.call.team.acceptInvitation({ token: tokenOf(inviteUrl) });
    expect(await roleOf(org.id, invited)).toBe('admin');
  });
});

describe('the caller itself', () => {
  it('runs the same guards as HTTP: signed-out callers are asked to sign in, outsiders see NOT_FOUND', async () => {
    const org = await t.orgWith(owner);
    expect(await codeOf(t.callerFor(null).organization.get({ orgId: org.id }))).toBe('UNAUTHORIZED');
    const outsider = await outcome(dev.call.organization.get({ orgId: org.id }));
    expect(outsider.ok ? 'ok' : `${outsider.code}: ${outsider.message}`).toBe('NOT_FOUND: not found');
    // Cross-origin mutations are refused (the context says where a call came from).
    expect(await codeOf(t.callerFor(owner.user, { sameOrigin: false }).project.create({ orgId: org.id, name: 'x' }))).toBe('FORBIDDEN');
  });
});
