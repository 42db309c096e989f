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
import type { BusEvent, EventBus } from '../../events/bus.js';
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
async function checkAccess(p: StreamParams): Promise<{ allowed: boolean; newestId: bigint }> {
  const tokenId = p.credentialKey?.startsWith('token:') ? p.credentialKey.slice('token:'.length) : null;
  const sessionId = p.credentialKey && !tokenId ? p.credentialKey : null;
  const rows = await p.query<{ member: boolean; credential: boolean; newest: string | null }[]>(
    `select exists(select 1 from membership where org_id = ? and user_id = ?) as member,
            (?::text is null or exists(select 1 from session where id = ?))
              and (?::text is null or exists(select 1 from api_token where id = ?)) as credential,
            (select max(id)::text from org_event where org_id = ?) as newest`,
    [p.orgId, p.userId, sessionId, sessionId, tokenId, tokenId, p.orgId],
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
 * events with their id for tRPC); doing it here rather than in a second generator saves a
 * generator, its promises and their hops per subscriber.
 */
export function organizationStream(p: StreamParams): AsyncGenerator<BusEvent, void>;
export function organizationStream<T>(p: StreamParams, out: (event: BusEvent) => T): AsyncGenerator<T, void>;
export function organizationStream(p: StreamParams, out: (event: BusEvent) => unknown = (event) => event): AsyncGenerator<unknown, void> {
  return streamOf(p, out);
}

async function* streamOf(p: StreamParams, out: (event: BusEvent) => unknown): AsyncGenerator<unknown, void> {
  let queue: BusEvent[] = [];
  let ended = false;
  let mustCatchUp = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const stop = () => {
    ended = true;
    poke();
  };
  const unsubscribe = p.bus.subscribeOrg(p.orgId, {
    deliver(event: BusEvent) {
      if (queue.length >= MAX_QUEUE) {
        // Far behind: stored events are read back from the table; presence is re-sent.
        queue = [];
        mustCatchUp = true;
      }
      queue.push(event);
      poke();
    },
    resync() {
      mustCatchUp = true;
      poke();
    },
  });
  const unsubscribeCredential = p.credentialKey ? p.bus.onSessionEnded(p.credentialKey, stop) : () => {};
  p.signal?.addEventListener('abort', stop, { once: true });
  /** The id of the newest event this subscriber has (been sent, or said it has). */
  let last: bigint | null = p.lastEventId && /^\d{1,19}$/.test(p.lastEventId) ? BigInt(p.lastEventId) : null;
  const closed = observeLiveSubscription();

  try {
    const access = await checkAccess(p);
    // Removed or signed out between the procedure's checks and attaching to the bus.
    if (!access.allowed) throw new DomainError('not_found', 'not found');
    /** The newest stored event when access was last checked: a removal after it ends the stream. */
    let checkedAt = access.newestId;
    /** Where a catch-up starts for a subscriber that has not been sent a stored event yet. */
    const floor = access.newestId;
    let replayFrom = last;

    for (;;) {
      if (replayFrom !== null) {
        for (;;) {
          const rows = await storedEventsAfter(p.query, p.orgId, replayFrom);
          for (const row of rows) {
            const event = toBusEvent(row);
            const id = BigInt(event.id!);
            replayFrom = id;
            if (last !== null && id <= last) continue;
            last = id;
            yield out(event);
            // An old removal (before being re-invited) is history; a new one ends the stream.
            if (ended || (id > checkedAt && endsStream(event, p.userId))) return;
          }
          if (rows.length < REPLAY_BATCH) break;
        }
      }
      yield out(presenceEvent(p.orgId, await listViewers(p.query, p.orgId)));

      while (!ended && !mustCatchUp) {
        const event = queue.shift();
        if (!event) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        if (event.id) {
          const id = BigInt(event.id);
          if (last !== null && id <= last) continue;
          last = id;
        }
        yield out(event);
        if (endsStream(event, p.userId)) return;
      }
      if (ended) return;

      // Events may have been missed: check access again (a missed organization.deleted or
      // sign-out shows up here), then replay what was stored since the last one sent.
      mustCatchUp = false;
      const again = await checkAccess(p);
      if (!again.allowed) return;
      checkedAt = again.newestId;
      replayFrom = last ?? floor;
    }
  } finally {
    closed();
    unsubscribe();
    unsubscribeCredential();
    p.signal?.removeEventListener('abort', stop);
    p.onEnd();
  }
}
