/**
 * Cross-instance cache invalidation for the gateway's hot path. Commands that revoke an API key or
 * change provider keys NOTIFY this channel inside their transaction, so every instance hears of it
 * exactly when (and only if) the change commits. Each instance keeps one LISTEN connection; while it
 * is down the caches are bypassed and every request is checked against the database.
 */
import { failureHandler, reportFailure } from '../../observability/failures.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { ListenConnection } from '../../db/listen.js';

export const GATEWAY_CACHE_CHANNEL = 'gateway_cache';
/** Each instance answers an invalidation here once it has applied it. */
export const GATEWAY_CACHE_ACK_CHANNEL = 'gateway_cache_ack';
const LISTENER_NAME = 'gateway-cache-listener';
/** How long a command waits for every instance to confirm; an instance slower than this is likely gone. */
const ACK_TIMEOUT_MS = 2_000;

export type Invalidation = (
  | { kind: 'apiKey'; apiKeyId: string }
  | { kind: 'providerKeys'; orgId: string }
  /** Mode, caching or deletion: who pays and what is cached must change with the very next call. */
  | { kind: 'project'; projectId: string }
  /** Retention level (bodies stop being stored with the very next call) or deletion (its keys stop working). */
  | { kind: 'organization'; orgId: string }
) & { nonce?: string };

/**
 * Queue a NOTIFY in the caller's transaction, counting the instances listening at that moment. After
 * commit the command waits until every one of them has confirmed that it applied the change (on
 * GATEWAY_CACHE_ACK_CHANNEL), so when the command answers, no instance serves from a stale cache.
 * An instance that does not confirm within ACK_TIMEOUT_MS is likely gone (its listener connection
 * closing makes it drop its caches when it comes back).
 */
export async function notifyInvalidation(work: { em: Pick<EntityManager, 'execute'>; deps: { invalidation: InvalidationAcks }; afterCommit(fn: () => Promise<void>): void }, message: Invalidation): Promise<void> {
  const nonce = randomUUID();
  const rows = await work.em.execute<{ listeners: string }[]>(
    `select pg_notify(?, ?), (select count(*) from pg_stat_activity where datname = current_database() and application_name = ?) as listeners`,
    [GATEWAY_CACHE_CHANNEL, JSON.stringify({ ...message, nonce }), LISTENER_NAME],
  );
  const listeners = Number(rows[0]?.listeners ?? 0);
  const acks = work.deps.invalidation;
  work.afterCommit(() => acks.wait(nonce, listeners));
}

type AckWaiter = (nonce: string, instances: number, timeoutMs: number) => Promise<void>;

/**
 * Where a committed invalidation waits for every instance's confirmation: a member of the services
 * object (built by createServices), so every command run with those services waits. The gateway
 * runtime, which holds the LISTEN connection that hears the confirmations, attaches itself; a
 * process without a gateway (the admin CLI) has nothing to wait with and returns at once.
 */
export class InvalidationAcks {
  private waiter: AckWaiter | null = null;

  attach(wait: AckWaiter): () => void {
    this.waiter = wait;
    return () => {
      if (this.waiter === wait) this.waiter = null;
    };
  }

  async wait(nonce: string, instances: number): Promise<void> {
    await this.waiter?.(nonce, instances, ACK_TIMEOUT_MS);
  }
}

export interface InvalidationHandlers {
  apply(message: Invalidation): void;
  /** An instance confirmed it applied the invalidation `nonce`. */
  ack(nonce: string): void;
  /** The connection was (re)established or lost: anything cached may be stale. */
  reset(): void;
}

interface Log { warn(o: unknown, m?: string): void; error(o: unknown, m?: string): void }

export class InvalidationListener {
  private readonly connection: ListenConnection;

  constructor(databaseUrl: string, handlers: InvalidationHandlers, log: Log) {
    this.connection = new ListenConnection(
      { databaseUrl, applicationName: LISTENER_NAME, channels: [GATEWAY_CACHE_CHANNEL, GATEWAY_CACHE_ACK_CHANNEL], what: 'gateway cache listener' },
      {
        notification(channel, payload, client) {
          if (!payload) return;
          if (channel === GATEWAY_CACHE_ACK_CHANNEL) return handlers.ack(payload);
          let message: Invalidation;
          try {
            message = JSON.parse(payload) as Invalidation;
            handlers.apply(message);
          } catch (err) {
            // Not knowing what changed, drop everything cached rather than serve something stale.
            reportFailure(log, 'gateway cache invalidation', err, { payload: payload.slice(0, 200) });
            handlers.reset();
            return;
          }
          // Applied (synchronously, above): tell the command that is waiting for every instance.
          if (message.nonce) client.query('select pg_notify($1, $2)', [GATEWAY_CACHE_ACK_CHANNEL, message.nonce]).catch(failureHandler(log, 'gateway cache ack'));
        },
        // Whatever changed while nobody listened is unknown: start from empty caches (and drop them when the connection goes).
        listening: () => handlers.reset(),
        lost: () => handlers.reset(),
      },
      log,
    );
  }

  /** True while notifications are being received (caches may be trusted). */
  get listening(): boolean {
    return this.connection.listening;
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }
}
