/**
 * Cross-instance cache invalidation for the gateway's hot path. Commands that revoke an API key or
 * change provider keys NOTIFY this channel inside their transaction, so every instance hears of it
 * exactly when (and only if) the change commits. Each instance keeps one LISTEN connection; while it
 * is down the caches are bypassed and every request is checked against the database.
 */
import pg from 'pg';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';

export const GATEWAY_CACHE_CHANNEL = 'gateway_cache';
/** Each instance answers an invalidation here once it has applied it. */
export const GATEWAY_CACHE_ACK_CHANNEL = 'gateway_cache_ack';
const LISTENER_NAME = 'gateway-cache-listener';
/** How long a command waits for every instance to confirm; an instance slower than this is likely gone. */
const ACK_TIMEOUT_MS = 2_000;

export type Invalidation = ({ kind: 'apiKey'; apiKeyId: string } | { kind: 'providerKeys'; orgId: string }) & { nonce?: string };

/**
 * Queue a NOTIFY in the caller's transaction, counting the instances listening at that moment. After
 * commit the command waits until every one of them has confirmed that it applied the change (on
 * GATEWAY_CACHE_ACK_CHANNEL), so when the command answers, no instance serves from a stale cache.
 * An instance that does not confirm within ACK_TIMEOUT_MS is likely gone (its listener connection
 * closing makes it drop its caches when it comes back).
 */
export async function notifyInvalidation(work: { em: Pick<EntityManager, 'execute'>; deps: object; afterCommit(fn: () => Promise<void>): void }, message: Invalidation): Promise<void> {
  const nonce = randomUUID();
  const rows = await work.em.execute<{ listeners: string }[]>(
    `select pg_notify(?, ?), (select count(*) from pg_stat_activity where datname = current_database() and application_name = ?) as listeners`,
    [GATEWAY_CACHE_CHANNEL, JSON.stringify({ ...message, nonce }), LISTENER_NAME],
  );
  const listeners = Number(rows[0]?.listeners ?? 0);
  work.afterCommit(() => awaitAcks(work.deps, nonce, listeners));
}

type AckWaiter = (nonce: string, instances: number, timeoutMs: number) => Promise<void>;
const ackWaiters = new WeakMap<object, AckWaiter>();
export function onAcks(deps: object, wait: AckWaiter): void {
  ackWaiters.set(deps, wait);
}
async function awaitAcks(deps: object, nonce: string, instances: number): Promise<void> {
  await ackWaiters.get(deps)?.(nonce, instances, ACK_TIMEOUT_MS);
}

export interface InvalidationHandlers {
  apply(message: Invalidation): void;
  /** An instance confirmed it applied the invalidation `nonce`. */
  ack(nonce: string): void;
  /** The connection was (re)established or lost: anything cached may be stale. */
  reset(): void;
}

interface Log { warn(o: unknown, m?: string): void }

export class InvalidationListener {
  private client: pg.Client | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private delay = 250;

  constructor(
    private readonly databaseUrl: string,
    private readonly handlers: InvalidationHandlers,
    private readonly log: Log,
  ) {}

  /** True while notifications are being received (caches may be trusted). */
  get listening(): boolean {
    return this.client !== null;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: LISTENER_NAME });
    let up = false;
    const lost = (err?: unknown) => {
      if (!up) return;
      up = false;
      if (this.client === client) this.client = null;
      this.handlers.reset();
      client.end().catch(() => {});
      if (this.closed) return;
      this.log.warn({ err }, 'gateway cache listener lost its connection; reconnecting');
      this.schedule();
    };
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      if (msg.channel === GATEWAY_CACHE_ACK_CHANNEL) return this.handlers.ack(msg.payload);
      let message: Invalidation;
      try {
        message = JSON.parse(msg.payload) as Invalidation;
        this.handlers.apply(message);
      } catch {
        this.handlers.reset();
        return;
      }
      // Applied (synchronously, above): tell the command that is waiting for every instance.
      if (message.nonce) client.query('select pg_notify($1, $2)', [GATEWAY_CACHE_ACK_CHANNEL, message.nonce]).catch(() => {});
    });
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${GATEWAY_CACHE_CHANNEL}`);
      await client.query(`LISTEN ${GATEWAY_CACHE_ACK_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    up = true;
    this.delay = 250;
    // Whatever changed while nobody listened is unknown: start from empty caches.
    this.handlers.reset();
    this.client = client;
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, 10_000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch((err) => {
        this.log.warn({ err }, 'gateway cache listener reconnect failed');
        this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
