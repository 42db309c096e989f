/**
 * Two server processes on one PostgreSQL database: instance A runs in this test process,
 * instance B is a real child process (tests/helpers/instance-main.ts). Events, presence, session
 * ends and organization deletion cross between them through LISTEN/NOTIFY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_APPLICATION_NAME } from '../../server/events/bus.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browserClient, signUp, type BrowserLike } from '../helpers/client.js';
import { startChildInstance, type ChildInstance } from '../helpers/instance.js';
import { addMember, errorCode, eventually, liveConnection, sleep, type LiveConnection } from '../helpers/live.js';

let a: TestApp;
let b: ChildInstance;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let orgId: string;
const connections: LiveConnection[] = [];

function connect(url: string, who: { cookieHeader(): string }) {
  const c = liveConnection(url, { cookie: who.cookieHeader() });
  connections.push(c);
  return c;
}

/** The same signed-in user, talking to another instance over HTTP. */
function sameUserOn(url: string, who: BrowserLike): BrowserLike {
  const other = browserClient(url);
  for (const [k, v] of who.cookies) other.cookies.set(k, v);
  return other;
}

beforeAll(async () => {
  a = await startTestApp();
  // Start B while A sets up the organization; B spends most of its start-up compiling TypeScript.
  const starting = startChildInstance(a.databaseUrl);
  starting.catch(() => {}); // reported by the await below, not as an unhandled rejection meanwhile
  owner = await signUp(a.url, 'Olivia Owner');
  ({ organization: { id: orgId } } = await owner.client.organization.create.mutate({ name: 'Two Instances' }));
  member = await addMember(a.url, owner, orgId, 'Mo Member');
  b = await starting;
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await b?.stop();
  await a?.close();
});

