/**
 * Invitations for someone who signs up without the link: once their address is verified, the
 * invitations addressed to it are theirs to accept or decline from the home page; before, they see
 * none (anyone can sign up with any address). Re-inviting an address says what it did to the
 * earlier link. Real server and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, uniqueEmail } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { sql } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';

let app: TestApp;
const mails: { to: string; subject: string; text: string }[] = [];

beforeAll(async () => {
  app = await startTestApp();
  const mailer = app.services.mailer;
  const deliver = mailer.deliver.bind(mailer);
  mailer.deliver = (id, to, subject, text) => {
    mails.push({ to, subject, text });
    return deliver(id, to, subject, text);
  };
});
afterAll(async () => {
  await app?.close();
});

const code = (o: Outcome) => (o.ok ? 'ok' : o.code);
async function verify(email: string) {
  const mail = await waitFor(async () => mails.find((m) => m.to === email && m.subject === 'Confirm your email address'), 10_000, `verification mail to ${email}`);
  const token = /\/verify-email\?token=([a-z2-7]+)/.exec(mail.text)![1]!;
  const verified = await call(app.url, 'mutation', 'auth.verifyEmail', { token });
  expect(code(verified)).toBe('ok');
}

describe('pending invitations of a verified address', () => {
  it('are hidden until the address is verified, then listed to accept from the home page', async () => {
    const owner = await signUp(app.url, 'Ola Owner');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Pending Co' });
    const email = uniqueEmail('invitee');
    const { invitation } = await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'admin' });

    const invitee = await signUp(app.url, 'Ivy Invitee', email);
    expect(await invitee.client.auth.pendingInvitations.query()).toEqual([]);
    const early = await call(app.url, 'mutation', 'team.acceptPendingInvitation', { invitationId: invitation.id }, { cookie: invitee.cookieHeader() });
    expect(code(early)).toBe('NOT_FOUND');

    await verify(email);
    const list = await invitee.client.auth.pendingInvitations.query();
    expect(list).toEqual([
      expect.objectContaining({ id: invitation.id, orgId: organization.id, organizationName: 'Pending Co', role: 'admin', inviterName: 'Ola Owner', inviterEmail: owner.email }),
    ]);
    // Someone else (verified, another address) can neither accept nor decline it.
    const stranger = await signUp(app.url, 'Stan Stranger');
    await verify(stranger.email);
    for (const path of ['team.acceptPendingInvitation', 'team.declineInvitation']) {
      expect(code(await call(app.url, 'mutation', path, { invitationId: invitation.id }, { cookie: stranger.cookieHeader() }))).toBe('NOT_FOUND');
    }

    expect(await invitee.client.team.acceptPendingInvitation.mutate({ invitationId: invitation.id })).toEqual({ orgId: organization.id });
    const members = await owner.client.team.members.query({ orgId: organization.id });
    expect(members.find((m) => m.email === email)?.role).toBe('admin');
    expect(await invitee.client.auth.pendingInvitations.query()).toEqual([]);
  });

  it('declining removes it from the organization’s pending list, and its link says so', async () => {
    const owner = await signUp(app.url, 'Dora Owner');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Decline Co' });
    const email = uniqueEmail('decliner');
    const { invitation, inviteUrl } = await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'developer' });
    const invitee = await signUp(app.url, 'Dec Liner', email);
    await verify(email);
    expect(await invitee.client.team.declineInvitation.mutate({ invitationId: invitation.id })).toEqual({ ok: true });
    expect(await invitee.client.auth.pendingInvitations.query()).toEqual([]);
    expect(await owner.client.team.invitations.query({ orgId: organization.id })).toEqual([]);
    const token = inviteUrl.split('/invite/')[1]!;
    expect((await invitee.client.team.invitationPreview.query({ token })).status).toBe('declined');
    const byLink = await call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: invitee.cookieHeader() });
    expect(code(byLink)).toBe('PRECONDITION_FAILED');
    const [audit] = await sql<{ action: string }>(app, `select action from audit_log where org_id = ? and action = 'invitation.declined'`, [organization.id]);
    expect(audit?.action).toBe('invitation.declined');
  });

  it('accepting through the emailed link verifies the address', async () => {
    const owner = await signUp(app.url, 'Lia Owner');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Link Co' });
    const email = uniqueEmail('linked');
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'developer' });
    const invitee = await signUp(app.url, 'Lin Ked', email);
    expect((await invitee.client.auth.me.query())?.user.emailVerified).toBe(false);
    await invitee.client.team.acceptInvitation.mutate({ token: inviteUrl.split('/invite/')[1]! });
    expect((await invitee.client.auth.me.query())?.user.emailVerified).toBe(true);
  });
});

describe('re-inviting an address', () => {
  it('says that the earlier invitation was replaced: its link no longer works', async () => {
    const owner = await signUp(app.url, 'Rey Owner');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Reinvite Co' });
    const email = uniqueEmail('twice');
    const first = await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'developer' });
    expect(first.replaced).toEqual([]);
    const second = await owner.client.team.invite.mutate({ orgId: organization.id, email, role: 'admin' });
    expect(second.replaced).toEqual([expect.objectContaining({ id: first.invitation.id, role: 'developer' })]);
    const mail = await waitFor(async () => mails.filter((m) => m.to === email)[1], 10_000, 'second invitation');
    expect(mail.text).toContain('It replaces the invitation sent earlier, whose link no longer works.');

    const invitee = await signUp(app.url, 'Tw Ice', email);
    const old = await call(app.url, 'mutation', 'team.acceptInvitation', { token: first.inviteUrl.split('/invite/')[1]! }, { cookie: invitee.cookieHeader() });
    expect(code(old)).toBe('PRECONDITION_FAILED');
    expect(old.ok ? '' : old.message).toMatch(/revoked/);
    await invitee.client.team.acceptInvitation.mutate({ token: second.inviteUrl.split('/invite/')[1]! });
  });
});
