/**
 * The organization's live stream for one subscriber: replay of stored events after `lastEventId`,
 * then live events in id order without duplicates. Ends when the subscriber is removed, the
 * organization is deleted, the session or token ends, or the client goes away.
 *
 * Whenever this instance may have missed events (its LISTEN connection was re-established, or this
 * subscriber fell too far behind), the stream catches up from the stored events instead of
 * silently skipping them, and re-checks that the caller may still listen.
 */
import { DomainError } from '../../errors.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { BusEvent, EventBus, OrgSubscriber } from '../../events/bus.js';
import type { LiveEvent, Viewer } from '../../../shared/events.js';
import { listViewers } from './presence.js';
import type { RowOf } from '../../db/rows.js';
import type { StoredEvent } from './entities.js';
import type { Query } from './sql.js';
import { observeLiveSubscription } from '../../observability/metrics.js';

/** A subscriber this far behind drops its queue and catches up from the stored events. */
const MAX_QUEUE = 1_000;
const REPLAY_BATCH = 500;

export interface StreamParams {
  query: Query;
  bus: EventBus;
  orgId: string;
  userId: string;
  /** Key under which the bus announces the end of this caller's credential (session id, or `token:<id>`). */
  credentialKey: string | null;
  lastEventId: string | null | undefined;
  signal: AbortSignal | undefined;
  onEnd: () => void;
}

type EventRow = RowOf<typeof StoredEvent, 'id' | 'org_id' | 'actor_id' | 'created_at'> & { payload: LiveEvent };

export async function loadStoredEvent(em: EntityManager, id: string): Promise<BusEvent | null> {
  const rows = await em.execute<EventRow[]>('select id, org_id, payload, actor_id, created_at from org_event where id = ?', [id]);
  const r = rows[0];
  return r ? toBusEvent(r) : null;
}

function toBusEvent(r: EventRow): BusEvent {
  return { ...r.payload, id: String(r.id), orgId: r.org_id, actorId: r.actor_id, at: new Date(r.created_at).toISOString() };
}

function storedEventsAfter(query: Query, orgId: string, after: bigint): Promise<EventRow[]> {
  return query<EventRow[]>('select id, org_id, payload, actor_id, created_at from org_event where org_id = ? and id > ? order by id limit ?', [
    orgId,
    after.toString(),
    REPLAY_BATCH,
  ]);
}

/**
 * Whether the caller is still a member with a live credential, and the newest stored event id.
 * One round trip; run after the stream is attached to the bus, so a removal or sign-out that
 * committed before it is seen here and one that commits after it arrives as an event.
 */
async function checkAccess(query: Query, orgId: string, userId: string, credentialKey: string | null): Promise<{ allowed: boolean; newestId: bigint }> {
  const tokenId = credentialKey?.startsWith('token:') ? credentialKey.slice('token:'.length) : null;
  const sessionId = credentialKey && !tokenId ? credentialKey : null;
  const rows = await query<{ member: boolean; credential: boolean; newest: string | null }[]>(
    `select exists(select 1 from membership where org_id = ? and user_id = ?) as member,
            (?::text is null or exists(select 1 from session where id = ?))
              and (?::text is null or exists(select 1 from api_token where id = ?)) as credential,
            (select max(id)::text from org_event where org_id = ?) as newest`,
    [orgId, userId, sessionId, sessionId, tokenId, tokenId, orgId],
  );
  const row = rows[0];
  return { allowed: !!row && row.member && row.credential, newestId: BigInt(row?.newest ?? 0) };
}

/** Whether `event` ends this subscriber's stream. */
function endsStream(event: LiveEvent, userId: string): boolean {
  return (event.type === 'member.removed' && event.userId === userId) || event.type === 'organization.deleted';
}

function presenceEvent(orgId: string, viewers: Viewer[]): LiveEvent {
  return { type: 'presence', orgId, actorId: null, at: new Date().toISOString(), viewers };
}

