/**
 * The live stream's iterator (server/modules/live/stream.ts) on its own: a real EventBus (never
 * started: events are handed to it with deliverLocal) and a stand-in for the three queries the
 * stream runs (access check, stored events after an id, viewers), answered from memory. The
 * integration tests (tests/integration/live-*.test.ts) run the same stream through tRPC,
 * WebSockets and PostgreSQL; these pin down the edges those cannot reach on purpose: return()
 * while next() waits or while a query runs, events that arrive while nobody asks, a queue that
 * overflows, next() called twice at once.
 */
import { describe, expect, it } from 'vitest';
import { EventBus, type BusEvent } from '../../server/events/bus.js';
import { organizationStream, type StreamParams } from '../../server/modules/live/stream.js';
import type { Query } from '../../server/modules/live/sql.js';

const ORG = '00000000-0000-4000-8000-000000000001';
const ME = '00000000-0000-4000-8000-00000000000a';
const AT = '2026-12-02T00:00:00.000Z';
const silent = { warn: () => {}, error: () => {} };

interface Row { id: string; org_id: string; payload: Record<string, unknown>; actor_id: string | null; created_at: string }

/** The database as the stream sees it; `hold` makes the next query of a kind wait until released. */
class FakeDb {
  rows: Row[] = [];
  member = true;
  credential = true;
  queries: string[] = [];
  failNext: string | null = null;
  private held = new Map<string, () => void>();
  private holds = new Set<string>();

  store(id: number, payload: Record<string, unknown> = { type: 'project.updated', projectId: 'p', name: `n${id}` }): BusEvent {
    this.rows.push({ id: String(id), org_id: ORG, payload, actor_id: null, created_at: AT });
    return { ...payload, id: String(id), orgId: ORG, actorId: null, at: AT } as unknown as BusEvent;
  }

  hold(kind: string) {
    this.holds.add(kind);
  }

  /** Resolves once a held query of `kind` is waiting, then lets it go. */
  async release(kind: string) {
    while (!this.held.has(kind)) await new Promise((r) => setTimeout(r, 1));
    this.holds.delete(kind);
    const go = this.held.get(kind)!;
    this.held.delete(kind);
    go();
  }

  query: Query = async <T,>(sql: string, params: unknown[]): Promise<T> => {
    const kind = sql.includes('from membership') ? 'access' : sql.includes('from org_event') ? 'events' : sql.includes('from presence') ? 'viewers' : 'other';
    this.queries.push(kind);
    if (this.holds.has(kind)) await new Promise<void>((r) => this.held.set(kind, r));
    if (this.failNext === kind) {
      this.failNext = null;
      throw new Error(`${kind} query failed`);
    }
    if (kind === 'access') {
      const newest = this.rows.length ? this.rows[this.rows.length - 1]!.id : null;
      return [{ member: this.member, credential: this.credential, newest }] as T;
    }
    if (kind === 'events') {
      const after = BigInt(params[1] as string);
      return this.rows.filter((r) => BigInt(r.id) > after).slice(0, params[2] as number) as T;
    }
    if (kind === 'viewers') return [{ user_id: ME, name: 'Me', page: '/' }] as T;
    throw new Error(`unexpected query: ${sql}`);
  };
}

function setup(over: Partial<StreamParams> = {}) {
  const db = new FakeDb();
  const bus = new EventBus('postgres://unused.invalid/none', async () => null, silent);
  let ends = 0;
  const params: StreamParams = {
    query: db.query,
    bus,
    orgId: ORG,
    userId: ME,
    credentialKey: 'session-1',
    lastEventId: null,
    signal: undefined,
    onEnd: () => void ends++,
    ...over,
  };
  const make = (extra: Partial<StreamParams> = {}) => organizationStream({ ...params, ...extra });
  return { db, bus, make, ends: () => ends };
}

