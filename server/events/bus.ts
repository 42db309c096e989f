/**
 * The event bus. Delivery is in-process for subscribers of this instance; other instances hear of
 * events through PostgreSQL LISTEN/NOTIFY. Stored events are NOTIFYed inside the transaction that
 * records them, so other instances see them exactly when (and only if) it commits; this instance
 * delivers them right after its own commit.
 */
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import type { LiveEvent } from '../../shared/events.js';

export const ORG_CHANNEL = 'org_events';
export const SESSION_CHANNEL = 'session_events';
/** PostgreSQL caps NOTIFY payloads at 8000 bytes; larger events travel by id and are read back. */
const MAX_INLINE_PAYLOAD = 7000;

/** An event as it travels: `id` is set for stored (replayable) events, absent for ephemeral ones. */
export type BusEvent = LiveEvent & { id?: string };

type OrgListener = (event: BusEvent) => void;
type SessionListener = (sessionId: string) => void;

interface Wire {
  origin: string;
  event?: BusEvent;
  /** Set when the event was too large to inline. */
  ref?: { id: string; orgId: string };
  sessionId?: string;
}

export interface Logger { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void }

export class EventBus {
  readonly instanceId = randomUUID();
  private readonly orgListeners = new Map<string, Set<OrgListener>>();
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private client: pg.Client | null = null;
  private closed = false;
  private reconnectDelay = 250;

  constructor(
    private readonly databaseUrl: string,
    private readonly loadEvent: (id: string) => Promise<BusEvent | null>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (msg) => this.onNotification(msg.channel, msg.payload));
    client.on('error', (err) => {
      this.log.warn({ err }, 'event bus connection lost; reconnecting');
      this.client = null;
      client.end().catch(() => {});
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${ORG_CHANNEL}`);
    await client.query(`LISTEN ${SESSION_CHANNEL}`);
    this.client = client;
    this.reconnectDelay = 250;
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, 10_000);
    setTimeout(() => {
      this.connect().catch((err) => {
        this.log.warn({ err }, 'event bus reconnect failed');
        this.scheduleReconnect();
      });
    }, delay).unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => {});
    this.client = null;
  }

  /** The SQL payload for pg_notify that carries `event` to other instances. */
  encodeForNotify(event: BusEvent): string {
    const wire: Wire = { origin: this.instanceId, event };
    const text = JSON.stringify(wire);
    if (text.length <= MAX_INLINE_PAYLOAD || !event.id) return text;
    return JSON.stringify({ origin: this.instanceId, ref: { id: event.id, orgId: event.orgId } } satisfies Wire);
  }

  /** Deliver to this instance's subscribers (called after commit). */
  deliverLocal(event: BusEvent): void {
    const listeners = this.orgListeners.get(event.orgId);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err }, 'event listener failed');
      }
    }
  }

  subscribeOrg(orgId: string, listener: OrgListener): () => void {
    let set = this.orgListeners.get(orgId);
    if (!set) this.orgListeners.set(orgId, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.orgListeners.delete(orgId);
    };
  }

  /** Called when `sessionId` ends (sign-out), on any instance. */
  onSessionEnded(sessionId: string, listener: SessionListener): () => void {
    let set = this.sessionListeners.get(sessionId);
    if (!set) this.sessionListeners.set(sessionId, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.sessionListeners.delete(sessionId);
    };
  }

  /** Announce that a session has ended, here and on every other instance. */
  async endSession(sessionId: string, notify: (channel: string, payload: string) => Promise<void>): Promise<void> {
    this.deliverSessionEnded(sessionId);
    await notify(SESSION_CHANNEL, JSON.stringify({ origin: this.instanceId, sessionId } satisfies Wire));
  }

  private deliverSessionEnded(sessionId: string): void {
    for (const listener of [...(this.sessionListeners.get(sessionId) ?? [])]) listener(sessionId);
  }

  private onNotification(channel: string, payload: string | undefined): void {
    if (!payload) return;
    let wire: Wire;
    try {
      wire = JSON.parse(payload) as Wire;
    } catch {
      return;
    }
    if (wire.origin === this.instanceId) return; // already delivered in-process
    if (channel === SESSION_CHANNEL && wire.sessionId) return this.deliverSessionEnded(wire.sessionId);
    if (channel !== ORG_CHANNEL) return;
    if (wire.event) return this.deliverLocal(wire.event);
    if (wire.ref && this.orgListeners.has(wire.ref.orgId)) {
      this.loadEvent(wire.ref.id)
        .then((event) => event && this.deliverLocal(event))
        .catch((err) => this.log.error({ err }, 'could not load a large event'));
    }
  }

  /** Number of live org listeners on this instance (for metrics and tests). */
  listenerCount(): number {
    let n = 0;
    for (const set of this.orgListeners.values()) n += set.size;
    return n;
  }
}
