/**
 * Invitations end to end: bound to the invited address, single use, expiring after 7 days,
 * revocable, stored only as a hash, and working for an existing account as well as for someone
 * who signs up after being invited.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, uniqueEmail } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { settle, sql } from '../helpers/db-state.js';
import type { Person } from '../helpers/world.js';

let app: TestApp;
let olive: Person; // owner
let ed: Person; // invited, existing account
let zoe: Person; // someone else
let orgId: string;

beforeAll(async () => {
  app = await startTestApp();
  [olive, ed, zoe] = await Promise.all([signUp(app.url, 'Olive Owner'), signUp(app.url, 'Ed Existing'), signUp(app.url, 'Zoe Other')]);
  orgId = (await olive.client.organization.create.mutate({ name: 'Invite Co' })).organization.id;
});
afterAll(async () => {
  await app?.close();
});

const tokenOf = (inviteUrl: string) => inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1);
const codeOf = (o: Outcome) => (o.ok ? 'ok' : o.code);
const accept = (who: Person, token: string) => call(app.url, 'mutation', 'team.acceptInvitation', { token }, { cookie: who.cookieHeader() });

async function membership(userId: string) {
  const rows = await sql<{ role: string }>(app, 'select role from membership where org_id = ? and user_id = ?', [orgId, userId]);
  return rows[0]?.role ?? null;
}

// Expiry, revocation and replacement are tested through createCaller in rules-caller.test.ts.
describe('an invitation', () => {
  it('stores only a hash of its token: no table holds the token itself', async () => {
    const { invitation, inviteUrl } = await olive.client.team.invite.mutate({ orgId, email: uniqueEmail('hash'), role: 'developer' });
    const token = tokenOf(inviteUrl);
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(inviteUrl).toBe(`${app.url}/invite/${token}`);
    const [row] = await sql<{ token_hash: string }>(app, 'select token_hash from invitation where id = ?', [invitation.id]);
    expect(row!.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    // Every table, every row, as text. The email outbox is left out on purpose: the invitation
    // email itself must carry the link (it is the delivery queue, see the report).
    await settle(app);
    const tables = await sql<{ table_name: string }>(
      app,
      `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' and table_name <> 'email_outbox'`,
    );
    for (const { table_name } of tables) {
      const hits = await sql(app, `select 1 from "${table_name}" t where t::text like ?`, [`%${token}%`]);
      expect(hits, `plain invitation token found in ${table_name}`).toHaveLength(0);
    }
    // The expiry is 7 days out.
    const days = (new Date(invitation.expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
  });

  it("is bound to the invited email: another account gets FORBIDDEN, the invited one gets in, once", async () => {
    const { inviteUrl } = await olive.client.team.invite.mutate({ orgId, email: ed.email.toUpperCase(), role: 'admin' });
    const token = tokenOf(inviteUrl);
    const preview = await call(app.url, 'query', 'team.invitationPreview', { token });
    expect(preview.ok && preview.data).toMatchObject({ organizationName: 'Invite Co', email: ed.email, role: 'admin', status: 'pending', inviterName: 'Olive Owner' });

    const stranger = await accept(zoe, token);
    expect(codeOf(stranger)).toBe('FORBIDDEN');
    expect(stranger.ok ? '' : stranger.message).toContain(ed.email);
    expect(await membership(zoe.user.id)).toBeNull();
    const anonymous = await call(app.url, 'mutation', 'team.acceptInvitation', { token });
    expect(codeOf(anonymous)).toBe('UNAUTHORIZED');

    const accepted = await accept(ed, token);
    expect(accepted.ok && accepted.data).toEqual({ orgId });
    expect(await membership(ed.user.id)).toBe('admin');
    expect((await ed.client.organization.list.query()).map((o) => o.id)).toContain(orgId);

    // Single use: a second acceptance (also by the same person) is refused, and nothing doubles.
    expect(codeOf(await accept(ed, token))).toBe('CONFLICT');
    expect(codeOf(await accept(zoe, token))).toBe('CONFLICT');
    const rows = await sql(app, 'select 1 from membership where org_id = ? and user_id = ?', [orgId, ed.user.id]);
    expect(rows).toHaveLength(1);
    const after = await call(app.url, 'query', 'team.invitationPreview', { token });
    expect(after.ok && (after.data as { status: string }).status).toBe('accepted');
    // And inviting an existing member again is a CONFLICT, not a second membership.
    const again = await call(app.url, 'mutation', 'team.invite', { orgId, email: ed.email, role: 'developer' }, { cookie: olive.cookieHeader() });
    expect(codeOf(again)).toBe('CONFLICT');
  });

  it('works for someone who signs up after being invited', async () => {
    const email = uniqueEmail('newcomer');
    const { inviteUrl } = await olive.client.team.invite.mutate({ orgId, email, role: 'developer' });
    const token = tokenOf(inviteUrl);
    // Before an account exists the link can be previewed but not accepted.
    const preview = await call(app.url, 'query', 'team.invitationPreview', { token });
    expect(preview.ok && (preview.data as { status: string }).status).toBe('pending');
    // The newcomer types their address with other capitals.
    const newcomer = await signUp(app.url, 'Nia Newcomer', email.replace(/^n/, 'N').replace('@example.com', '@Example.com'));
    expect(newcomer.user.email).toBe(email);
    const outcome = await accept(newcomer, token);
    expect(outcome.ok && outcome.data).toEqual({ orgId });
    expect(await membership(newcomer.user.id)).toBe('developer');
    const members = await olive.client.team.members.query({ orgId });
    expect(members.find((m) => m.userId === newcomer.user.id)).toMatchObject({ email, name: 'Nia Newcomer', role: 'developer' });
  });

  it('sends one email per invitation; the outbox keeps it without the link once handed on', async () => {
    const email = uniqueEmail('mailed');
    const { inviteUrl } = await olive.client.team.invite.mutate({ orgId, email, role: 'developer' });
    await settle(app);
    const mails = await sql<{ subject: string; body: string; status: string }>(app, 'select subject, body, status from email_outbox where recipient = ?', [email]);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toContain('Invite Co');
    // The link went out (here: to the log, as no SMTP_URL is set); the stored copy has it redacted.
    expect(mails[0]!.status).toBe('logged');
    expect(mails[0]!.body).toContain('/invite/[redacted]');
    expect(mails[0]!.body).not.toContain(inviteUrl.split('/invite/')[1]!);
  });
});
