/**
 * Two-factor authentication that cannot be lost: recovery codes (issued when it is turned on,
 * stored hashed, each usable once, even under a race; regenerable), the QR code of the setup,
 * turning it on ends the user's other sessions and closes their WebSockets, turning it off deletes
 * the codes; each change is an account audit entry. Real server, real PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHOTP, generateTOTP } from '@oslojs/otp';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp } from '../helpers/client.js';
import { call } from '../helpers/rpc.js';
import { sql } from '../helpers/db-state.js';
import { liveConnection, type LiveConnection } from '../helpers/live.js';

const PASSWORD = 'correct horse battery';
let app: TestApp;
const connections: LiveConnection[] = [];

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await app?.close();
});

/** A code of the current 30-second step, or of one step either side (inside the drift window). */
const codeFor = (secret: string, offsetSteps = 0) =>
  offsetSteps === 0
    ? generateTOTP(decodeBase32IgnorePadding(secret), 30, 6)
    : generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + offsetSteps), 6);

/** A user with two-factor on (enabled with the previous step's code); returns the secret and recovery codes. */
async function withTwoFactor(name: string) {
  const person = await signUp(app.url, name);
  const { secret } = await person.client.auth.twoFactor.setup.mutate();
  const { recoveryCodes } = await person.client.auth.twoFactor.enable.mutate({ code: codeFor(secret, -1) });
  return { person, secret, recoveryCodes };
}

const signIn = (input: Record<string, unknown>) => call(app.url, 'mutation', 'auth.signIn', input);
const sessionCount = async (userId: string) => (await sql<{ n: number }>(app, 'select count(*)::int as n from session where user_id = ?', [userId]))[0]!.n;
const auditActions = async (userId: string) =>
  (await sql<{ action: string }>(app, 'select action from account_audit_log where user_id = ? order by id', [userId])).map((r) => r.action);

describe('setup', () => {
  it('shows the otpauth URI as a QR code (an SVG data URL) next to the secret', async () => {
    const person = await signUp(app.url, 'Quinn QR');
    const setup = await person.client.auth.twoFactor.setup.mutate();
    expect(setup.qrCode).toMatch(/^data:image\/svg\+xml;base64,/);
    const svg = Buffer.from(setup.qrCode.split(',')[1]!, 'base64').toString('utf8');
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).not.toMatch(/<script|href=/i);
    expect(setup.otpauthUri).toContain(`secret=${setup.secret}`);
  });
});

describe('recovery codes', () => {
  it('are issued once on enabling, stored only as SHA-256, and each signs in once', async () => {
    const { person, recoveryCodes } = await withTwoFactor('Rhea Recovery');
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const c of recoveryCodes) expect(c).toMatch(/^[a-z2-7]{5}-[a-z2-7]{5}$/);
    const rows = await sql<{ code_hash: Buffer; row: string }>(app, 'select code_hash, r::text as row from recovery_code r where user_id = ?', [person.user.id]);
    expect(rows).toHaveLength(10);
    const hashes = rows.map((r) => Buffer.from(r.code_hash).toString('hex')).sort();
    expect(hashes).toEqual(recoveryCodes.map((c) => createHash('sha256').update(c.replace('-', '')).digest('hex')).sort());
    for (const r of rows) for (const c of recoveryCodes) expect(r.row).not.toContain(c.replace('-', ''));
    expect(await person.client.auth.twoFactor.status.query()).toEqual({ enabled: true, recoveryCodesLeft: 10 });

    // Typed with another case and without the dash: still the code.
    const code = recoveryCodes[3]!;
    const browser = browserClient(app.url);
    const first = await browser.client.auth.signIn.mutate({ email: person.email, password: PASSWORD, recoveryCode: code.toUpperCase().replace('-', ' ') });
    expect('user' in first && first.user?.id).toBe(person.user.id);
    expect((await browser.client.auth.me.query())?.user.id).toBe(person.user.id);
    expect(await person.client.auth.twoFactor.status.query()).toEqual({ enabled: true, recoveryCodesLeft: 9 });
    const outbox = await sql<{ subject: string; body: string }>(app, `select subject, body from email_outbox where recipient = ? and subject like 'A recovery code%'`, [person.email]);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.body).toContain('9 of your recovery codes are left');

    // Used once: the second time it is refused, and no session is made.
    const before = await sessionCount(person.user.id);
    const again = await signIn({ email: person.email, password: PASSWORD, recoveryCode: code });
    expect(again.ok ? 'ok' : again.code).toBe('UNAUTHORIZED');
    expect(await sessionCount(person.user.id)).toBe(before);
    // A right code with a wrong password does nothing either (and does not spend the code).
    const wrongPassword = await signIn({ email: person.email, password: 'not the password', recoveryCode: recoveryCodes[4]! });
    expect(wrongPassword.ok ? 'ok' : wrongPassword.code).toBe('UNAUTHORIZED');
    expect(await person.client.auth.twoFactor.status.query()).toEqual({ enabled: true, recoveryCodesLeft: 9 });
    expect(await auditActions(person.user.id)).toEqual(['account.created', 'two_factor.enabled', 'two_factor.recovery_code_used']);
  });

  it('one code raced by five sign-ins: exactly one gets a session', async () => {
    const { person, recoveryCodes } = await withTwoFactor('Remy Race');
    const before = await sessionCount(person.user.id);
    const raced = await Promise.all([0, 1, 2, 3, 4].map(() => signIn({ email: person.email, password: PASSWORD, recoveryCode: recoveryCodes[0]! })));
    expect(raced.filter((r) => r.ok)).toHaveLength(1);
    expect(raced.filter((r) => !r.ok).map((r) => (r.ok ? 'ok' : r.code))).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED']);
    expect(await sessionCount(person.user.id)).toBe(before + 1);
  });

  it('regenerating (with a current code) replaces them: the old ones stop working, the new ones work', async () => {
    const { person, secret, recoveryCodes: old } = await withTwoFactor('Gene Regen');
    const wrong = await call(app.url, 'mutation', 'auth.twoFactor.regenerateRecoveryCodes', { code: codeFor(secret, 10) }, { cookie: person.cookieHeader() });
    expect(wrong.ok ? 'ok' : wrong.code).toBe('BAD_REQUEST');
    const { recoveryCodes: fresh } = await person.client.auth.twoFactor.regenerateRecoveryCodes.mutate({ code: codeFor(secret) });
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => old.includes(c))).toEqual([]);
    const withOld = await signIn({ email: person.email, password: PASSWORD, recoveryCode: old[0]! });
    expect(withOld.ok ? 'ok' : withOld.code).toBe('UNAUTHORIZED');
    const withNew = await signIn({ email: person.email, password: PASSWORD, recoveryCode: fresh[0]! });
    expect(withNew.ok).toBe(true);
    expect(await auditActions(person.user.id)).toContain('two_factor.recovery_codes_regenerated');
  });

  it('turning two-factor off (here with a recovery code: the device is lost) deletes the codes', async () => {
    const { person, recoveryCodes } = await withTwoFactor('Lou Lost');
    const disabled = await person.client.auth.twoFactor.disable.mutate({ code: recoveryCodes[9]! });
    expect(disabled.user.twoFactorEnabled).toBe(false);
    expect(await sql(app, 'select 1 from recovery_code where user_id = ?', [person.user.id])).toHaveLength(0);
    const [row] = await sql<{ totp_secret: string | null }>(app, 'select totp_secret from app_user where id = ?', [person.user.id]);
    expect(row!.totp_secret).toBeNull();
    // The password alone signs in again; the remaining codes mean nothing any more.
    const plain = await signIn({ email: person.email, password: PASSWORD });
    expect(plain.ok && 'user' in (plain.data as object)).toBe(true);
    expect(await auditActions(person.user.id)).toEqual(['account.created', 'two_factor.enabled', 'two_factor.disabled']);
  });
});