describe('live across two server processes', () => {
  it('runs B as a separate process', () => {
    expect(b.pid).not.toBe(process.pid);
    expect(b.url).not.toBe(a.url);
  });

  it('delivers a change made on B to a subscriber on A, and the other way round', async () => {
    const onA = connect(a.url, member).subscribe(orgId);
    const onB = connect(b.url, owner).subscribe(orgId);
    await Promise.all([onA.event('presence'), onB.event('presence')]);

    const ownerOnB = sameUserOn(b.url, owner);
    // A name that must survive JSON inside SQL inside NOTIFY unchanged.
    const tricky = `Made on B: "quoted" \\ back\\slash ? 'single' Ümlaut 東京 💡`;
    const fromB = await ownerOnB.client.project.create.mutate({ orgId, name: tricky });
    const gotOnA = await onA.event('project.created', (e) => e.projectId === fromB.id);
    expect(gotOnA.id).toMatch(/^\d+$/);
    expect(gotOnA.event).toMatchObject({ name: tricky, actorId: owner.user.id, orgId });

    const fromA = await owner.client.project.create.mutate({ orgId, name: 'Made on A' });
    const gotOnB = await onB.event('project.created', (e) => e.projectId === fromA.id);

    // Both subscribers saw the same ids for the same events.
    const onBFromB = await onB.event('project.created', (e) => e.projectId === fromB.id);
    const onAFromA = await onA.event('project.created', (e) => e.projectId === fromA.id);
    expect(onBFromB.id).toBe(gotOnA.id);
    expect(onAFromA.id).toBe(gotOnB.id);
    expect(BigInt(gotOnB.id!)).toBeGreaterThan(BigInt(gotOnA.id!));

    // A subscriber that resumes on B from an id it got on A gets exactly what came after.
    const resumed = connect(b.url, member).subscribe(orgId, gotOnA.id);
    const replayed = await resumed.event('project.created', (e) => e.projectId === fromA.id);
    expect(resumed.tracked()).toEqual([replayed]);
    expect(replayed.id).toBe(gotOnB.id);
    onA.unsubscribe();
    onB.unsubscribe();
    resumed.unsubscribe();
  });

  it('carries an event too large for a NOTIFY payload by reference', async () => {
    const onB = connect(b.url, member).subscribe(orgId);
    await onB.event('presence');
    // PostgreSQL caps NOTIFY payloads at 8000 bytes: 9000 ASCII characters, and 3000 characters
    // of three bytes each (short as a JavaScript string, long on the wire).
    const cases = [
      { projectId: '11111111-1111-4111-8111-111111111111', name: 'L'.repeat(9_000) },
      { projectId: '11111111-1111-4111-8111-111111111112', name: '東'.repeat(3_000) },
    ];
    for (const { projectId, name } of cases) {
      await runCommand(a.services, owner.user.id, async (work) => work.emit(orgId, { type: 'project.created', projectId, name }));
      const got = await onB.event('project.created', (e) => e.projectId === projectId);
      expect(got.event.type === 'project.created' && got.event.name).toBe(name);
      expect(got.id).toMatch(/^\d+$/);
    }
    onB.unsubscribe();
  });

  it('shows a viewer on B to a watcher on A, and drops them when their socket on B closes', async () => {
    const watcher = connect(a.url, owner).subscribe(orgId);
    await watcher.event('presence');
    const viewerConn = connect(b.url, member);
    const viewer = viewerConn.subscribe(orgId);
    await viewer.event('presence');
    await viewerConn.client.presence.update.mutate({ orgId, page: 'usage' });

    const shown = await watcher.presence((vs) => vs.some((v) => v.userId === member.user.id && v.page === 'usage'));
    expect(shown.event.type === 'presence' && shown.event.viewers).toEqual([{ userId: member.user.id, name: 'Mo Member', page: 'usage' }]);

    const index = watcher.received.length;
    await viewerConn.close();
    await watcher.presence((vs) => !vs.some((v) => v.userId === member.user.id), 5_000, index);
    watcher.unsubscribe();
  });

  it('closes the socket on B when the session signs out on A', async () => {
    const second = await signUp(a.url, 'Second Session');
    const liveOnB = connect(b.url, second);
    const sub = liveOnB.subscribe((await second.client.organization.create.mutate({ name: 'Solo' })).organization.id);
    await sub.event('presence');
    await second.client.auth.signOut.mutate();
    await sub.until('the socket on B to close', () => liveOnB.closes.find((c) => c.code === 4001));
    expect(errorCode(await sub.error())).toBe('UNAUTHORIZED');
  });

  it("catches up on events committed while A's LISTEN connection was down", async () => {
    const sub = connect(a.url, member).subscribe(orgId);
    await sub.event('presence');
    const presenceBefore = sub.received.filter((r) => r.event.type === 'presence').length;

    // Cut every instance's LISTEN connection, then commit on B while A is reconnecting.
    const em = a.orm.em.fork();
    const listeners = await em.execute<{ pid: number }[]>('select pid from pg_stat_activity where application_name = ? and datname = current_database()', [
      BUS_APPLICATION_NAME,
    ]);
    const killed = [];
    for (const { pid } of listeners) killed.push(await em.execute('select pg_terminate_backend(?)', [pid]));
    expect(killed.length).toBe(2);
    const ownerOnB = sameUserOn(b.url, owner);
    const during = await ownerOnB.client.project.create.mutate({ orgId, name: 'During the outage' });

    const got = await sub.event('project.created', (e) => e.projectId === during.id, 8_000);
    expect(a.services.bus.isListening()).toBe(true);
    // It came from the catch-up (read back from the table), once, followed by fresh presence.
    expect(sub.tracked().filter((r) => r.id === got.id)).toHaveLength(1);
    await sub.until('presence re-sent', () => sub.received.filter((r) => r.event.type === 'presence').length > presenceBefore);
    // And live delivery works again afterwards.
    const after = await ownerOnB.client.project.create.mutate({ orgId, name: 'After the outage' });
    await sub.event('project.created', (e) => e.projectId === after.id);
    sub.unsubscribe();
  });

  it('ends the streams on both instances when the organization is deleted', async () => {
    // Earlier tests' unsubscribes reach the server asynchronously.
    await eventually(() => a.services.bus.listenerCount() === 0);
    const onA = connect(a.url, member).subscribe(orgId);
    const onB = connect(b.url, member).subscribe(orgId);
    const ownerOnB = connect(b.url, owner).subscribe(orgId);
    await Promise.all([onA.event('presence'), onB.event('presence'), ownerOnB.event('presence')]);
    expect(a.services.bus.listenerCount()).toBe(1);

    await owner.client.organization.delete.mutate({ orgId, confirmName: 'Two Instances' });

    for (const sub of [onA, onB, ownerOnB]) {
      await sub.event('organization.deleted');
      await sub.complete();
      expect(sub.received.at(-1)?.event.type).toBe('organization.deleted');
    }
    expect(a.services.bus.listenerCount()).toBe(0);
    // Nothing is left to subscribe to, on either instance.
    await sleep(50);
    expect(errorCode(await connect(b.url, owner).subscribe(orgId).error())).toBe('NOT_FOUND');
    expect(errorCode(await connect(a.url, member).subscribe(orgId).error())).toBe('NOT_FOUND');
  });
});
