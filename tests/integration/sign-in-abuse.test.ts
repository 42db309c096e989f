/**
 * Brute force stays expensive without making lockout a weapon: wrong passwords from an attacker's
 * IP never stop the owner signing in from elsewhere; past the per-account threshold (many IPs) a
 * password alone no longer signs in (a TOTP account uses its code as always, others get an emailed
 * one-time link) and the answer stops depending on the password. Sign-up does not tell whether an
 * address has an account. Real server and PostgreSQL; emails are read as the mailer is handed them.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHOTP } from '@oslojs/otp';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import superjson from 'superjson';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp, uniqueEmail } from '../helpers/client.js';
import { call, type Outcome } from '../helpers/rpc.js';
import { sql, tableChecksums } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';

const PASSWORD = 'correct horse battery';
let app: TestApp;
/** Every email as the unit of work hands it to the mailer after commit (the outbox redacts links). */
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

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
const signIn = (input: Record<string, unknown>, ip: string) => call(app.url, 'mutation', 'auth.signIn', input, from(ip));
const outcome = (o: Outcome) => (o.ok ? o.data : o.code);
const codeAt = (secret: string, offsetSteps: number) => generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + offsetSteps), 6);
const sessionCount = async (userId: string) => (await sql<{ n: number }>(app, 'select count(*)::int as n from session where user_id = ?', [userId]))[0]!.n;

/** `count` wrong passwords for `email`, 10 from each of as many attacker IPs as that takes. */
async function attack(email: string, count: number, net: string) {
  for (let i = 0; i < count; i += 10) {
    const ip = `${net}.${i / 10 + 1}`;
    const batch = await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => signIn({ email, password: `guess ${i + j}` }, ip)));
    for (const o of batch) expect(o.ok ? 'ok' : o.code).toBe('UNAUTHORIZED');
  }
}

/** The text of the mail to `to` with this subject. */
async function mailTo(to: string, subject: string): Promise<string> {
  const mail = await waitFor(async () => mails.find((m) => m.to === to && m.subject === subject), 10_000, `mail "${subject}" to ${to}`);
  return mail.text;
}

describe('wrong passwords from an attacker do not lock the owner out', () => {
  it('ten wrong passwords from one IP: the owner signs in from another IP with the password', async () => {
    const owner = await signUp(app.url, 'Olive Owner');
    await attack(owner.email, 10, '203.0.113');
    // The attacker's pair is now slowed down...
    const attacker = await signIn({ email: owner.email, password: PASSWORD }, '203.0.113.1');
    expect(outcome(attacker)).toBe('TOO_MANY_REQUESTS');
    // ...the owner is not.
    const browser = browserClient(app.url);
    const signedIn = await browser.client.auth.signIn.mutate({ email: owner.email, password: PASSWORD });
    expect('user' in signedIn && signedIn.user?.id).toBe(owner.user.id);
  });

  it('the same for an account with two-factor: password and a valid code sign in', async () => {
    const owner = await signUp(app.url, 'Tom Totp');
    const { secret } = await owner.client.auth.twoFactor.setup.mutate();
    await owner.client.auth.twoFactor.enable.mutate({ code: codeAt(secret, -1) });
    await attack(owner.email, 10, '203.0.114');
    const step1 = await signIn({ email: owner.email, password: PASSWORD }, '192.0.2.77');
    expect(outcome(step1)).toEqual({ twoFactorRequired: true });
    const step2 = await signIn({ email: owner.email, password: PASSWORD, totp: codeAt(secret, 0) }, '192.0.2.77');
    expect(step2.ok && (step2.data as { user: { id: string } }).user.id).toBe(owner.user.id);
  });
});

