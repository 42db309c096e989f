/**
 * live.organization over a real WebSocket against the real server and PostgreSQL: delivery,
 * replay from lastEventId (explicit and through the client's automatic reconnect), presence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runCommand, runSqlCommand, type SqlWork } from '../../server/events/unit-of-work.js';
import type { BusEvent } from '../../server/events/bus.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { addMember, liveConnection, sleep, type LiveConnection } from '../helpers/live.js';

let app: TestApp;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let orgId: string;
let sqlPool: pg.Pool;
const connections: LiveConnection[] = [];

function connect(who: { cookieHeader(): string }) {
  const c = liveConnection(app.url, { cookie: who.cookieHeader() });
  connections.push(c);
  return c;
}

async function storedEventIds(): Promise<string[]> {
  const rows = await app.orm.em.fork().execute<{ id: string }[]>('select id from org_event where org_id = ? order by id', [orgId]);
  return rows.map((r) => String(r.id));
}

beforeAll(async () => {
  app = await startTestApp();
  sqlPool = new pg.Pool({ connectionString: app.databaseUrl, max: 1 });
  owner = await signUp(app.url, 'Olivia Owner');
  ({ organization: { id: orgId } } = await owner.client.organization.create.mutate({ name: 'Live Co' }));
  member = await addMember(app.url, owner, orgId, 'Dev Member');
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await sqlPool?.end();
  await app?.close();
});

describe('live.organization', () => {
  it("delivers another member's change as a tracked event", async () => {
    const live = connect(member);
    const sub = live.subscribe(orgId);
    // The stream is attached to the bus before it yields its first (presence) event.
    await sub.event('presence');

    const project = await owner.client.project.create.mutate({ orgId, name: 'Search' });
    const got = await sub.event('project.created', (e) => e.projectId === project.id);

    expect(got.id).toMatch(/^\d+$/);
    expect(got.event).toMatchObject({ type: 'project.created', projectId: project.id, name: 'Search', orgId, actorId: owner.user.id });
    expect(new Date(got.event.at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    // The id is the stored event's id, so a client can resume from it.
    expect(await storedEventIds()).toContain(got.id);
    sub.unsubscribe();
  });

  it('replays exactly the missed events, in order, when resubscribing with lastEventId', async () => {
    const first = connect(member);
    const before = first.subscribe(orgId);
    await before.event('presence');
    const seen = await owner.client.project.create.mutate({ orgId, name: 'Seen' });
    const lastSeen = await before.event('project.created', (e) => e.projectId === seen.id);
    await first.close();

    // Produced while the member is away.
    const missedProjects: { id: string }[] = [];
    for (const name of ['Missed 1', 'Missed 2', 'Missed 3']) missedProjects.push(await owner.client.project.create.mutate({ orgId, name }));
    await owner.client.project.update.mutate({ projectId: missedProjects[0]!.id, name: 'Missed 1 renamed' });

    const second = connect(member);
    const after = second.subscribe(orgId, lastSeen.id);
    await after.event('project.updated', (e) => e.projectId === missedProjects[0]!.id);
    // And live events keep flowing after the replay.
    const live = await owner.client.project.create.mutate({ orgId, name: 'After replay' });
    await after.event('project.created', (e) => e.projectId === live.id);

    const replayed = after.tracked();
    const expected = (await storedEventIds()).filter((id) => BigInt(id) > BigInt(lastSeen.id!));
    expect(replayed.map((r) => r.id)).toEqual(expected);
    expect(replayed.map((r) => [r.event.type, 'name' in r.event ? r.event.name : null])).toEqual([
      ['project.created', 'Missed 1'],
      ['project.created', 'Missed 2'],
      ['project.created', 'Missed 3'],
      ['project.updated', 'Missed 1 renamed'],
      ['project.created', 'After replay'],
    ]);
    after.unsubscribe();
  });

  it('resumes without gaps or duplicates when the server drops the socket (wsLink reconnects with lastEventId)', async () => {
    const live = connect(member);
    const sub = live.subscribe(orgId);
    await sub.event('presence');
    const start = await owner.client.project.create.mutate({ orgId, name: 'Before drop' });
    const startEvent = await sub.event('project.created', (e) => e.projectId === start.id);
    const opensBefore = live.opens();

    // Drop every socket on the server side, then keep producing while the client reconnects.
    for (const socket of app.app.websocketServer.clients) socket.terminate();
    for (let i = 0; i < 6; i++) {
      await owner.client.project.update.mutate({ projectId: start.id, name: `Rename ${i}` });
      await sleep(40);
    }
    await sub.until('the last rename', () => sub.received.find((r) => r.event.type === 'project.updated' && r.event.name === 'Rename 5'), 8_000);

    expect(live.opens()).toBeGreaterThan(opensBefore);
    expect(sub.errors).toEqual([]);
    const ids = sub.tracked().map((r) => r.id!);
    expect(new Set(ids).size).toBe(ids.length);
    const expected = (await storedEventIds()).filter((id) => BigInt(id) >= BigInt(startEvent.id!));
    expect(ids).toEqual(expected);
    sub.unsubscribe();
  });

  it("publishes a command's stored and ephemeral events in the order emitted, the stored one with its id (ORM and plain-SQL units of work)", async () => {
    const projectId = '33333333-3333-4333-8333-333333333333';
    const seen: BusEvent[] = [];
    const stop = app.services.bus.subscribeOrg(orgId, { deliver: (e) => seen.push(e), resync: () => {} });
    try {
      const emitThree = (work: SqlWork, tag: string) => {
        work.emit(orgId, { type: 'usage', requests: 1, cost: '0.01' }, { store: false });
        work.emit(orgId, { type: 'project.updated', projectId, name: `Ordered ${tag}` });
        work.emit(orgId, { type: 'usage', requests: 2, cost: '0.02' }, { store: false });
      };
      await runCommand(app.services, owner.user.id, async (work) => emitThree(work, 'orm'));
      await runSqlCommand(app.services, sqlPool, owner.user.id, async (work) => emitThree(work, 'sql'));
      for (let i = 0; i < 100 && seen.length < 6; i++) await sleep(20);
      expect(seen.map((e) => (e.type === 'usage' ? `usage ${e.requests}` : e.type === 'project.updated' ? e.name : e.type))).toEqual([
        'usage 1', 'Ordered orm', 'usage 2', 'usage 1', 'Ordered sql', 'usage 2',
      ]);
      const stored = await storedEventIds();
      expect(seen[1]!.id).toBe(stored.at(-2));
      expect(seen[4]!.id).toBe(stored.at(-1));
      expect(seen[0]!.id).toBeUndefined();
      expect(seen.every((e) => e.actorId === owner.user.id)).toBe(true);
    } finally {
      stop();
    }
  });

  it('delivers every event exactly once, in id order, while many commands commit at once', async () => {
    const live = connect(member);
    const sub = live.subscribe(orgId);
    await sub.event('presence');
    const from = sub.tracked().length;
    const projectId = '22222222-2222-4222-8222-222222222222';
    // 60 concurrent units of work on one organization, no row lock between them: only the
    // per-organization event lock keeps commit order equal to id order.
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        runCommand(app.services, owner.user.id, async (work) => {
          await work.em.execute('select pg_sleep(?)', [Math.random() * 0.01]);
          work.emit(orgId, { type: 'project.updated', projectId, name: `Concurrent ${i}` });
        }),
      ),
    );
    await sub.until('all 60 events', () => sub.tracked().length - from >= 60 || undefined);
    await sleep(100);
    const ids = sub.tracked().slice(from).map((r) => BigInt(r.id!));
    expect(ids).toHaveLength(60);
    expect([...ids].sort((x, y) => (x < y ? -1 : 1))).toEqual(ids);
    expect(new Set(sub.tracked().slice(from).map((r) => 'name' in r.event && r.event.name)).size).toBe(60);
    sub.unsubscribe();
  });

  it("still tells everyone who is viewing when the list outgrows a NOTIFY payload (8000 bytes)", async () => {
    // 60 other viewers with long names (written directly: the list, not sign-ups, is under test).
    const em = app.orm.em.fork();
    const others = Array.from({ length: 60 }, (_, i) => ({ id: crypto.randomUUID(), name: `Viewer ${String(i).padStart(2, '0')} ${'x'.repeat(90)}` }));
    for (const u of others) {
      await em.execute(`insert into app_user (id, email, name, password_hash, created_at) values (?, ?, ?, 'no-password', now())`, [u.id, `${u.id}@example.com`, u.name]);
      await em.execute(`insert into presence (org_id, connection_id, user_id, page, seen_at) values (?, ?, ?, 'usage', now())`, [orgId, `direct-${u.id}`, u.id]);
    }
    const watcher = connect(owner).subscribe(orgId);
    await watcher.event('presence');
    const viewerConn = connect(member);
    await viewerConn.subscribe(orgId).event('presence');
    await expect(viewerConn.client.presence.update.mutate({ orgId, page: 'billing' })).resolves.toEqual({ ok: true });

    const seen = await watcher.presence((vs) => vs.some((v) => v.userId === member.user.id && v.page === 'billing'));
    expect(seen.event.type === 'presence' && seen.event.viewers).toHaveLength(61);
    expect(JSON.stringify(seen.event).length).toBeGreaterThan(8000);
    await em.execute(`delete from presence where connection_id like 'direct-%'`);
    await viewerConn.close();
    watcher.unsubscribe();
  });

  it('shows who is viewing, and drops a viewer whose socket closes', async () => {
    const watcherConn = connect(owner);
    const watcher = watcherConn.subscribe(orgId);
    await watcher.event('presence');

    const viewerConn = connect(member);
    const viewer = viewerConn.subscribe(orgId);
    await viewer.event('presence');
    await expect(viewerConn.client.presence.update.mutate({ orgId, page: 'projects' })).resolves.toEqual({ ok: true });

    // Wait for this page: a presence event from the previous test's viewer (on another page) may still be in flight.
    const shown = await watcher.presence((vs) => vs.some((v) => v.userId === member.user.id && v.page === 'projects'));
    expect(shown.event.type === 'presence' && shown.event.viewers).toEqual([{ userId: member.user.id, name: 'Dev Member', page: 'projects' }]);
    // A newcomer gets the current viewers as its first event.
    const lateConn = connect(owner);
    const late = lateConn.subscribe(orgId);
    const initial = await late.event('presence');
    expect(initial.event.viewers.map((v) => v.userId)).toEqual([member.user.id]);
    late.unsubscribe();

    const index = watcher.received.length;
    await viewerConn.close();
    const gone = await watcher.presence((vs) => !vs.some((v) => v.userId === member.user.id), 5_000, index);
    expect(gone.event.type === 'presence' && gone.event.viewers).toEqual([]);
    watcher.unsubscribe();
  });
});
