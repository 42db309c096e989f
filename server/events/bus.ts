/**
 * The event bus. Every organization event reaches subscribers through PostgreSQL LISTEN/NOTIFY,
 * on this instance as on every other: the NOTIFY is issued inside the transaction that records the
 * event, so it is seen exactly when (and only if) that transaction commits, and PostgreSQL hands
 * notifications to each listener in commit order. Per organization, commit order is id order (see
 * runCommand), so every instance sees each organization's events in id order. (Delivering this
 * instance's own events straight after its commit would not be: two commands' post-commit code can
 * run in either order, and a subscriber that has seen id 59 skips a late 58.)
 */
import { reportFailure } from '../observability/failures.js';
import { observeLiveEventDelivery } from '../observability/metrics.js';
import { randomUUID } from 'node:crypto';
import { ListenConnection } from '../db/listen.js';
import type { LiveEvent } from '../../shared/events.js';

export const ORG_CHANNEL = 'org_events';
export const SESSION_CHANNEL = 'session_events';
/** How the LISTEN connection names itself in pg_stat_activity (operators and tests look for it). */
export const BUS_APPLICATION_NAME = 'gateway-event-bus';
/**
 * PostgreSQL caps NOTIFY payloads at 8000 bytes; larger stored events travel by id and are read
 * back, larger ephemeral ones (presence of a big organization) are recomputed by the receiver.
 */
const MAX_INLINE_PAYLOAD = 7000;

/** An event as it travels: `id` is set for stored (replayable) events, absent for ephemeral ones. */
export type BusEvent = LiveEvent & { id?: string };

/**
 * A subscriber to one organization's events. `resync` is called when this instance may have missed
 * events: its LISTEN connection was lost and has been re-established, so NOTIFYs sent in between
 * never arrived. The subscriber then catches up from the stored events.
 */
export interface OrgSubscriber {
  deliver(event: BusEvent): void;
  resync(): void;
}
/** A function, or an object with a `sessionEnded` method (no closure per listener). */
type SessionListener = ((sessionId: string) => void) | { sessionEnded(sessionId: string): void };

interface Wire {
  /** The sending instance (diagnostics; session ends are also delivered by the sender directly). */
  origin: string;
  event?: BusEvent;
  /** A stored event too large to inline: read it back by id. */
  ref?: { id: string; orgId: string };
  /** An ephemeral event too large to inline: recompute it with the refresher registered for its type. */
  refresh?: { type: string; orgId: string };
  sessionId?: string;
}

/** Recomputes an ephemeral event of one type for an organization (e.g. its current viewers). */
export type Refresher = (orgId: string) => Promise<BusEvent | null>;

export interface Logger { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void }

export class EventBus {
  readonly instanceId = randomUUID();
  private readonly orgListeners = new Map<string, Set<OrgSubscriber>>();
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private readonly connection: ListenConnection;
  private readonly refreshers = new Map<string, Refresher>();
  /** Deliveries still waiting for a read-back or refresh; later ones wait behind them to keep order. */
  private waitingDeliveries = 0;
  private deliveryTail: Promise<void> = Promise.resolve();

