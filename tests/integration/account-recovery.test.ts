/**
 * A lost account can be recovered, and an account can be kept up: password reset by an emailed
 * link (single use, within the hour, the newest link only, rate limited, the same answer whether
 * or not the address has an account), change of password (the current one asked; other sessions
 * and their WebSockets end), change of address (confirmed from the new one), rename, the list of
 * sessions with "sign out everywhere else". Real server and PostgreSQL; emails are read as the
 * mailer is handed them after commit (the outbox keeps them with their links redacted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp, uniqueEmail } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { settle, sql } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';
import { liveConnection, type LiveConnection } from '../helpers/live.js';

const PASSWORD = 'correct horse battery';
let app: TestApp;
const mails: { to: string; subject: string; text: string }[] = [];
const connections: LiveConnection[] = [];

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
  await Promise.all(connections.map((c) => c.close()));
  await app?.close();
});

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
const code = (o: Outcome) => (o.ok ? 'ok' : o.code);
const sessionCount = async (userId: string) => (await sql<{ n: number }>(app, 'select count(*)::int as n from session where user_id = ?', [userId]))[0]!.n;
const mailsTo = (to: string, subject: string) => mails.filter((m) => m.to === to && m.subject === subject);
async function mailTo(to: string, subject: string, nth = 0): Promise<string> {
  const mail = await waitFor(async () => mailsTo(to, subject)[nth], 10_000, `mail "${subject}" to ${to}`);
  return mail.text;
}
const tokenIn = (text: string, path: string) => {
  const m = new RegExp(`${path}\\?token=([a-z2-7]+)`).exec(text);
  if (!m) throw new Error(`no ${path} link in: ${text}`);
  return m[1]!;
};
const signInWith = (email: string, password: string, ip = '198.51.100.9') => call(app.url, 'mutation', 'auth.signIn', { email, password }, from(ip));

describe('password reset by email', () => {
  it('the same answer for an address without an account; a single-use link for one with', async () => {
    const person = await signUp(app.url, 'Rita Reset');
    const nobody = uniqueEmail('nobody');
    const forNobody = await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: nobody }, from('198.51.100.1'));
    const forPerson = await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: person.email.toUpperCase() }, from('198.51.100.1'));
    expect(forNobody).toEqual(forPerson);
    expect(forPerson).toMatchObject({ ok: true, status: 200, data: { ok: true } });

    const text = await mailTo(person.email, 'Reset your LLM Gateway password');
    expect(text).toContain(`${app.url}/reset-password?token=`);
    expect(text).toContain('within 60 minutes');
    const token = tokenIn(text, '/reset-password');
    await settle(app);
    expect(mails.filter((m) => m.to === nobody)).toEqual([]);
    // Stored only as a hash, and the outbox keeps the email without its link.
    const rows = await sql<{ row: string; ttl: number }>(app, `select t::text as row, extract(epoch from expires_at - created_at)::int as ttl from account_token t where user_id = ? and purpose = 'password_reset'`, [person.user.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.row).not.toContain(token);
    expect(rows[0]!.ttl).toBe(60 * 60);
    const [outbox] = await sql<{ body: string }>(app, `select body from email_outbox where recipient = ? and subject = 'Reset your LLM Gateway password'`, [person.email]);
    expect(outbox!.body).toContain('/reset-password?token=[redacted]');

    // A second browser of the owner's (and a live socket) is signed in before the reset.
    const { organization } = await person.client.organization.create.mutate({ name: 'Reset Co' });
    const live = liveConnection(app.url, { cookie: person.cookieHeader() });
    connections.push(live);
    const sub = live.subscribe(organization.id);
    await sub.event('presence');

    const reset = await call(app.url, 'mutation', 'auth.resetPassword', { token, password: 'a brand new password' });
    expect(code(reset)).toBe('ok');
    // Every session ended, with its socket.
    await sub.until('the socket of the old session to close', () => live.closes.find((c) => c.code === 4001));
    expect(await sessionCount(person.user.id)).toBe(0);
    expect(await person.client.auth.me.query()).toBeNull();
    expect(await mailTo(person.email, 'Your password was changed')).toContain('every session was signed out');

    // Single use; the old password no longer signs in, the new one does.
    const again = await call(app.url, 'mutation', 'auth.resetPassword', { token, password: 'yet another password' });
    expect(code(again)).toBe('UNAUTHORIZED');
    expect(code(await signInWith(person.email, PASSWORD))).toBe('UNAUTHORIZED');
    expect(code(await signInWith(person.email, 'a brand new password'))).toBe('ok');
    // The link reached the address: it counts as verified.
    const [user] = await sql<{ email_verified_at: Date | null }>(app, 'select email_verified_at from app_user where id = ?', [person.user.id]);
    expect(user!.email_verified_at).not.toBeNull();
    const actions = (await sql<{ action: string }>(app, 'select action from account_audit_log where user_id = ? order by id', [person.user.id])).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['password.reset_requested', 'password.reset']));
  });

  it('an expired link, or one replaced by a newer email, does not work', async () => {
    const person = await signUp(app.url, 'Eli Expired');
    await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: person.email }, from('198.51.100.2'));
    const first = tokenIn(await mailTo(person.email, 'Reset your LLM Gateway password', 0), '/reset-password');
    await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: person.email }, from('198.51.100.2'));
    const second = tokenIn(await mailTo(person.email, 'Reset your LLM Gateway password', 1), '/reset-password');
    expect(code(await call(app.url, 'mutation', 'auth.resetPassword', { token: first, password: 'replaced link password' }))).toBe('UNAUTHORIZED');
    await sql(app, `update account_token set expires_at = now() - interval '1 second' where user_id = ? and purpose = 'password_reset' and used_at is null`, [person.user.id]);
    const expired = await call(app.url, 'mutation', 'auth.resetPassword', { token: second, password: 'expired link password' });
    expect(code(expired)).toBe('UNAUTHORIZED');
    expect(expired.ok ? '' : expired.message).toMatch(/expired/);
    // Nothing changed: the old password still signs in.
    expect(code(await signInWith(person.email, PASSWORD))).toBe('ok');
  });

  it('is rate limited per address (same answer, no more emails) and per IP (whatever the address)', async () => {
    const person = await signUp(app.url, 'Flo Flood');
    for (let i = 0; i < 5; i++) {
      const o = await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: person.email }, from('198.51.100.3'));
      expect(o).toMatchObject({ ok: true, data: { ok: true } });
    }
    await settle(app);
    expect(mailsTo(person.email, 'Reset your LLM Gateway password')).toHaveLength(3);

    // Ten per IP an hour; the eleventh is refused for a taken and for a free address alike.
    const ip = '198.51.100.4';
    for (let i = 0; i < 10; i++) expect(code(await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: uniqueEmail('spray') }, from(ip)))).toBe('ok');
    const taken = await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: person.email }, from(ip));
    const free = await call(app.url, 'mutation', 'auth.requestPasswordReset', { email: uniqueEmail('spray') }, from(ip));
    expect(code(taken)).toBe('TOO_MANY_REQUESTS');
    expect({ ...free, message: '' }).toEqual({ ...taken, message: '' });
  });
});

describe('change of password', () => {
  it('asks the current password; ends the other sessions and closes their sockets, keeps this one', async () => {
    const person = await signUp(app.url, 'Cara Change');
    const { organization } = await person.client.organization.create.mutate({ name: 'Change Co' });
    const laptop = browserClient(app.url);
    await laptop.client.auth.signIn.mutate({ email: person.email, password: PASSWORD });
    const live = liveConnection(app.url, { cookie: laptop.cookieHeader() });
    connections.push(live);
    const sub = live.subscribe(organization.id);
    await sub.event('presence');

    const wrong = await call(app.url, 'mutation', 'auth.changePassword', { currentPassword: 'not my password', password: 'a changed password' }, { cookie: person.cookieHeader() });
    expect(code(wrong)).toBe('BAD_REQUEST');
    expect(wrong.ok ? '' : wrong.message).toBe('that is not your current password');
    expect(await sessionCount(person.user.id)).toBe(2);

    const changed = await person.client.auth.changePassword.mutate({ currentPassword: PASSWORD, password: 'a changed password' });
    expect(changed).toEqual({ ok: true, otherSessionsEnded: 1 });
    await sub.until('the other session’s socket to close', () => live.closes.find((c) => c.code === 4001));
    expect(await laptop.client.auth.me.query()).toBeNull();
    expect((await person.client.auth.me.query())?.user.id).toBe(person.user.id);
    expect(code(await signInWith(person.email, 'a changed password'))).toBe('ok');
    expect(await mailTo(person.email, 'Your password was changed')).toContain('One other session was signed out');
  });
});

describe('change of email address', () => {
  it('changes only once the link sent to the new address is opened; the old address is told', async () => {
    const person = await signUp(app.url, 'Ned Newmail');
    const next = uniqueEmail('new-address');
    const asked = await person.client.auth.changeEmail.mutate({ email: next });
    expect(asked).toMatchObject({ ok: true, email: next });
    expect((await person.client.auth.me.query())?.user.email).toBe(person.email);
    expect(await mailTo(person.email, 'A change of your email address was requested')).toContain(next);
    const token = tokenIn(await mailTo(next, 'Confirm your new email address'), '/confirm-email');

    // A verification link of the old address means nothing after the change.
    const oldVerification = tokenIn(await mailTo(person.email, 'Confirm your email address'), '/verify-email');
    const confirmed = await call(app.url, 'mutation', 'auth.confirmEmail', { token });
    expect(confirmed).toMatchObject({ ok: true, data: { ok: true, email: next } });
    const me = (await person.client.auth.me.query())!.user;
    expect(me).toMatchObject({ email: next, emailVerified: true });
    expect(await mailTo(person.email, 'Your email address was changed')).toContain(next);
    expect(code(await call(app.url, 'mutation', 'auth.confirmEmail', { token }))).toBe('UNAUTHORIZED');
    expect(code(await call(app.url, 'mutation', 'auth.verifyEmail', { token: oldVerification }))).toBe('UNAUTHORIZED');
    expect(code(await signInWith(next, PASSWORD))).toBe('ok');
  });

  it('an address that has an account gets the same answer, and its owner an email instead of a link', async () => {
    const person = await signUp(app.url, 'Tia Taken');
    const other = await signUp(app.url, 'Omar Other');
    const asked = await person.client.auth.changeEmail.mutate({ email: other.email });
    expect(asked).toMatchObject({ ok: true, email: other.email });
    expect(await mailTo(other.email, 'Someone tried to move an account to your address')).toContain('nothing was changed');
    expect(await sql(app, `select 1 from account_token where user_id = ? and purpose = 'email_change'`, [person.user.id])).toHaveLength(0);
    expect((await person.client.auth.me.query())?.user.email).toBe(person.email);
  });
});

describe('email verification at sign-up', () => {
  it('a new account is emailed a link; opening it verifies the address', async () => {
    const person = await signUp(app.url, 'Vera Verify');
    expect((await person.client.auth.me.query())?.user.emailVerified).toBe(false);
    const token = tokenIn(await mailTo(person.email, 'Confirm your email address'), '/verify-email');
    expect(await call(app.url, 'mutation', 'auth.verifyEmail', { token })).toMatchObject({ ok: true, data: { ok: true, email: person.email } });
    expect((await person.client.auth.me.query())?.user.emailVerified).toBe(true);
    expect(code(await call(app.url, 'mutation', 'auth.verifyEmail', { token }))).toBe('UNAUTHORIZED');
    // Asking again once verified sends nothing.
    expect(await person.client.auth.sendVerificationEmail.mutate()).toMatchObject({ alreadyVerified: true });
  });
});

describe('profile and sessions', () => {
  it('renames the account', async () => {
    const person = await signUp(app.url, 'Old Name');
    const { user } = await person.client.auth.updateProfile.mutate({ name: '  New Name ' });
    expect(user.name).toBe('New Name');
    expect((await person.client.auth.me.query())?.user.name).toBe('New Name');
    const blank = await call(app.url, 'mutation', 'auth.updateProfile', { name: '  ' }, { cookie: person.cookieHeader() });
    expect(code(blank)).toBe('BAD_REQUEST');
  });

  it('lists the sessions (this one marked, with browser and address) and signs out everywhere else', async () => {
    const person = await signUp(app.url, 'Sal Sessions');
    const phone = browserClient(app.url);
    await phone.client.auth.signIn.mutate({ email: person.email, password: PASSWORD });
    const withAgent = await call(app.url, 'mutation', 'auth.signIn', { email: person.email, password: PASSWORD }, { headers: { 'user-agent': 'TestBrowser/1.0', 'x-forwarded-for': '203.0.113.50' } });
    expect(code(withAgent)).toBe('ok');

    const list = await person.client.auth.sessions.list.query();
    expect(list).toHaveLength(3);
    expect(list.filter((s) => s.current)).toHaveLength(1);
    expect(list.find((s) => s.userAgent === 'TestBrowser/1.0')).toMatchObject({ ip: '203.0.113.50', current: false });
    for (const s of list) expect(s.createdAt).toBeInstanceOf(Date);
    // The ids are not the session ids (half of each token).
    const ids = (await sql<{ id: string }>(app, 'select id from session where user_id = ?', [person.user.id])).map((r) => r.id);
    for (const s of list) expect(ids).not.toContain(s.id);

    // One other session ends by its id; then all others.
    const agentSession = list.find((s) => s.userAgent === 'TestBrowser/1.0')!;
    expect(await person.client.auth.sessions.revoke.mutate({ id: agentSession.id })).toEqual({ ok: true, ended: 1 });
    // Again: that session is gone, and saying so beats a silent success.
    expect(code(await call(app.url, 'mutation', 'auth.sessions.revoke', { id: agentSession.id }, { cookie: person.cookieHeader() }))).toBe('NOT_FOUND');
    const current = list.find((s) => s.current)!;
    expect(code(await call(app.url, 'mutation', 'auth.sessions.revoke', { id: current.id }, { cookie: person.cookieHeader() }))).toBe('BAD_REQUEST');
    expect(await person.client.auth.sessions.revokeOthers.mutate()).toEqual({ ok: true, ended: 1 });
    expect(await phone.client.auth.me.query()).toBeNull();
    expect(await person.client.auth.sessions.list.query()).toEqual([expect.objectContaining({ current: true })]);
  });
});
