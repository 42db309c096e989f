/**
 * Following `live.organization` so that every stored event is delivered once, across reconnects.
 * The dashboard and the client package (client-sdk/) both use it.
 *
 * Why it is needed: after a reconnect tRPC's wsLink re-subscribes by itself with the id of the last
 * event the socket carried, but an event without an id (presence, usage: one always follows a
 * (re)start) clears that id, and the re-subscription would start from "now", losing what happened
 * while the socket was down. So on every re-start this subscribes afresh from the last id it
 * delivered and ignores the old subscription from then on; anything at or before that id is
 * dropped, so an overlap is never delivered twice.
 */
import type { LiveEvent } from './events.js';

/** The callbacks of a tRPC subscription, as far as this needs them. */
export interface LiveSubscriptionCallbacks {
  onStarted(): void;
  onData(value: unknown): void;
  onError(err: unknown): void;
  onStopped(): void;
  onComplete(): void;
  onConnectionStateChange(state: { state: string }): void;
}

/** Subscribes to `live.organization` from `lastEventId` (the caller binds the client and orgId). */
export type LiveSubscribe = (lastEventId: string | null, callbacks: LiveSubscriptionCallbacks) => { unsubscribe(): void };

export interface ResumingHandlers {
  /** Each event once, in order; `id` is set for stored events. */
  onEvent(event: LiveEvent, id: string | undefined): void;
  /** The server confirmed the subscription (the first time and after every reconnect). */
  onStarted?(): void;
  onError?(err: unknown): void;
  /** The server sent `stopped` (the caller was removed, or the organization deleted). */
  onStopped?(): void;
  onComplete?(): void;
  onConnectionStateChange?(state: { state: string }): void;
}

export interface ResumingSubscription {
  unsubscribe(): void;
  /** The id of the last stored event delivered (or the one passed in). */
  lastEventId(): string | null;
}

/** Stored events arrive as tracked `{id, data}`; ephemeral ones (usage, presence) arrive bare. */
export function unwrapLiveValue(value: unknown): { id: string | undefined; event: LiveEvent } {
  const v = value as { id?: unknown; data?: unknown; type?: unknown };
  if (typeof v.type === 'string') return { id: undefined, event: v as LiveEvent };
  return { id: String(v.id), event: v.data as LiveEvent };
}

/** Event ids are bigint sequence values, sent as decimal strings. */
function isAfter(id: string, last: string): boolean {
  if (/^\d+$/.test(id) && /^\d+$/.test(last)) return BigInt(id) > BigInt(last);
  return id !== last;
}

export function resumingLiveSubscription(subscribe: LiveSubscribe, lastEventId: string | null, handlers: ResumingHandlers): ResumingSubscription {
  let last = lastEventId;
  let current: { unsubscribe(): void } | null = null;
  let generation = 0;
  const open = () => {
    const gen = ++generation;
    let starts = 0;
    current = subscribe(last, {
      onStarted: () => {
        if (gen !== generation) return;
        if (++starts === 1) return handlers.onStarted?.();
        // wsLink re-subscribed after a reconnect, possibly from "now": start again from `last`.
        const previous = current;
        open();
        previous?.unsubscribe();
      },
      onData: (value) => {
        if (gen !== generation) return;
        const { id, event } = unwrapLiveValue(value);
        if (id !== undefined) {
          if (last !== null && !isAfter(id, last)) return;
          last = id;
        }
        handlers.onEvent(event, id);
      },
      onError: (err) => {
        if (gen === generation) handlers.onError?.(err);
      },
      onStopped: () => {
        if (gen === generation) handlers.onStopped?.();
      },
      onComplete: () => {
        if (gen === generation) handlers.onComplete?.();
      },
      onConnectionStateChange: (state) => {
        if (gen === generation) handlers.onConnectionStateChange?.(state);
      },
    });
  };
  open();
  return {
    unsubscribe: () => {
      generation++;
      current?.unsubscribe();
    },
    lastEventId: () => last,
  };
}
