/**
 * Sends webhook deliveries (docs/webhooks.md). Each endpoint's queue is its pending deliveries in
 * `seq` order, sent one at a time by whichever dispatcher holds the endpoint's lease (a column
 * claimed with one UPDATE, never a transaction held over the network call), so an organization's
 * events reach an endpoint in order and no two instances send the same queue at once.
 *
 * Wake-ups: the outbox's NOTIFY at commit (first attempt within milliseconds), a pg-boss job at
 * each retry's due time (WEBHOOK_QUEUE; pg-boss carries the retries across restarts), and a sweep
 * every minute, at start and after a lost LISTEN (due deliveries of endpoints nobody holds: a
 * missed NOTIFY, a failed job hand-over, a crashed holder whose lease ran out).
 *
 * An attempt's outcome is written in one unit of work (delivery row, endpoint state, live event,
 * and when the endpoint has failed for WEBHOOK_DISABLE_AFTER: disabling it, failing its queue,
 * emailing the owners). A failed attempt holds the queue until its retry; after the last retry the
 * delivery is given up and the next one goes.
 */
import { observeWebhookAttempt } from '../../observability/metrics.js';
import { createHash, randomUUID } from 'node:crypto';
import type { Services } from '../../services.js';
import { ListenConnection } from '../../db/listen.js';
import { runCommand } from '../../events/unit-of-work.js';
import { failureHandler, reportFailure } from '../../observability/failures.js';
import type { RowOf } from '../../db/rows.js';
import type { WebhookDelivery, WebhookEndpoint } from './entities.js';
import { WEBHOOK_CHANNEL } from './outbox.js';
import { WebhookSender, type AttemptResult } from './sender.js';

export const WEBHOOK_QUEUE = 'webhook-delivery';
export const WEBHOOK_SWEEP_QUEUE = 'webhook-sweep';
const USER_AGENT = 'llm-gateway-webhooks/1';
/** Delivered and given-up deliveries stay in the log this long. */
const LOG_DAYS = 30;

type Deps = Pick<Services, 'orm' | 'bus' | 'mailer' | 'balanceObservers' | 'invalidation' | 'log' | 'secretBox' | 'queue' | 'config' | 'appUrl'>;
type Claimed = RowOf<typeof WebhookEndpoint, 'url' | 'sealed_secret' | 'org_id'>;
type Head = RowOf<typeof WebhookDelivery, 'id' | 'body' | 'attempts' | 'next_attempt_at'> & { due: boolean };

export class WebhookDispatcher {
  private readonly sender: WebhookSender;
  private listen: ListenConnection | null = null;
  /** Endpoints this process is draining; `again`: woken meanwhile, look once more when done. */
  private readonly running = new Map<string, { again: boolean }>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private readonly leaseSeconds: number;

  constructor(
    private readonly deps: Deps,
    databaseUrl: string,
  ) {
    const { webhooks, gateway } = deps.config;
    this.sender = new WebhookSender(gateway, webhooks.timeoutMs);
    this.leaseSeconds = Math.ceil(webhooks.timeoutMs / 1000) + 30;
    this.listen = new ListenConnection(
      { databaseUrl, applicationName: 'gateway-webhooks', channels: [WEBHOOK_CHANNEL], what: 'webhook dispatcher' },
      {
        notification: (_channel, payload) => {
          if (payload) this.kick(payload);
        },
        // At start and after a lost connection, NOTIFYs may have been missed.
        listening: () => void this.sweep().catch(failureHandler(deps.log, 'webhook sweep')),
      },
      deps.log,
    );
  }

  async start(): Promise<void> {
    await this.listen?.start();
  }