describe('past the per-account threshold (30 failures from several IPs)', () => {
  it('an account without two-factor gets an emailed one-time link instead of a refusal', async () => {
    const owner = await signUp(app.url, 'Lina Link');
    await attack(owner.email, 30, '198.18.0');
    const sessionsBefore = await sessionCount(owner.user.id);

    // The same answer for the right and a wrong password: the attack learns nothing.
    const wrong = await signIn({ email: owner.email, password: 'still guessing' }, '198.18.1.1');
    expect(outcome(wrong)).toEqual({ emailLinkRequired: true });
    const right = await signIn({ email: owner.email, password: PASSWORD }, '192.0.2.10');
    expect(outcome(right)).toEqual({ emailLinkRequired: true });
    expect(await sessionCount(owner.user.id)).toBe(sessionsBefore);

    // Only the right password sent a link; it is stored as a hash, expires in 15 minutes.
    const text = await mailTo(owner.email, 'Your sign-in link');
    const token = /\/signin\/link\?token=([a-z2-7]+)/.exec(text)![1]!;
    const links = await sql<{ token_hash: Buffer; ttl: number }>(
      app,
      'select token_hash, extract(epoch from expires_at - created_at)::int as ttl from sign_in_link where user_id = ?',
      [owner.user.id],
    );
    expect(links).toHaveLength(1);
    expect(Buffer.from(links[0]!.token_hash).equals(createHash('sha256').update(token).digest())).toBe(true);
    expect(links[0]!.ttl).toBe(15 * 60);
    expect(mails.filter((m) => m.to === owner.email && m.subject === 'Your sign-in link')).toHaveLength(1);
    // Once handed on, the outbox keeps the email without the link's token.
    const kept = await waitFor(async () => (await sql<{ body: string; status: string }>(app, `select body, status from email_outbox where recipient = ? and subject = 'Your sign-in link'`, [owner.email])).find((r) => r.status !== 'pending'));
    expect(kept.body).not.toContain(token);
    expect(kept.body).toContain('/signin/link?token=[redacted]');

    // The link signs in once.
    const browser = browserClient(app.url);
    const viaLink = await browser.client.auth.signInWithLink.mutate({ token });
    expect(viaLink.user.id).toBe(owner.user.id);
    expect((await browser.client.auth.me.query())?.user.id).toBe(owner.user.id);
    const again = await call(app.url, 'mutation', 'auth.signInWithLink', { token });
    expect(outcome(again)).toBe('UNAUTHORIZED');
    expect(await sql<{ action: string }>(app, `select action from account_audit_log where user_id = ? and action like 'sign_in.%' order by id`, [owner.user.id])).toEqual([
      { action: 'sign_in.link_sent' },
      { action: 'sign_in.link_used' },
    ]);
  });

  it('an expired link does not sign in', async () => {
    const owner = await signUp(app.url, 'Ezra Expired');
    await attack(owner.email, 30, '198.18.2');
    expect(outcome(await signIn({ email: owner.email, password: PASSWORD }, '192.0.2.11'))).toEqual({ emailLinkRequired: true });
    const token = /\/signin\/link\?token=([a-z2-7]+)/.exec(await mailTo(owner.email, 'Your sign-in link'))![1]!;
    await sql(app, `update sign_in_link set expires_at = now() - interval '1 second' where user_id = ?`, [owner.user.id]);
    expect(outcome(await call(app.url, 'mutation', 'auth.signInWithLink', { token }))).toBe('UNAUTHORIZED');
  });

  it('an account with two-factor keeps signing in with password and code; a wrong password learns nothing', async () => {
    const owner = await signUp(app.url, 'Tara Totp');
    const { secret } = await owner.client.auth.twoFactor.setup.mutate();
    await owner.client.auth.twoFactor.enable.mutate({ code: codeAt(secret, -1) });
    await attack(owner.email, 30, '198.18.3');
    // Without a code the answer is the same whatever the password.
    expect(outcome(await signIn({ email: owner.email, password: 'a wrong one' }, '198.18.4.1'))).toEqual({ twoFactorRequired: true });
    expect(outcome(await signIn({ email: owner.email, password: PASSWORD }, '192.0.2.12'))).toEqual({ twoFactorRequired: true });
    // A wrong password with a (stolen) valid code is refused, and does not spend the code.
    const code = codeAt(secret, 0);
    expect(outcome(await signIn({ email: owner.email, password: 'a wrong one', totp: code }, '198.18.4.1'))).toBe('UNAUTHORIZED');
    const ok = await signIn({ email: owner.email, password: PASSWORD, totp: code }, '192.0.2.12');
    expect(ok.ok && (ok.data as { user: { id: string } }).user.id).toBe(owner.user.id);
    expect(await sql(app, 'select 1 from sign_in_link where user_id = ?', [owner.user.id])).toHaveLength(0);
  });
});

