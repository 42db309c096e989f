/**
 * Who may listen to live.organization, and that access ends at once: removal from the
 * organization, sign-out, token revocation; outsiders, anonymous callers and cross-origin
 * upgrades are refused. Real WebSockets against the real server and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { poolQuery } from '../../server/modules/live/sql.js';
import { organizationStream } from '../../server/modules/live/stream.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { addMember, errorCode, liveConnection, sleep, type LiveConnection, type LiveSubscription } from '../helpers/live.js';

let app: TestApp;
let owner: Awaited<ReturnType<typeof signUp>>;
let orgId: string;
let ownerLive: LiveConnection;
let control: LiveSubscription;
const connections: LiveConnection[] = [];

function connect(auth: { cookie?: string; token?: string }) {
  const c = liveConnection(app.url, auth);
  connections.push(c);
  return c;
}

/**
 * Makes a change and proves `cutOff` did not get it: the owner's own stream (the control) got it,
 * and `cutOff` still had nothing new a while later.
 */
async function expectNothingMoreFor(cutOff: LiveSubscription, name: string) {
  const countBefore = cutOff.received.length;
  const project = await owner.client.project.create.mutate({ orgId, name });
  await control.event('project.created', (e) => e.projectId === project.id);
  await sleep(250);
  expect(cutOff.received.slice(countBefore)).toEqual([]);
  expect(cutOff.received.some((r) => r.event.type === 'project.created' && r.event.projectId === project.id)).toBe(false);
}

beforeAll(async () => {
  // Sockets' sessions are checked for expiry every 300 ms here (10 minutes by default).
  app = await startTestApp({ env: { SOCKET_SESSION_CHECK_MS: '300' } });
  owner = await signUp(app.url, 'Olivia Owner');
  ({ organization: { id: orgId } } = await owner.client.organization.create.mutate({ name: 'Access Co' }));
  ownerLive = connect({ cookie: owner.cookieHeader() });
  control = ownerLive.subscribe(orgId);
  await control.event('presence');
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await app?.close();
});