describe('turning two-factor on', () => {
  it("ends the user's other sessions and closes their WebSockets; the session that turned it on stays", async () => {
    const person = await signUp(app.url, 'Otto Others');
    const { organization } = await person.client.organization.create.mutate({ name: 'Others Co' });
    const laptop = browserClient(app.url);
    await laptop.client.auth.signIn.mutate({ email: person.email, password: PASSWORD });
    const live = liveConnection(app.url, { cookie: laptop.cookieHeader() });
    connections.push(live);
    const sub = live.subscribe(organization.id);
    await sub.event('presence');
    expect(await sessionCount(person.user.id)).toBe(2);

    const { secret } = await person.client.auth.twoFactor.setup.mutate();
    const enabled = await person.client.auth.twoFactor.enable.mutate({ code: codeFor(secret, -1) });
    expect(enabled.user.twoFactorEnabled).toBe(true);

    await sub.until('the other session’s socket to close', () => live.closes.find((c) => c.code === 4001));
    expect(await laptop.client.auth.me.query()).toBeNull();
    expect((await person.client.auth.me.query())?.user.id).toBe(person.user.id);
    expect(await sessionCount(person.user.id)).toBe(1);
    const [audit] = await sql<{ details: { otherSessionsEnded: number }; actor_id: string }>(
      app,
      `select details, actor_id from account_audit_log where user_id = ? and action = 'two_factor.enabled'`,
      [person.user.id],
    );
    expect(audit).toEqual({ details: { otherSessionsEnded: 1 }, actor_id: person.user.id });
  });

  it('a wrong code changes nothing: no codes, no sessions ended, no audit entry', async () => {
    const person = await signUp(app.url, 'Wanda Wrong');
    const other = browserClient(app.url);
    await other.client.auth.signIn.mutate({ email: person.email, password: PASSWORD });
    const { secret } = await person.client.auth.twoFactor.setup.mutate();
    const wrong = await call(app.url, 'mutation', 'auth.twoFactor.enable', { code: codeFor(secret, 10) }, { cookie: person.cookieHeader() });
    expect(wrong.ok ? 'ok' : wrong.code).toBe('BAD_REQUEST');
    expect(await sessionCount(person.user.id)).toBe(2);
    expect(await sql(app, 'select 1 from recovery_code where user_id = ?', [person.user.id])).toHaveLength(0);
    expect(await auditActions(person.user.id)).toEqual(['account.created']);
    expect((await other.client.auth.me.query())?.user.id).toBe(person.user.id);
  });
});