  constructor(
    databaseUrl: string,
    private readonly loadEvent: (id: string) => Promise<BusEvent | null>,
    private readonly log: Logger,
  ) {
    this.connection = new ListenConnection(
      { databaseUrl, applicationName: BUS_APPLICATION_NAME, channels: [ORG_CHANNEL, SESSION_CHANNEL], what: 'event bus' },
      {
        notification: (channel, payload) => this.onNotification(channel, payload),
        // NOTIFYs sent while we were not listening are gone; every subscriber catches up from the table.
        listening: (first) => {
          if (!first) this.resyncAll();
        },
      },
      log,
    );
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  private resyncAll(): void {
    for (const set of this.orgListeners.values()) {
      for (const subscriber of [...set]) {
        try {
          subscriber.resync();
        } catch (err) {
          this.log.error({ err }, 'event subscriber resync failed');
        }
      }
    }
  }

  /** Whether the LISTEN connection is up (for /healthz-style checks and tests). */
  isListening(): boolean {
    return this.connection.listening;
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  /** Lets receivers rebuild a too-large ephemeral event of `type` instead of dropping it. */
  registerRefresher(type: string, refresher: Refresher): void {
    this.refreshers.set(type, refresher);
  }

  /** The pg_notify payload that carries `event` to every instance, or null if it cannot travel. */
  encodeForNotify(event: BusEvent): string | null {
    const text = JSON.stringify({ origin: this.instanceId, event } satisfies Wire);
    if (Buffer.byteLength(text) <= MAX_INLINE_PAYLOAD) return text;
    if (event.id) return JSON.stringify({ origin: this.instanceId, ref: { id: event.id, orgId: event.orgId } } satisfies Wire);
    if (this.refreshers.has(event.type)) return JSON.stringify({ origin: this.instanceId, refresh: { type: event.type, orgId: event.orgId } } satisfies Wire);
    // Failing the user's command over a live notification would be worse than missing it.
    this.log.error({ type: event.type, orgId: event.orgId, bytes: Buffer.byteLength(text) }, 'ephemeral event too large to notify; dropped');
    return null;
  }

  /**
   * The pg_notify payload as a SQL expression, for a stored event whose id is assigned by the same
   * statement (`idSql` is that id as text): encodeForNotify's wire format, built by appending the
   * id to JSON made here, so its size is known exactly.
   */
  notifyPayloadSql(event: BusEvent, idSql: string): { sql: string; params: unknown[] } {
    const { id: _ignored, ...withoutId } = event;
    const eventJson = JSON.stringify(withoutId);
    // `{"origin":…,"event":{…,"id":"` + id + `"}}`
    const inline = `{"origin":${JSON.stringify(this.instanceId)},"event":${eventJson.slice(0, -1)},"id":"`;
    const maxIdBytes = 19 + 3;
    const prefix =
      Buffer.byteLength(inline) + maxIdBytes <= MAX_INLINE_PAYLOAD
        ? inline
        : `{"origin":${JSON.stringify(this.instanceId)},"ref":{"orgId":${JSON.stringify(event.orgId)},"id":"`;
    return { sql: `? || ${idSql} || '"}}'`, params: [prefix] };
  }

  /** Hands `event` to this instance's subscribers of its organization (the NOTIFY path calls it; so can benchmarks). */
  deliverLocal(event: BusEvent): void {
    const listeners = this.orgListeners.get(event.orgId);
    if (!listeners) return;
    observeLiveEventDelivery(event.at);
    // A copy: a subscriber may end (and unsubscribe) while handling the event.
    for (const subscriber of [...listeners]) {
      try {
        subscriber.deliver(event);
      } catch (err) {
        this.log.error({ err }, 'event listener failed');
      }
    }
  }

  subscribeOrg(orgId: string, subscriber: OrgSubscriber): () => void {
    let set = this.orgListeners.get(orgId);
    if (!set) this.orgListeners.set(orgId, (set = new Set()));
    set.add(subscriber);
    return () => this.unsubscribeOrg(orgId, subscriber);
  }

  /** Undoes subscribeOrg (for subscribers that keep no closure of their own). */
  unsubscribeOrg(orgId: string, subscriber: OrgSubscriber): void {
    const current = this.orgListeners.get(orgId);
    if (!current) return;
    current.delete(subscriber);
    if (current.size === 0) this.orgListeners.delete(orgId);
  }

  /** Called when `sessionId` ends (sign-out), on any instance. */
  onSessionEnded(sessionId: string, listener: SessionListener): () => void {
    let set = this.sessionListeners.get(sessionId);
    if (!set) this.sessionListeners.set(sessionId, (set = new Set()));
    set.add(listener);
    return () => this.offSessionEnded(sessionId, listener);
  }

  /** Undoes onSessionEnded. */
  offSessionEnded(sessionId: string, listener: SessionListener): void {
    const current = this.sessionListeners.get(sessionId);
    if (!current) return;
    current.delete(listener);
    if (current.size === 0) this.sessionListeners.delete(sessionId);
  }

  /** Announce that a session has ended, here and on every other instance. */
  async endSession(sessionId: string, notify: (channel: string, payload: string) => Promise<void>): Promise<void> {
    this.deliverSessionEnded(sessionId);
    await notify(SESSION_CHANNEL, JSON.stringify({ origin: this.instanceId, sessionId } satisfies Wire));
  }

  private deliverSessionEnded(sessionId: string): void {
    for (const listener of [...(this.sessionListeners.get(sessionId) ?? [])]) {
      if (typeof listener === 'function') listener(sessionId);
      else listener.sessionEnded(sessionId);
    }
  }

  private onNotification(channel: string, payload: string | undefined): void {
    if (!payload) return;
    let wire: Wire;
    try {
      wire = JSON.parse(payload) as Wire;
    } catch (err) {
      reportFailure(this.log, 'event notification decode', err, { channel, payload: payload.slice(0, 200) });
      return;
    }
    if (channel === SESSION_CHANNEL) {
      // The sender already ended its own sessions' streams and sockets.
      if (wire.sessionId && wire.origin !== this.instanceId) this.deliverSessionEnded(wire.sessionId);
      return;
    }
    if (channel !== ORG_CHANNEL) return;
    if (wire.event) return this.deliverInOrder(wire.event);
    const orgId = wire.ref?.orgId ?? wire.refresh?.orgId;
    if (!orgId || !this.orgListeners.has(orgId)) return;
    const refresher = wire.refresh ? this.refreshers.get(wire.refresh.type) : undefined;
    if (wire.ref) this.deliverInOrder(() => this.loadEvent(wire.ref!.id));
    else if (refresher) this.deliverInOrder(() => refresher(orgId));
  }

  /**
   * Delivers in notification order, also when an event has to be read back first: events behind
   * one being loaded wait for it (a subscriber skips ids lower than one it has already been sent).
   */
  private deliverInOrder(next: BusEvent | (() => Promise<BusEvent | null>)): void {
    if (typeof next !== 'function' && this.waitingDeliveries === 0) return this.deliverLocal(next);
    this.waitingDeliveries++;
    const ready =
      typeof next === 'function'
        ? next().catch((err) => {
            this.log.error({ err }, 'could not load a large event');
            return null;
          })
        : Promise.resolve(next);
    this.deliveryTail = this.deliveryTail
      .then(() => ready)
      .then((event) => {
        if (event) this.deliverLocal(event);
      })
      .finally(() => {
        this.waitingDeliveries--;
      });
  }

  /** Number of live org listeners on this instance (for metrics and tests). */
  listenerCount(): number {
    let n = 0;
    for (const set of this.orgListeners.values()) n += set.size;
    return n;
  }
}