  /** Drains `endpointId`'s queue here unless this process already is (then it looks again after). */
  kick(endpointId: string): void {
    if (this.stopped) return;
    const current = this.running.get(endpointId);
    if (current) {
      current.again = true;
      return;
    }
    const state = { again: false };
    this.running.set(endpointId, state);
    const run = (async () => {
      try {
        do {
          state.again = false;
          await this.drain(endpointId);
        } while (state.again && !this.stopped);
      } catch (err) {
        reportFailure(this.deps.log, 'webhook drain', err, { endpointId });
      } finally {
        this.running.delete(endpointId);
      }
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  /** Due deliveries of endpoints nobody is draining are drained here; old log entries are pruned. Returns how many endpoints. */
  async sweep(): Promise<number> {
    const em = this.deps.orm.em.fork();
    // An endpoint is due when the head of its queue is (the deliveries behind it wait for it).
    const rows = await em.execute<{ endpoint_id: string }[]>(
      `select e.id as endpoint_id from webhook_endpoint e
       cross join lateral (select next_attempt_at from webhook_delivery d where d.endpoint_id = e.id and d.status = 'pending' order by d.seq limit 1) head
       where e.enabled and (e.lease_until is null or e.lease_until < now()) and head.next_attempt_at <= now()
       limit 1000`,
    );
    for (const r of rows) this.kick(r.endpoint_id);
    await em.execute(
      `delete from webhook_delivery where id in (select id from webhook_delivery where status in ('delivered', 'failed')
         and next_attempt_at < now() - make_interval(days => ?) limit 5000)`,
      [LOG_DAYS],
    );
    return rows.length;
  }

  private async drain(endpointId: string): Promise<void> {
    const em = this.deps.orm.em.fork();
    const token = randomUUID();
    const claimed = await em.execute<Claimed[]>(
      `update webhook_endpoint set lease_token = ?, lease_until = now() + make_interval(secs => ?)
       where id = ? and enabled and (lease_until is null or lease_until < now()) returning url, sealed_secret, org_id`,
      [token, this.leaseSeconds, endpointId],
    );
    if (claimed.length === 0) return; // disabled, deleted, or another dispatcher holds it (it looks again on release)
    let recheck = true;
    try {
      for (;;) {
        if (this.stopped) {
          recheck = false;
          return;
        }
        const [head] = await em.execute<Head[]>(
          `select id, body, attempts, next_attempt_at, next_attempt_at <= now() as due from webhook_delivery
           where endpoint_id = ? and status = 'pending' order by seq limit 1`,
          [endpointId],
        );
        if (!head) return;
        if (!head.due) return this.wakeAt(endpointId, new Date(head.next_attempt_at));
        // Renew the lease and read the endpoint as it is now (its URL or secret may have changed).
        const [endpoint] = await em.execute<Claimed[]>(
          `update webhook_endpoint set lease_until = now() + make_interval(secs => ?) where id = ? and lease_token = ? and enabled returning url, sealed_secret, org_id`,
          [this.leaseSeconds, endpointId, token],
        );
        if (!endpoint) return;
        const result = await this.sender.post(endpoint.url, this.deps.secretBox.open(endpoint.sealed_secret), head.body, USER_AGENT);
        const next = await this.record(endpointId, endpoint, head, result);
        if (next === 'wait') return;
        if (next === 'disabled') {
          recheck = false;
          return;
        }
      }
    } finally {
      await em.execute('update webhook_endpoint set lease_token = null, lease_until = null where id = ? and lease_token = ?', [endpointId, token]);
      // A delivery committed while this queue was held was not drained by its NOTIFY's receiver.
      if (recheck && !this.stopped) {
        const [more] = await em.execute<{ due: boolean }[]>(
          `select next_attempt_at <= now() as due from webhook_delivery where endpoint_id = ? and status = 'pending' order by seq limit 1`,
          [endpointId],
        );
        if (more?.due) {
          const state = this.running.get(endpointId);
          if (state) state.again = true;
        }
      }
    }
  }

  /** A pg-boss job at `at` that wakes the endpoint's queue (the sweep covers a failed hand-over). */
  private async wakeAt(endpointId: string, at: Date): Promise<void> {
    // One job per endpoint and due time (pg-boss ignores a second send with the same id).
    const digest = createHash('sha256').update(`${endpointId}@${at.getTime()}`).digest('hex');
    const id = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-4${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
    await this.deps.queue.send(WEBHOOK_QUEUE, { endpointId }, { id, startAfter: at, retryLimit: 3 }).catch(failureHandler(this.deps.log, 'webhook retry hand-over', { endpointId }));
  }

  /** Writes an attempt's outcome; says whether to go on with the queue, wait for a retry, or stop (disabled). */
  private async record(endpointId: string, endpoint: Claimed, head: Head, result: AttemptResult): Promise<'next' | 'wait' | 'disabled'> {
    const { retryScheduleMs, disableAfterMs } = this.deps.config.webhooks;
    const attempts = head.attempts + 1;
    const givenUp = !result.ok && attempts > retryScheduleMs.length;
    const retryInMs = result.ok || givenUp ? 0 : retryScheduleMs[attempts - 1]!;
    const status = result.ok ? 'delivered' : givenUp ? 'failed' : 'pending';
    observeWebhookAttempt(result.ok ? 'delivered' : givenUp ? 'failed' : 'retrying', result.durationMs / 1000);
    const outcome = await runCommand(this.deps, null, async (work) => {
      const { em } = work;
      const updated = await em.execute<{ next_attempt_at: Date }[]>(
        `update webhook_delivery set attempts = ?, last_attempt_at = now(), response_status = ?, last_error = ?, duration_ms = ?, status = ?,
           delivered_at = case when ? then now() else null end, next_attempt_at = now() + make_interval(secs => ?)
         where id = ? and status = 'pending' returning next_attempt_at`,
        [attempts, result.status, result.error, result.durationMs, status, result.ok, retryInMs / 1000, head.id],
      );
      work.emit(endpoint.org_id, { type: 'webhook.delivery', webhookId: endpointId, deliveryId: head.id, status }, { store: false });
      if (result.ok) {
        await em.execute('update webhook_endpoint set failing_since = null where id = ? and failing_since is not null', [endpointId]);
        return 'next' as const;
      }
      const [state] = await em.execute<{ failing_since: Date; disable: boolean }[]>(
        `update webhook_endpoint set failing_since = coalesce(failing_since, now()) where id = ?
         returning failing_since, coalesce(failing_since, now()) <= now() - make_interval(secs => ?) and enabled as disable`,
        [endpointId, disableAfterMs / 1000],
      );
      if (state?.disable) {
        await this.disable(work, endpointId, endpoint, new Date(state.failing_since), result.error ?? 'failed');
        return 'disabled' as const;
      }
      if (givenUp || updated.length === 0) return 'next' as const;
      return { retryAt: new Date(updated[0]!.next_attempt_at) };
    });
    if (typeof outcome === 'object') {
      await this.wakeAt(endpointId, outcome.retryAt);
      return 'wait';
    }
    return outcome;
  }

  private async disable(work: Parameters<Parameters<typeof runCommand>[2]>[0], endpointId: string, endpoint: Claimed, since: Date, lastError: string): Promise<void> {
    const { em } = work;
    const reason = `every attempt failed since ${since.toISOString()} (last: ${lastError})`.slice(0, 500);
    await em.execute(`update webhook_endpoint set enabled = false, disabled_reason = ?, updated_at = now() where id = ?`, [reason, endpointId]);
    await em.execute(`update webhook_delivery set status = 'failed', last_error = coalesce(last_error, 'endpoint disabled') where endpoint_id = ? and status = 'pending'`, [endpointId]);
    work.audit(endpoint.org_id, 'webhook.disabled', { type: 'webhook', id: endpointId }, { enabled: true }, { enabled: false, reason });
    work.emit(endpoint.org_id, { type: 'webhook.changed', webhookId: endpointId, change: 'disabled' });
    const owners = await em.execute<{ email: string; org_name: string }[]>(
      `select u.email, o.name as org_name from membership m join app_user u on u.id = m.user_id join organization o on o.id = m.org_id
       where m.org_id = ? and m.role = 'owner'`,
      [endpoint.org_id],
    );
    for (const o of owners) {
      work.email(
        o.email,
        `Webhook endpoint disabled in ${o.org_name}`,
        `Deliveries to ${endpoint.url} have failed since ${since.toISOString()} (last error: ${lastError}), so the endpoint was disabled.\n\n` +
          `Fix the endpoint, then enable it again and redeliver what it missed: ${this.deps.appUrl}/org/${endpoint.org_id}/webhooks\n`,
      );
    }
    this.deps.log.warn({ endpointId, orgId: endpoint.org_id, since, lastError }, 'webhook endpoint disabled after failing too long');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listen?.stop();
    this.listen = null;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.sender.close().catch(() => {});
  }
}
