/**
 * The organization's live stream for one subscriber: replay of stored events after `lastEventId`,
 * then live events in id order without duplicates. Ends when the subscriber is removed, the
 * organization is deleted, the session or token ends, or the client goes away.
 */
import { tracked } from '@trpc/server';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { BusEvent, EventBus } from '../../events/bus.js';
import type { LiveEvent } from '../../../shared/events.js';
import { listViewers } from './presence.js';

/** A subscriber this far behind is cut off; its client reconnects and replays from lastEventId. */
const MAX_QUEUE = 10_000;
const REPLAY_BATCH = 500;

export interface StreamParams {
  em: EntityManager;
  bus: EventBus;
  orgId: string;
  userId: string;
  /** Key under which the bus announces the end of this caller's credential (session or token). */
  credentialKey: string | null;
  lastEventId: string | null | undefined;
  signal: AbortSignal | undefined;
  onEnd: () => void;
}

export async function loadStoredEvent(em: EntityManager, id: string): Promise<BusEvent | null> {
  const rows = await em.execute<{ id: string; org_id: string; payload: LiveEvent; actor_id: string | null; created_at: Date }[]>(
    'select id, org_id, payload, actor_id, created_at from org_event where id = ?',
    [id],
  );
  const r = rows[0];
  return r ? toBusEvent(r) : null;
}

function toBusEvent(r: { id: string; org_id: string; payload: LiveEvent; actor_id: string | null; created_at: Date }): BusEvent {
  return { ...r.payload, id: String(r.id), orgId: r.org_id, actorId: r.actor_id, at: new Date(r.created_at).toISOString() };
}

export async function* organizationStream(p: StreamParams) {
  const queue: BusEvent[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  const stop = () => {
    ended = true;
    wake?.();
  };
  const unsubscribe = p.bus.subscribeOrg(p.orgId, (event) => {
    if (queue.length >= MAX_QUEUE) return stop();
    queue.push(event);
    wake?.();
  });
  const unsubscribeCredential = p.credentialKey ? p.bus.onSessionEnded(p.credentialKey, stop) : () => {};
  p.signal?.addEventListener('abort', stop, { once: true });
  let last: bigint | null = p.lastEventId && /^\d{1,19}$/.test(p.lastEventId) ? BigInt(p.lastEventId) : null;

  try {
    if (last !== null) {
      for (;;) {
        const rows = await p.em.execute<{ id: string; org_id: string; payload: LiveEvent; actor_id: string | null; created_at: Date }[]>(
          'select id, org_id, payload, actor_id, created_at from org_event where org_id = ? and id > ? order by id limit ?',
          [p.orgId, last.toString(), REPLAY_BATCH],
        );
        for (const row of rows) {
          const event = toBusEvent(row);
          last = BigInt(event.id!);
          yield tracked(event.id!, event);
        }
        if (rows.length < REPLAY_BATCH) break;
      }
    }
    yield { type: 'presence' as const, orgId: p.orgId, actorId: null, at: new Date().toISOString(), viewers: await listViewers(p.em, p.orgId) } satisfies LiveEvent;

    while (!ended) {
      const event = queue.shift();
      if (!event) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        continue;
      }
      if (event.id) {
        const id = BigInt(event.id);
        if (last !== null && id <= last) continue;
        last = id;
        yield tracked(event.id, event);
      } else {
        yield event;
      }
      const removedMe = event.type === 'member.removed' && event.userId === p.userId;
      if (removedMe || event.type === 'organization.deleted') return;
    }
  } finally {
    unsubscribe();
    unsubscribeCredential();
    p.signal?.removeEventListener('abort', stop);
    p.onEnd();
  }
}