describe('sign-up does not tell whether an address has an account', () => {
  async function rawSignUp(email: string, name: string) {
    const res = await fetch(`${app.url}/trpc/auth.signUp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: app.url, 'sec-fetch-site': 'same-origin', 'x-forwarded-for': '192.0.2.200' },
      body: JSON.stringify(superjson.serialize({ email, password: 'another password 123', name })),
    });
    const body = (await res.json()) as { result: { data: unknown } };
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('session='))!;
    return { status: res.status, data: superjson.deserialize(body.result.data as never) as { user: Record<string, unknown> }, cookie };
  }
  /** The Set-Cookie line with its value's characters replaced by their class: the form, not the value. */
  const cookieForm = (cookie: string) => cookie.replace(/^session=[^;]+/, (v) => v.replace(/[a-z2-7]/g, 'x'));

  it('answers a taken address like a new one, creates and changes nothing, and emails the owner', async () => {
    const owner = await signUp(app.url, 'Sam Taken');
    const before = await tableChecksums(app, ['email_outbox', 'account_audit_log']);

    const taken = await rawSignUp(owner.email.toUpperCase(), 'Not Sam');
    const fresh = await rawSignUp(uniqueEmail('fresh'), 'Fresh Person');
    expect(taken.status).toBe(fresh.status);
    expect(Object.keys(taken.data).sort()).toEqual(Object.keys(fresh.data).sort());
    expect(Object.keys(taken.data.user).sort()).toEqual(Object.keys(fresh.data.user).sort());
    expect(taken.data.user).toMatchObject({ email: owner.email, name: 'Not Sam', twoFactorEnabled: false });
    expect(taken.data.user.id).not.toBe(owner.user.id);
    expect(cookieForm(taken.cookie)).toBe(cookieForm(fresh.cookie));

    // Nothing changed for the taken address (only the new account's rows appeared)...
    const after = await tableChecksums(app, ['email_outbox', 'account_audit_log']);
    const users = await sql<{ name: string }>(app, 'select name from app_user where email = ?', [owner.email]);
    expect(users).toEqual([{ name: 'Sam Taken' }]);
    expect(await sessionCount(owner.user.id)).toBe(1);
    const changed = Object.keys(after).filter((t) => after[t] !== before[t]).sort();
    expect(changed).toEqual(['account_token', 'app_user', 'session']); // the fresh account, its session and its email verification link
    // ...the cookie opens no session (the app then says "check your email")...
    expect(outcome(await call(app.url, 'query', 'auth.me', undefined, { cookie: taken.cookie.split(';')[0]! }))).toBeNull();
    // ...and the owner is told, by email, through the outbox.
    const outbox = await sql<{ subject: string; body: string }>(app, `select subject, body from email_outbox where recipient = ? and subject <> 'Confirm your email address'`, [owner.email]);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.subject).toBe('Someone tried to create an account with your address');
    expect(outbox[0]!.body).toContain('sign in');
    expect(await sql(app, `select 1 from account_audit_log where user_id = ? and action = 'account.sign_up_attempted'`, [owner.user.id])).toHaveLength(1);
  });
});