/**
 * The stream of `p`'s organization. `out` shapes each event as it leaves (the router wraps stored
 * events with their id for tRPC); doing it here rather than in a second iterator saves an
 * iterator, its promises and their hops per subscriber.
 */
export function organizationStream(p: StreamParams): OrganizationStream<BusEvent>;
export function organizationStream<T>(p: StreamParams, out: (event: BusEvent) => T): OrganizationStream<T>;
export function organizationStream<T>(p: StreamParams, out?: (event: BusEvent) => T): OrganizationStream<T> {
  return new OrganizationStream(p, out ?? (identity as (event: BusEvent) => T));
}

const identity = (event: BusEvent): BusEvent => event;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The resolving functions of the promise being made (a shared executor: no closure per next()). */
let madeResolve: ((result: never) => void) | null = null;
let madeReject: ((err: unknown) => void) | null = null;
function capture(resolve: (result: never) => void, reject: (err: unknown) => void) {
  madeResolve = resolve;
  madeReject = reject;
}

const enum Phase {
  /** Not started: nothing attached yet (as an async generator before its first next()). */
  Idle,
  /** Checking access (the first time, or after events may have been missed). */
  Check,
  /** Sending stored events after `replayFrom`, a batch at a time. */
  Replay,
  /** Sending the current viewers. */
  Presence,
  /** Sending live events from the queue. */
  Live,
  Done,
}

/**
 * The stream as a hand-written async iterator rather than an async generator: an idle subscriber
 * holds this object, its queue and one pending promise (the consumer's next()), instead of a
 * generator with its frame, request queue and the promise it waits on (bench/live-fanout: memory
 * per idle subscriber). It is the bus subscriber and the abort listener itself (methods on the
 * prototype, no closures per subscriber). Steps that need the database run one at a time, only
 * while the consumer waits for a value: like the generator, it reads nothing ahead.
 */
export class OrganizationStream<T> implements AsyncIterableIterator<T>, OrgSubscriber {
  private readonly query: Query;
  private readonly bus: EventBus;
  private readonly orgId: string;
  private readonly userId: string;
  private readonly credentialKey: string | null;
  private readonly signal: AbortSignal | undefined;
  private readonly onEnd: () => void;
  private readonly out: (event: BusEvent) => T;
  private phase = Phase.Idle;
  /** Live events not yet sent (bounded by MAX_QUEUE). */
  private queue: BusEvent[] = [];
  /** Asked to stop (abort, the credential ended): nothing more is sent. */
  private ended = false;
  /** Events may have been missed: check access again and catch up from the table. */
  private mustCatchUp = false;
  /** The id of the newest event this subscriber has (been sent, or said it has). */
  private last: bigint | null;
  /** The newest stored event when access was last checked: a removal after it ends the stream. */
  private checkedAt = 0n;
  /** Where a catch-up starts for a subscriber that has not been sent a stored event yet. */
  private floor = 0n;
  private replayFrom: bigint | null = null;
  /** The replay batch being sent, and how far. */
  private rows: EventRow[] | null = null;
  private rowAt = 0;
  /** A presence event read for the Presence phase, waiting to be sent. */
  private viewers: Viewer[] | null = null;
  /** A database step is running. */
  private loading = false;
  /** A failure to hand to the consumer's next() (when none was waiting). */
  private failure: { err: unknown } | null = null;
  /** The consumer's pending next(): at most one. */
  private resolve: ((result: IteratorResult<T>) => void) | null = null;
  private reject: ((err: unknown) => void) | null = null;
  private pending: Promise<IteratorResult<T>> | null = null;

