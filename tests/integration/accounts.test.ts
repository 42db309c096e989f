/**
 * Accounts against the real server: sign-up/sign-in/sign-out and the session cookie, wrong
 * passwords, rate limits per (account, IP) pair and per IP, TOTP two-factor, personal API tokens, and the
 * refusal of cross-origin mutations.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHOTP, generateTOTP } from '@oslojs/otp';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import superjson from 'superjson';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp, tokenClient, uniqueEmail } from '../helpers/client.js';
import { call } from '../helpers/rpc.js';
import { sql } from '../helpers/db-state.js';
import type { Person } from '../helpers/world.js';

const PASSWORD = 'correct horse battery';
let app: TestApp;
let casey: Person;

beforeAll(async () => {
  app = await startTestApp();
  casey = await signUp(app.url, 'Casey Case');
});
afterAll(async () => {
  await app?.close();
});

/** A POST as a browser on our origin would send it; returns the raw response. */
async function post(path: string, input: unknown, headers: Record<string, string> = {}) {
  return fetch(`${app.url}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: app.url, 'sec-fetch-site': 'same-origin', ...headers },
    body: JSON.stringify(superjson.serialize(input)),
  });
}

function sessionCookieOf(res: Response): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith('session='));
}

async function sessionsOf(userId: string) {
  return sql<{ id: string; secret_hash: Buffer }>(app, 'select id, secret_hash from session where user_id = ?', [userId]);
}

const ip = (n: number) => ({ 'x-forwarded-for': `198.51.100.${n}` });

describe('sign-up, sign-in, sign-out', () => {
  it('signs up with a mixed-case email and sets an HttpOnly, SameSite=Lax session cookie', async () => {
    const email = `Mixed.Case-${Date.now()}@Example.COM`;
    const res = await post('auth.signUp', { email, password: PASSWORD, name: 'Mixed Case' });
    expect(res.status).toBe(200);
    const cookie = sessionCookieOf(res)!;
    expect(cookie).toBeDefined();
    const attributes = cookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toContain('httponly');
    expect(attributes).toContain('samesite=lax');
    expect(attributes).toContain('path=/');
    expect(attributes.some((a) => a.startsWith('max-age='))).toBe(true);
    const users = await sql<{ id: string; email: string }>(app, 'select id, email from app_user where lower(email) = lower(?)', [email]);
    expect(users).toEqual([{ id: expect.any(String), email: email.toLowerCase() }]);
    // The cookie carries <id>.<secret>; the database keeps only SHA-256(secret).
    const token = cookie.slice('session='.length, cookie.indexOf(';'));
    const [id, secret] = token.split('.');
    const [session] = await sessionsOf(users[0]!.id);
    expect(session!.id).toBe(id);
    expect(Buffer.from(session!.secret_hash).equals(createHash('sha256').update(secret!).digest())).toBe(true);
    const dump = await sql<{ row: string }>(app, 'select s::text as row from session s where user_id = ?', [users[0]!.id]);
    expect(dump[0]!.row).not.toContain(secret);

    // Sign-in is case-insensitive too, and the address is taken whatever its case.
    const again = browserClient(app.url);
    const signedIn = await again.client.auth.signIn.mutate({ email: email.toUpperCase(), password: PASSWORD });
    expect('user' in signedIn && signedIn.user?.email).toBe(email.toLowerCase());
    // A second sign-up with the address (in any case) answers like a new one and creates nothing
    // (tests/integration/sign-in-abuse.test.ts has the details).
    const duplicate = await call(app.url, 'mutation', 'auth.signUp', { email: email.toUpperCase(), password: PASSWORD, name: 'Dup' });
    expect(duplicate.ok).toBe(true);
    expect(await sql(app, 'select 1 from app_user where lower(email) = lower(?)', [email])).toHaveLength(1);
  });

  it('refuses a wrong password with UNAUTHORIZED, and says the same for an unknown email', async () => {
    const before = (await sessionsOf(casey.user.id)).length;
    const wrong = await post('auth.signIn', { email: casey.email, password: 'not the password' }, ip(1));
    const unknown = await post('auth.signIn', { email: uniqueEmail('nobody'), password: 'not the password' }, ip(1));
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(sessionCookieOf(wrong)).toBeUndefined();
    const [a, b] = [await wrong.json(), await unknown.json()];
    expect(a.error.json.data.code).toBe('UNAUTHORIZED');
    expect(a.error.json.message).toBe(b.error.json.message);
    expect(a.error.json.message).not.toMatch(/exist|unknown|no account/i);
    expect((await sessionsOf(casey.user.id)).length).toBe(before);
  });

  it('signs out: the session row is gone, the old cookie no longer works, other sessions live on', async () => {
    const laptop = browserClient(app.url);
    const phone = browserClient(app.url);
    await laptop.client.auth.signIn.mutate({ email: casey.email, password: PASSWORD });
    await phone.client.auth.signIn.mutate({ email: casey.email, password: PASSWORD });
    const oldCookie = laptop.cookieHeader();
    const sessionId = laptop.cookies.get('session')!.split('.')[0]!;
    expect((await sessionsOf(casey.user.id)).map((s) => s.id)).toContain(sessionId);

    const res = await post('auth.signOut', undefined, { cookie: oldCookie });
    expect(res.status).toBe(200);
    expect(sessionCookieOf(res)).toMatch(/^session=;.*Max-Age=0/i);
    expect((await sessionsOf(casey.user.id)).map((s) => s.id)).not.toContain(sessionId);

    const me = await call(app.url, 'query', 'auth.me', undefined, { cookie: oldCookie });
    expect(me.ok && me.data).toBeNull();
    const list = await call(app.url, 'query', 'organization.list', undefined, { cookie: oldCookie });
    expect(list.ok ? 'ok' : list.code).toBe('UNAUTHORIZED');
    expect(list.status).toBe(401);
    expect((await phone.client.auth.me.query())?.user.id).toBe(casey.user.id);
  });

  it('treats a forged or malformed session cookie as signed out (not as a server error)', async () => {
    const [id] = casey.cookies.get('session')!.split('.');
    for (const cookie of [`session=${id}.forgedsecret`, 'session=garbage', `session=${id}`, 'session=a.b.c', 'session=%zz', `session=${'x'.repeat(4000)}`]) {
      const me = await call(app.url, 'query', 'auth.me', undefined, { cookie });
      expect(me.ok ? me.data : `${me.code}: ${me.message}`, cookie).toBeNull();
      const list = await call(app.url, 'query', 'organization.list', undefined, { cookie });
      expect(list.ok ? 'ok' : list.code, cookie).toBe('UNAUTHORIZED');
    }
  });

  it('expires a session after 10 days without use, and slides the expiry while it is used', async () => {
    const browser = browserClient(app.url);
    await browser.client.auth.signIn.mutate({ email: casey.email, password: PASSWORD });
    const sessionId = browser.cookies.get('session')!.split('.')[0]!;
    // Used two hours ago: still valid, and the use is recorded.
    await sql(app, `update session set last_verified_at = now() - interval '2 hours' where id = ?`, [sessionId]);
    expect((await browser.client.auth.me.query())?.user.id).toBe(casey.user.id);
    const [touched] = await sql<{ age: number }>(app, `select extract(epoch from now() - last_verified_at)::int as age from session where id = ?`, [sessionId]);
    expect(touched!.age).toBeLessThan(60);
    // Unused for just over 10 days: gone.
    await sql(app, `update session set last_verified_at = now() - interval '10 days 1 minute' where id = ?`, [sessionId]);
    expect(await browser.client.auth.me.query()).toBeNull();
    expect(await sql(app, 'select 1 from session where id = ?', [sessionId])).toHaveLength(0);
  });
});

describe('rate limits', () => {
  it('slows down one (account, IP) pair after 10 attempts, without locking the account elsewhere', async () => {
    const victim = await signUp(app.url, 'Vic Victim');
    for (let i = 0; i < 10; i++) {
      const res = await call(app.url, 'mutation', 'auth.signIn', { email: victim.email, password: `guess ${i}` }, { headers: ip(10) });
      expect(res.ok ? 'ok' : res.code, `attempt ${i + 1}`).toBe('UNAUTHORIZED');
    }
    // The 11th from that IP is refused, even with the right password, and creates no session.
    const sessionsBefore = (await sessionsOf(victim.user.id)).length;
    const locked = await call(app.url, 'mutation', 'auth.signIn', { email: victim.email.toUpperCase(), password: PASSWORD }, { headers: ip(10) });
    expect(locked.ok ? 'ok' : locked.code).toBe('TOO_MANY_REQUESTS');
    expect(locked.status).toBe(429);
    expect(locked.ok ? '' : locked.message).toMatch(/try again in \d+ minutes?/);
    expect((await sessionsOf(victim.user.id)).length).toBe(sessionsBefore);
    // The owner, from another IP, signs in with the password as usual.
    const owner = await call(app.url, 'mutation', 'auth.signIn', { email: victim.email, password: PASSWORD }, { headers: ip(99) });
    expect(owner.ok && 'user' in (owner.data as object)).toBe(true);
    // Someone else signing in from the attacker's IP is not affected.
    const other = await call(app.url, 'mutation', 'auth.signIn', { email: casey.email, password: PASSWORD }, { headers: ip(10) });
    expect(other.ok).toBe(true);
    // Once the 15-minute window has passed, that pair may try again.
    await sql(app, `update rate_limit set window_start = now() - interval '16 minutes' where key = ?`, [`signin:pair:198.51.100.10:${victim.email}`]);
    const later = await call(app.url, 'mutation', 'auth.signIn', { email: victim.email, password: PASSWORD }, { headers: ip(10) });
    expect(later.ok).toBe(true);
  });

  it('limits one IP to 50 sign-in attempts in 15 minutes, whatever the emails', async () => {
    const attacker = { headers: { 'x-forwarded-for': '203.0.113.50' } };
    const attempts = Array.from({ length: 50 }, (_, i) => ({ email: `spray-${i}@example.com`, password: 'Winter2024!' }));
    for (let i = 0; i < attempts.length; i += 10) {
      const batch = await Promise.all(attempts.slice(i, i + 10).map((input) => call(app.url, 'mutation', 'auth.signIn', input, attacker)));
      for (const o of batch) expect(o.ok ? 'ok' : o.code).toBe('UNAUTHORIZED');
    }
    const blocked = await call(app.url, 'mutation', 'auth.signIn', { email: casey.email, password: PASSWORD }, attacker);
    expect(blocked.ok ? 'ok' : blocked.code).toBe('TOO_MANY_REQUESTS');
    expect(blocked.status).toBe(429);
    const elsewhere = await call(app.url, 'mutation', 'auth.signIn', { email: casey.email, password: PASSWORD }, { headers: { 'x-forwarded-for': '203.0.113.51' } });
    expect(elsewhere.ok).toBe(true);
  });

  it('limits sign-ups per IP (30 an hour)', async () => {
    const from = { headers: { 'x-forwarded-for': '192.0.2.30' } };
    // Attempts count whether or not they create an account (a taken address answers like a new one).
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, () => call(app.url, 'mutation', 'auth.signUp', { email: casey.email, password: PASSWORD, name: 'Again' }, from)),
    );
    for (const o of outcomes) expect(o.ok ? 'ok' : o.code).toBe('ok');
    const email = uniqueEmail('late');
    const refused = await call(app.url, 'mutation', 'auth.signUp', { email, password: PASSWORD, name: 'Late' }, from);
    expect(refused.ok ? 'ok' : refused.code).toBe('TOO_MANY_REQUESTS');
    expect(await sql(app, 'select 1 from app_user where email = ?', [email])).toHaveLength(0);
  });
});

describe('two-factor authentication (TOTP)', () => {
  /**
   * The current code, or the code of another 30-second step: ±1 is inside the grace window for clock
   * drift, ±10 is not. Codes are single-use per step, so each accepted code below is from a later
   * step than the one before (enable -1, sign-in 0, disable +1): time only moves forward between
   * them, so the order holds even across a step boundary.
   */
  const codeFor = (secret: string, offsetSteps = 0) => {
    const key = decodeBase32IgnorePadding(secret);
    if (offsetSteps === 0) return generateTOTP(key, 30, 6);
    return generateHOTP(key, BigInt(Math.floor(Date.now() / 30_000) + offsetSteps), 6);
  };

  it('sets up, enables with a real code, requires the code at sign-in, refuses a used code, and disables', async () => {
    const tess = await signUp(app.url, 'Tess Totp');
    const { secret, otpauthUri } = await tess.client.auth.twoFactor.setup.mutate();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(otpauthUri).toContain(`secret=${secret}`);
    // The secret is stored encrypted, never as the base32 text the user sees.
    const [pending] = await sql<{ row: string }>(app, 'select u::text as row from app_user u where id = ?', [tess.user.id]);
    expect(pending!.row).not.toContain(secret);

    const wrongEnable = await call(app.url, 'mutation', 'auth.twoFactor.enable', { code: codeFor(secret, 10) }, { cookie: tess.cookieHeader() });
    expect(wrongEnable.ok ? 'ok' : wrongEnable.code).toBe('BAD_REQUEST');
    expect((await tess.client.auth.me.query())?.user.twoFactorEnabled).toBe(false);

    const enabled = await tess.client.auth.twoFactor.enable.mutate({ code: codeFor(secret, -1) });
    expect(enabled.user.twoFactorEnabled).toBe(true);
    expect((await tess.client.auth.me.query())?.user.twoFactorEnabled).toBe(true);

    // Password alone: asked for the code, no session.
    const browser = browserClient(app.url);
    const sessionsBefore = (await sessionsOf(tess.user.id)).length;
    const step1 = await browser.client.auth.signIn.mutate({ email: tess.email, password: PASSWORD });
    expect(step1).toEqual({ twoFactorRequired: true });
    expect(browser.cookies.has('session')).toBe(false);
    expect((await sessionsOf(tess.user.id)).length).toBe(sessionsBefore);
    // A wrong code, or a right code with a wrong password: refused.
    const wrong = await call(app.url, 'mutation', 'auth.signIn', { email: tess.email, password: PASSWORD, totp: codeFor(secret, 10) });
    expect(wrong.ok ? 'ok' : wrong.code).toBe('UNAUTHORIZED');
    const wrongPassword = await call(app.url, 'mutation', 'auth.signIn', { email: tess.email, password: 'nope nope nope', totp: codeFor(secret) });
    expect(wrongPassword.ok ? 'ok' : wrongPassword.code).toBe('UNAUTHORIZED');
    expect((await sessionsOf(tess.user.id)).length).toBe(sessionsBefore);
    // With the code: signed in.
    const code = codeFor(secret);
    const step2 = await browser.client.auth.signIn.mutate({ email: tess.email, password: PASSWORD, totp: code });
    expect('user' in step2 && step2.user?.id).toBe(tess.user.id);
    expect((await browser.client.auth.me.query())?.user.id).toBe(tess.user.id);
    // The same code again (someone who saw it, or a replayed request): refused, no session.
    const sessionsAfter = (await sessionsOf(tess.user.id)).length;
    const replayed = await call(app.url, 'mutation', 'auth.signIn', { email: tess.email, password: PASSWORD, totp: code });
    expect(replayed.ok ? 'ok' : replayed.code).toBe('UNAUTHORIZED');
    expect((await sessionsOf(tess.user.id)).length).toBe(sessionsAfter);


    // A second setup while enabled is refused (it would silently replace the device).
    const resetup = await call(app.url, 'mutation', 'auth.twoFactor.setup', undefined, { cookie: tess.cookieHeader() });
    expect(resetup.ok ? 'ok' : resetup.code).toBe('BAD_REQUEST');

    const wrongDisable = await call(app.url, 'mutation', 'auth.twoFactor.disable', { code: codeFor(secret, 10) }, { cookie: tess.cookieHeader() });
    expect(wrongDisable.ok ? 'ok' : wrongDisable.code).toBe('BAD_REQUEST');
    expect((await tess.client.auth.me.query())?.user.twoFactorEnabled).toBe(true);
    // Turning it off asks for a code too, and a spent one does not do.
    const spent = await call(app.url, 'mutation', 'auth.twoFactor.disable', { code }, { cookie: tess.cookieHeader() });
    expect(spent.ok ? 'ok' : spent.code).toBe('BAD_REQUEST');
    const disabled = await tess.client.auth.twoFactor.disable.mutate({ code: codeFor(secret, 1) });
    expect(disabled.user.twoFactorEnabled).toBe(false);
    const [row] = await sql<{ totp_secret: string | null; totp_pending_secret: string | null }>(app, 'select totp_secret, totp_pending_secret from app_user where id = ?', [tess.user.id]);
    expect(row).toEqual({ totp_secret: null, totp_pending_secret: null });
    const plain = await browserClient(app.url).client.auth.signIn.mutate({ email: tess.email, password: PASSWORD });
    expect('user' in plain).toBe(true);
  });

  it('two sign-ins racing with one code: exactly one gets a session', async () => {
    const rita = await signUp(app.url, 'Rita Race');
    const { secret } = await rita.client.auth.twoFactor.setup.mutate();
    await rita.client.auth.twoFactor.enable.mutate({ code: codeFor(secret, -1) });
    const before = (await sessionsOf(rita.user.id)).length;
    const code = codeFor(secret);
    const raced = await Promise.all([0, 1, 2].map(() => call(app.url, 'mutation', 'auth.signIn', { email: rita.email, password: PASSWORD, totp: code })));
    expect(raced.filter((r) => r.ok)).toHaveLength(1);
    expect(raced.filter((r) => !r.ok).map((r) => (r.ok ? 'ok' : r.code))).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED']);
    expect((await sessionsOf(rita.user.id)).length).toBe(before + 1);
  });
});

describe('personal API tokens', () => {
  it('creates a token usable as Bearer, never lists the secret, and revoking it ends access at once', async () => {
    const created = await casey.client.auth.tokens.create.mutate({ name: 'CI script' });
    expect(created.token).toMatch(/^lgp_[a-z0-9]+\.[a-z0-9]+$/);
    const secret = created.token.split('.')[1]!;

    const program = tokenClient(app.url, created.token);
    expect((await program.auth.me.query())?.user.id).toBe(casey.user.id);
    // A program (no Origin, no cookies) may mutate with its token.
    const viaToken = await call(app.url, 'mutation', 'organization.create', { name: 'Made by a program' }, { token: created.token, origin: null });
    expect(viaToken.ok).toBe(true);

    const list = await casey.client.auth.tokens.list.query();
    const listed = list.find((t) => t.id === created.id)!;
    expect(listed).toMatchObject({ id: created.id, name: 'CI script' });
    expect(Object.keys(listed).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name']);
    expect(JSON.stringify(list)).not.toContain(secret);
    const [row] = await sql<{ row: string; secret_hash: Buffer }>(app, 'select t::text as row, secret_hash from api_token t where id = ?', [created.id]);
    expect(row!.row).not.toContain(secret);
    expect(Buffer.from(row!.secret_hash).equals(createHash('sha256').update(secret).digest())).toBe(true);

    // Someone else cannot revoke it (and learns nothing about it).
    const mallory = await signUp(app.url, 'Mallory');
    const foreign = await call(app.url, 'mutation', 'auth.tokens.revoke', { id: created.id }, { cookie: mallory.cookieHeader() });
    expect(foreign.ok ? 'ok' : foreign.code).toBe('NOT_FOUND');
    expect((await program.auth.me.query())?.user.id).toBe(casey.user.id);

    // A wrong secret for a real token id is no token.
    const forged = await call(app.url, 'query', 'organization.list', undefined, { token: `lgp_${created.id}.${'a'.repeat(secret.length)}`, origin: null });
    expect(forged.ok ? 'ok' : forged.code).toBe('UNAUTHORIZED');

    await casey.client.auth.tokens.revoke.mutate({ id: created.id });
    const after = await call(app.url, 'query', 'organization.list', undefined, { token: created.token, origin: null });
    expect(after.ok ? 'ok' : after.code).toBe('UNAUTHORIZED');
    expect(after.status).toBe(401);
    expect(await sql(app, 'select 1 from api_token where id = ?', [created.id])).toHaveLength(0);
    expect((await casey.client.auth.tokens.list.query()).map((t) => t.id)).not.toContain(created.id);
  });
});

describe('cross-origin requests', () => {
  const EVIL = 'https://evil.example';

  it('refuses mutations from another origin even with a valid session cookie, and changes nothing', async () => {
    const evil = browserClient(app.url, { origin: EVIL });
    for (const [k, v] of casey.cookies) evil.cookies.set(k, v);
    const orgsBefore = await sql<{ n: number }>(app, 'select count(*)::int as n from organization');
    const tokensBefore = await sql<{ n: number }>(app, 'select count(*)::int as n from api_token');
    await expect(evil.client.organization.create.mutate({ name: 'Planted' })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    await expect(evil.client.auth.tokens.create.mutate({ name: 'Stolen' })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    // Logout CSRF: the session survives.
    await expect(evil.client.auth.signOut.mutate()).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    expect((await casey.client.auth.me.query())?.user.id).toBe(casey.user.id);
    expect(await sql<{ n: number }>(app, 'select count(*)::int as n from organization')).toEqual(orgsBefore);
    expect(await sql<{ n: number }>(app, 'select count(*)::int as n from api_token')).toEqual(tokensBefore);
  });

  it('refuses cross-site sign-in and sign-up (login CSRF), by Origin or by Sec-Fetch-Site alone', async () => {
    const cases: Record<string, string>[] = [
      { origin: EVIL },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: `http://sub.${new URL(app.url).hostname}` },
      { origin: 'null' },
    ];
    for (const headers of cases) {
      const res = await fetch(`${app.url}/trpc/auth.signIn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(superjson.serialize({ email: casey.email, password: PASSWORD })),
      });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(sessionCookieOf(res), JSON.stringify(headers)).toBeUndefined();
    }
    const email = uniqueEmail('csrf');
    const signUpOutcome = await call(app.url, 'mutation', 'auth.signUp', { email, password: PASSWORD, name: 'CSRF' }, { origin: EVIL });
    expect(signUpOutcome.ok ? 'ok' : signUpOutcome.code).toBe('FORBIDDEN');
    expect(await sql(app, 'select 1 from app_user where email = ?', [email])).toHaveLength(0);
  });

  it('lets a Bearer program without Origin mutate, and our own origin too', async () => {
    const { token } = await casey.client.auth.tokens.create.mutate({ name: 'program' });
    const viaProgram = await call(app.url, 'mutation', 'auth.tokens.create', { name: 'made by program' }, { token, origin: null });
    expect(viaProgram.ok).toBe(true);
    const sameOrigin = await call(app.url, 'mutation', 'auth.tokens.create', { name: 'made in the app' }, { cookie: casey.cookieHeader(), headers: { 'sec-fetch-site': 'same-origin' } });
    expect(sameOrigin.ok).toBe(true);
  });
});
