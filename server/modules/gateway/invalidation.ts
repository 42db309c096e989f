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

export type Invalidation = ({ kind: 'apiKey'; apiKeyId: string } | { kind: 'providerKeys'; orgId: string }) & { nonce?: string };

/**
 * Queue a NOTIFY in the caller's transaction. The command then waits (briefly, after commit) until
 * its own instance hears it back: PostgreSQL delivers it to every listener at once, so by the time
 * the command answers, the other instances have it too.
 */
export async function notifyInvalidation(work: { em: EntityManager; deps: object; afterCommit(fn: () => Promise<void>): void }, message: Invalidation): Promise<void> {
  const nonce = randomUUID();
  await work.em.execute('select pg_notify(?, ?)', [GATEWAY_CACHE_CHANNEL, JSON.stringify({ ...message, nonce })]);
  work.afterCommit(() => awaitEcho(work.deps, nonce));
}

const echoWaiters = new WeakMap<object, (nonce: string, timeoutMs: number) => Promise<void>>();
export function onEcho(deps: object, wait: (nonce: string, timeoutMs: number) => Promise<void>): void {
  echoWaiters.set(deps, wait);
}
async function awaitEcho(deps: object, nonce: string): Promise<void> {
  await echoWaiters.get(deps)?.(nonce, 500);
}

export interface InvalidationHandlers {
  apply(message: Invalidation): void;
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
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'gateway-cache-listener' });
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
      try {
        this.handlers.apply(JSON.parse(msg.payload) as Invalidation);
      } catch {
        this.handlers.reset();
      }
    });
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${GATEWAY_CACHE_CHANNEL}`);
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