describe('live.organization access', () => {
  it('a removed member gets its own member.removed, then the stream ends', async () => {
    const member = await addMember(app.url, owner, orgId, 'Removed Rita');
    const live = connect({ cookie: member.cookieHeader() });
    const sub = live.subscribe(orgId);
    await sub.event('presence');
    const listenersBefore = app.services.bus.listenerCount();

    await owner.client.team.removeMember.mutate({ orgId, userId: member.user.id });

    const removed = await sub.event('member.removed', (e) => e.userId === member.user.id);
    expect(removed.event).toMatchObject({ reason: 'removed', actorId: owner.user.id });
    await sub.complete();
    expect(sub.received.at(-1)).toBe(removed);
    expect(app.services.bus.listenerCount()).toBe(listenersBefore - 1);
    await expectNothingMoreFor(sub, 'After removal');

    // The socket itself stays (the user is still signed in), but the organization is gone for them.
    expect(live.closes).toEqual([]);
    const again = live.subscribe(orgId);
    expect(errorCode(await again.error())).toBe('NOT_FOUND');
  });

  it('a signed-out session receives nothing more: its socket is closed', async () => {
    const member = await addMember(app.url, owner, orgId, 'Signing-out Sam');
    const live = connect({ cookie: member.cookieHeader() });
    const sub = live.subscribe(orgId);
    await sub.event('presence');

    await member.client.auth.signOut.mutate();

    await sub.until('the socket to close', () => live.closes.find((c) => c.code === 4001));
    // wsLink reconnects and resubscribes with the old cookie, which no longer authenticates.
    expect(errorCode(await sub.error())).toBe('UNAUTHORIZED');
    await expectNothingMoreFor(sub, 'After sign-out');
  });

  it('a session that runs out from inactivity has its socket closed', async () => {
    const member = await addMember(app.url, owner, orgId, 'Idle Ida');
    const live = connect({ cookie: member.cookieHeader() });
    const sub = live.subscribe(orgId);
    await sub.event('presence');
    // Eleven days without activity, as far as the database knows (the limit is ten).
    await app.orm.em.fork().execute(`update session set last_verified_at = now() - interval '11 days' where user_id = ?`, [member.user.id]);
    await sub.until('the socket to close', () => live.closes.find((c) => c.code === 4001 && c.reason === 'session expired'));
    // wsLink reconnects with the same cookie, which no longer authenticates.
    expect(errorCode(await sub.error())).toBe('UNAUTHORIZED');
    await expectNothingMoreFor(sub, 'After expiry');
  });

  it('a revoked personal API token receives nothing more (token in connectionParams)', async () => {
    const member = await addMember(app.url, owner, orgId, 'Token Tara');
    const { id: tokenId, token } = await member.client.auth.tokens.create.mutate({ name: 'dashboard bot' });
    const live = connect({ token });
    const sub = live.subscribe(orgId);
    await sub.event('presence');
    const project = await owner.client.project.create.mutate({ orgId, name: 'Seen by token' });
    await sub.event('project.created', (e) => e.projectId === project.id);

    await member.client.auth.tokens.revoke.mutate({ id: tokenId });

    await sub.until('the socket to close', () => live.closes.find((c) => c.code === 4001));
    expect(errorCode(await sub.error())).toBe('UNAUTHORIZED');
    await expectNothingMoreFor(sub, 'After revocation');
  });

  it('a removal or sign-out that lands between the permission check and attaching to the bus still ends access', async () => {
    // The procedure checked membership; the removal commits before the stream attaches to the bus,
    // so no member.removed will ever reach it. The stream re-checks once attached.
    const member = await addMember(app.url, owner, orgId, 'Racing Ray');
    await owner.client.team.removeMember.mutate({ orgId, userId: member.user.id });
    const base = { query: poolQuery(app.orm), bus: app.services.bus, orgId, lastEventId: null, signal: undefined, onEnd: () => {} };
    const listeners = app.services.bus.listenerCount();
    const removed = organizationStream({ ...base, userId: member.user.id, credentialKey: null });
    await expect(removed.next()).rejects.toMatchObject({ kind: 'not_found' });

    const signedOut = organizationStream({ ...base, userId: owner.user.id, credentialKey: 'no-such-session' });
    await expect(signedOut.next()).rejects.toMatchObject({ kind: 'not_found' });
    const revoked = organizationStream({ ...base, userId: owner.user.id, credentialKey: 'token:no-such-token' });
    await expect(revoked.next()).rejects.toMatchObject({ kind: 'not_found' });
    expect(app.services.bus.listenerCount()).toBe(listeners);
  });

  it('an outsider gets NOT_FOUND, for a real organization and for a made-up id alike', async () => {
    const outsider = await signUp(app.url, 'Outsider Otto');
    const live = connect({ cookie: outsider.cookieHeader() });
    const real = live.subscribe(orgId);
    const madeUp = live.subscribe('00000000-0000-4000-8000-000000000000');
    expect(errorCode(await real.error())).toBe('NOT_FOUND');
    expect(errorCode(await madeUp.error())).toBe('NOT_FOUND');
    expect(real.received).toEqual([]);
    await expect(live.client.presence.update.mutate({ orgId, page: 'projects' })).rejects.toMatchObject({ data: { code: 'NOT_FOUND' } });
  });

  it('an unauthenticated socket gets UNAUTHORIZED, as does a bad token', async () => {
    const anonymous = connect({}).subscribe(orgId);
    expect(errorCode(await anonymous.error())).toBe('UNAUTHORIZED');
    const badToken = connect({ token: 'lgp_nope.nope' }).subscribe(orgId);
    expect(errorCode(await badToken.error())).toBe('UNAUTHORIZED');
    expect(anonymous.received).toEqual([]);
  });

  it('refuses a cross-origin WebSocket upgrade even with a valid session cookie', async () => {
    const wsUrl = app.url.replace(/^http/, 'ws') + '/trpc';
    const attempt = (headers: Record<string, string>) =>
      new Promise<{ opened: boolean; status?: number }>((resolve) => {
        const socket = new WebSocket(wsUrl, { headers: { cookie: owner.cookieHeader(), ...headers } });
        socket.on('open', () => {
          socket.close();
          resolve({ opened: true });
        });
        socket.on('unexpected-response', (_req, res) => {
          resolve({ opened: false, status: res.statusCode });
          socket.terminate();
        });
        socket.on('error', () => {});
      });
    expect(await attempt({ origin: 'https://evil.example' })).toEqual({ opened: false, status: 403 });
    expect(await attempt({ origin: app.url, 'sec-fetch-site': 'cross-site' })).toEqual({ opened: false, status: 403 });
    // The same cookie from our own origin is welcome.
    expect(await attempt({ origin: app.url })).toEqual({ opened: true });
  });
});