const live = (n: number, extra: Partial<BusEvent> = {}): BusEvent => ({ type: 'project.updated', projectId: 'p', name: `n${n}`, orgId: ORG, actorId: null, at: AT, id: String(n), ...extra }) as BusEvent;
const typeAndId = (r: IteratorResult<BusEvent>) => (r.done ? 'done' : `${r.value.type}${r.value.id ? `#${r.value.id}` : ''}`);
/** Lets pending promise callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('live organization stream (iterator)', () => {
  it('attaches on the first next(), sends presence first, then live events in order without duplicates', async () => {
    const { bus, make, ends } = setup();
    const stream = make();
    expect(bus.listenerCount()).toBe(0);
    const first = stream.next();
    expect(bus.listenerCount()).toBe(1);
    // Delivered while the access check runs and nobody has asked for them yet: kept, in order.
    bus.deliverLocal(live(1));
    bus.deliverLocal(live(2));
    bus.deliverLocal(live(1)); // a duplicate (lower or equal id) is skipped
    bus.deliverLocal({ type: 'presence', orgId: ORG, actorId: null, at: AT, viewers: [] });
    expect(typeAndId(await first)).toBe('presence');
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(typeAndId(await stream.next()));
    expect(got).toEqual(['project.updated#1', 'project.updated#2', 'presence']);
    // Delivered while next() waits: that next() gets it.
    const waiting = stream.next();
    await settle();
    bus.deliverLocal(live(3));
    expect(typeAndId(await waiting)).toBe('project.updated#3');
    expect(ends()).toBe(0);
    await stream.return();
    expect(ends()).toBe(1);
  });

  it('return() while next() waits: that next() gets done, everything is detached, onEnd runs once', async () => {
    const { bus, make, ends } = setup();
    const stream = make();
    await stream.next(); // presence
    const waiting = stream.next();
    await settle();
    expect(bus.listenerCount()).toBe(1);
    await expect(stream.return()).resolves.toEqual({ done: true, value: undefined });
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    expect(bus.listenerCount()).toBe(0);
    bus.deliverLocal(live(9));
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    await stream.return();
    expect(ends()).toBe(1);
  });

  it('return() while a query runs: done at once, and the late answer changes nothing', async () => {
    const { db, bus, make, ends } = setup();
    db.hold('access');
    const stream = make();
    const first = stream.next();
    await stream.return();
    await expect(first).resolves.toEqual({ done: true, value: undefined });
    expect(bus.listenerCount()).toBe(0);
    expect(ends()).toBe(1);
    await db.release('access');
    await settle();
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expect(db.queries).toEqual(['access']);
    expect(ends()).toBe(1);
  });

  it('return() before the first next() attaches nothing and calls no onEnd (as a generator that never started)', async () => {
    const { bus, make, ends } = setup();
    const stream = make();
    await stream.return();
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expect(bus.listenerCount()).toBe(0);
    expect(ends()).toBe(0);
  });

  it('a subscriber that falls more than 1,000 events behind drops its queue and catches up from the table', async () => {
    const { db, bus, make, ends } = setup();
    const stream = make();
    expect(typeAndId(await stream.next())).toBe('presence');
    // 1,001 events commit and arrive while the consumer reads nothing.
    for (let i = 1; i <= 1_001; i++) bus.deliverLocal(db.store(i));
    const ids: string[] = [];
    const types: string[] = [];
    for (;;) {
      const r = await stream.next();
      if (r.done) throw new Error('ended');
      types.push(r.value.type);
      if (r.value.type === 'presence') break;
      ids.push(r.value.id!);
    }
    // Every stored event once, in id order (three replay batches: 500, 500, 1), then presence again.
    expect(ids).toEqual(Array.from({ length: 1_001 }, (_, i) => String(i + 1)));
    expect(db.queries).toEqual(['access', 'viewers', 'access', 'events', 'events', 'events', 'viewers']);
    // What was still queued (id 1,001) is not sent twice; the stream goes on live.
    const waiting = stream.next();
    await settle();
    bus.deliverLocal(db.store(1_002));
    expect(typeAndId(await waiting)).toBe('project.updated#1002');
    await stream.return();
    expect(ends()).toBe(1);
  });

  it('replays after lastEventId, then resyncs from the last one sent when the bus says events were missed', async () => {
    const { db, bus, make } = setup();
    for (let i = 1; i <= 4; i++) db.store(i);
    const stream = make({ lastEventId: '2' });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(typeAndId(await stream.next()));
    expect(got).toEqual(['project.updated#3', 'project.updated#4', 'presence']);
    db.store(5); // committed while the LISTEN connection was down: never delivered
    db.store(6);
    const waiting = stream.next();
    await settle();
    (bus as unknown as { resyncAll(): void }).resyncAll();
    expect(typeAndId(await waiting)).toBe('project.updated#5');
    expect(typeAndId(await stream.next())).toBe('project.updated#6');
    expect(typeAndId(await stream.next())).toBe('presence');
    await stream.return();
  });

  it("ends after sending the subscriber's own member.removed, and on organization.deleted", async () => {
    const { bus, make, ends } = setup();
    const stream = make();
    await stream.next();
    bus.deliverLocal(live(1, { type: 'member.removed', userId: 'someone-else', reason: 'removed' } as never));
    bus.deliverLocal(live(2, { type: 'member.removed', userId: ME, reason: 'removed' } as never));
    bus.deliverLocal(live(3));
    expect(typeAndId(await stream.next())).toBe('member.removed#1');
    expect(typeAndId(await stream.next())).toBe('member.removed#2');
    expect(bus.listenerCount()).toBe(0);
    expect(ends()).toBe(1);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });

    const other = make();
    await other.next();
    bus.deliverLocal(live(4, { type: 'organization.deleted' } as never));
    expect(typeAndId(await other.next())).toBe('organization.deleted#4');
    await expect(other.next()).resolves.toEqual({ done: true, value: undefined });
    expect(ends()).toBe(2);
  });

  it("an old removal in the replay is history; one after the access check ends the stream", async () => {
    const { db, make } = setup();
    db.store(1, { type: 'member.removed', userId: ME, reason: 'removed' });
    db.store(2);
    const stream = make({ lastEventId: '0' });
    expect(typeAndId(await stream.next())).toBe('member.removed#1');
    expect(typeAndId(await stream.next())).toBe('project.updated#2');
    expect(typeAndId(await stream.next())).toBe('presence');
    await stream.return();
  });

  it('the abort signal and the end of the credential end a waiting stream', async () => {
    const { bus, make, ends } = setup();
    const controller = new AbortController();
    const aborted = make({ signal: controller.signal });
    await aborted.next();
    const waiting = aborted.next();
    await settle();
    controller.abort();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    expect(ends()).toBe(1);

    const signedOut = make();
    await signedOut.next();
    const waiting2 = signedOut.next();
    await settle();
    await bus.endSession('session-1', async () => {});
    await expect(waiting2).resolves.toEqual({ done: true, value: undefined });
    expect(ends()).toBe(2);
    expect(bus.listenerCount()).toBe(0);

    // Already aborted when it starts: done at once (attached and detached, onEnd once).
    const late = make({ signal: AbortSignal.abort() });
    await expect(late.next()).resolves.toEqual({ done: true, value: undefined });
    expect(ends()).toBe(3);
  });

  it('the end of the credential during a query ends the stream without waiting for the query', async () => {
    const { db, bus, make, ends } = setup();
    const stream = make();
    await stream.next();
    db.store(1);
    db.hold('access');
    const waiting = stream.next();
    (bus as unknown as { resyncAll(): void }).resyncAll(); // starts a catch-up: access check held
    await settle();
    await bus.endSession('session-1', async () => {});
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    expect(ends()).toBe(1);
    await db.release('access');
    await settle();
    expect(db.queries).toEqual(['access', 'viewers', 'access']);
  });

  it('refuses a caller who lost access before attaching; a failing query fails next() once, then done', async () => {
    const { db, bus, make, ends } = setup();
    db.member = false;
    await expect(make().next()).rejects.toMatchObject({ kind: 'not_found' });
    expect(bus.listenerCount()).toBe(0);
    expect(ends()).toBe(1);

    db.member = true;
    db.failNext = 'viewers';
    const failing = make();
    await expect(failing.next()).rejects.toThrow('viewers query failed');
    await expect(failing.next()).resolves.toEqual({ done: true, value: undefined });
    expect(bus.listenerCount()).toBe(0);
    expect(ends()).toBe(2);
  });

  it('next() twice at once: answered in order; out() shapes every value', async () => {
    const { bus, make } = setup();
    const stream = make();
    const shaped = organizationStream({ query: new FakeDb().query, bus, orgId: ORG, userId: ME, credentialKey: null, lastEventId: null, signal: undefined, onEnd: () => {} }, (e) => ({ shaped: e.type }));
    expect(await shaped.next()).toEqual({ done: false, value: { shaped: 'presence' } });
    await stream.next();
    const a = stream.next();
    const b = stream.next();
    await settle();
    bus.deliverLocal(live(1));
    bus.deliverLocal(live(2));
    expect([typeAndId(await a), typeAndId(await b)]).toEqual(['project.updated#1', 'project.updated#2']);
    expect(await shaped.next()).toEqual({ done: false, value: { shaped: 'project.updated' } });
    // for await ... break calls return(): the stream detaches.
    bus.deliverLocal(live(3));
    for await (const e of stream) {
      expect(e.id).toBe('3');
      break;
    }
    await shaped.return();
    expect(bus.listenerCount()).toBe(0);
  });
});