  constructor(p: StreamParams, out: (event: BusEvent) => T) {
    this.query = p.query;
    this.bus = p.bus;
    this.orgId = p.orgId;
    this.userId = p.userId;
    this.credentialKey = p.credentialKey;
    this.signal = p.signal;
    this.onEnd = p.onEnd;
    this.out = out;
    this.last = p.lastEventId && /^\d{1,19}$/.test(p.lastEventId) ? BigInt(p.lastEventId) : null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.pending) {
      // A second next() before the first settled: served after it, in order.
      const after = () => this.next();
      return this.pending.then(after, after);
    }
    if (this.failure) {
      const { err } = this.failure;
      this.failure = null;
      return Promise.reject(err);
    }
    let result: IteratorResult<T> | null;
    try {
      result = this.advance();
    } catch (err) {
      this.finish();
      return Promise.reject(err);
    }
    if (result) return Promise.resolve(result);
    const promise = new Promise<IteratorResult<T>>(capture);
    this.resolve = madeResolve as (result: IteratorResult<T>) => void;
    this.reject = madeReject;
    madeResolve = madeReject = null;
    this.pending = promise;
    return promise;
  }

  /** Ends the stream (tRPC calls it when the client unsubscribes or goes away); a waiting next() gets `done`. */
  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve(DONE);
  }

  throw(err?: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(err);
  }

  /** tRPC disposes of the iterator with this when present (else it wraps return() in a closure of its own). */
  [Symbol.asyncDispose](): Promise<void> {
    this.end();
    return Promise.resolve();
  }

  // ---- the bus subscriber and the abort listener

  deliver(event: BusEvent): void {
    if (this.phase === Phase.Done) return;
    if (this.queue.length >= MAX_QUEUE) {
      // Far behind: stored events are read back from the table; presence is re-sent.
      this.queue = [];
      this.mustCatchUp = true;
    }
    this.queue.push(event);
    this.wake();
  }

  resync(): void {
    this.mustCatchUp = true;
    this.wake();
  }

  /** The credential ended (the bus calls this). */
  sessionEnded(): void {
    this.stop();
  }

  /** The call was aborted (the signal calls this: an EventTarget listener object). */
  handleEvent(): void {
    this.stop();
  }

  /** Nothing more is sent; a waiting next() gets `done` now, even while a database step runs. */
  stop(): void {
    this.ended = true;
    if (this.loading && this.phase !== Phase.Idle) this.end();
    else this.wake();
  }

  /** Ends the stream and answers a waiting next() with `done`. */
  private end(): void {
    this.finish();
    if (this.resolve) this.settle(DONE, undefined);
  }

  // ---- the state machine

  /** Gives the waiting consumer what is ready now, if anything. */
  private wake(): void {
    const resolve = this.resolve;
    if (!resolve || this.loading) return;
    let result: IteratorResult<T> | null;
    try {
      result = this.advance();
    } catch (err) {
      this.finish();
      this.settle(null, err);
      return;
    }
    if (result) this.settle(result, undefined);
  }

  private settle(result: IteratorResult<T> | null, err: unknown): void {
    const resolve = this.resolve;
    const reject = this.reject;
    this.resolve = this.reject = null;
    this.pending = null;
    if (result) resolve?.(result);
    else if (reject) reject(err);
    else this.failure = { err };
  }

  /** The next value if one is ready; else null, with a database step started if one is due. */
  private advance(): IteratorResult<T> | null {
    for (;;) {
      if (this.phase === Phase.Done) return DONE;
      if (this.loading) return null;
      if (this.ended && this.phase !== Phase.Idle) return this.finishWith(DONE);
      switch (this.phase) {
        case Phase.Idle:
          this.attach();
          if (this.ended) return this.finishWith(DONE);
          this.load(this.firstCheck());
          return null;
        case Phase.Check:
          this.load(this.checkAgain());
          return null;
        case Phase.Replay: {
          const rows = this.rows;
          if (!rows) {
            if (this.replayFrom === null) {
              this.phase = Phase.Presence;
              continue;
            }
            this.load(this.readBatch(this.replayFrom));
            return null;
          }
          while (this.rowAt < rows.length) {
            const event = toBusEvent(rows[this.rowAt++]!);
            const id = BigInt(event.id!);
            this.replayFrom = id;
            if (this.last !== null && id <= this.last) continue;
            this.last = id;
            // An old removal (before being re-invited) is history; a new one ends the stream.
            return id > this.checkedAt && endsStream(event, this.userId) ? this.finishWith(this.value(event)) : this.value(event);
          }
          this.rows = null;
          // A short batch was the last one; after a full one, read the next.
          if (rows.length < REPLAY_BATCH) this.phase = Phase.Presence;
          continue;
        }
        case Phase.Presence: {
          const viewers = this.viewers;
          if (!viewers) {
            this.load(this.readViewers());
            return null;
          }
          this.viewers = null;
          this.phase = Phase.Live;
          return this.value(presenceEvent(this.orgId, viewers));
        }
        case Phase.Live: {
          while (!this.mustCatchUp) {
            const event = this.queue.shift();
            if (!event) return null;
            if (event.id) {
              const id = BigInt(event.id);
              if (this.last !== null && id <= this.last) continue;
              this.last = id;
            }
            return endsStream(event, this.userId) ? this.finishWith(this.value(event)) : this.value(event);
          }
          // Events may have been missed: check access again (a missed organization.deleted or
          // sign-out shows up here), then replay what was stored since the last one sent.
          this.mustCatchUp = false;
          this.phase = Phase.Check;
          continue;
        }
      }
    }
  }

  private value(event: BusEvent): IteratorResult<T> {
    return { done: false, value: this.out(event) };
  }

  /** Attaches to the bus, the credential's end and the abort signal (the first next()). */
  private attach(): void {
    this.phase = Phase.Check;
    observeLiveSubscription('opened');
    this.bus.subscribeOrg(this.orgId, this);
    if (this.credentialKey) this.bus.onSessionEnded(this.credentialKey, this);
    if (this.signal?.aborted) this.ended = true;
    else this.signal?.addEventListener('abort', this, { once: true });
  }

  private async firstCheck(): Promise<void> {
    const access = await checkAccess(this.query, this.orgId, this.userId, this.credentialKey);
    if (this.phase === Phase.Done) return;
    // Removed or signed out between the procedure's checks and attaching to the bus.
    if (!access.allowed) throw new DomainError('not_found', 'not found');
    this.checkedAt = access.newestId;
    this.floor = access.newestId;
    this.replayFrom = this.last;
    this.phase = Phase.Replay;
  }

  private async checkAgain(): Promise<void> {
    const again = await checkAccess(this.query, this.orgId, this.userId, this.credentialKey);
    if (this.phase === Phase.Done) return;
    if (!again.allowed) {
      this.ended = true;
      return;
    }
    this.checkedAt = again.newestId;
    this.replayFrom = this.last ?? this.floor;
    this.phase = Phase.Replay;
  }

  private async readBatch(after: bigint): Promise<void> {
    const rows = await storedEventsAfter(this.query, this.orgId, after);
    if (this.phase === Phase.Done) return;
    this.rows = rows;
    this.rowAt = 0;
  }

  private async readViewers(): Promise<void> {
    const viewers = await listViewers(this.query, this.orgId);
    if (this.phase !== Phase.Done) this.viewers = viewers;
  }

  /** Runs one database step; the waiting consumer is served when it is done. */
  private load(step: Promise<void>): void {
    this.loading = true;
    step.then(
      () => {
        this.loading = false;
        this.wake();
      },
      (err: unknown) => {
        this.loading = false;
        if (this.phase === Phase.Done) return;
        this.finish();
        this.settle(null, err);
      },
    );
  }

  private finishWith(result: IteratorResult<T>): IteratorResult<T> {
    this.finish();
    return result;
  }

  /** Ends the stream once: detaches everything and tells onEnd (a waiting next() is the caller's to answer). */
  private finish(): void {
    if (this.phase === Phase.Done) return;
    const started = this.phase !== Phase.Idle;
    this.phase = Phase.Done;
    this.queue = [];
    this.rows = null;
    this.viewers = null;
    if (started) {
      observeLiveSubscription('closed');
      this.bus.unsubscribeOrg(this.orgId, this);
      if (this.credentialKey) this.bus.offSessionEnded(this.credentialKey, this);
      this.signal?.removeEventListener('abort', this);
    }
    if (started) this.onEnd();
  }
}
