/**
 * Webhook endpoints of an organization (owner/admin): registered with a URL and the event types
 * they take, signed with a secret that is shown once (sealed at rest with SecretBox, like provider
 * keys), and their delivery log with manual redelivery. Deliveries themselves are written by the
 * outbox (outbox.ts) and sent by the dispatcher (dispatcher.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { SecretBox } from '../../auth/secrets.js';
import type { Sql, Work } from '../../events/unit-of-work.js';
import { badRequest, conflict, notFound, precondition } from '../../errors.js';
import type { RowOf } from '../../db/rows.js';
import { upstreamUrlProblem } from '../gateway/upstream/guard.js';
import { WEBHOOK_TEST_EVENT } from '../../../shared/webhooks.js';
import type { WebhookDelivery, WebhookEndpoint } from './entities.js';
import { WEBHOOK_CHANNEL, webhookBody } from './outbox.js';

/** Endpoints per organization. */
export const MAX_WEBHOOKS_PER_ORG = 20;

type EndpointRow = RowOf<typeof WebhookEndpoint, 'id' | 'org_id' | 'url' | 'events' | 'enabled' | 'disabled_reason' | 'failing_since' | 'created_at' | 'updated_at'>;
type EndpointListRow = EndpointRow & { pending: string; last_status: string | null; last_attempt_at: Date | null; last_response_status: number | null };
type DeliveryRow = RowOf<
  typeof WebhookDelivery,
  | 'id'
  | 'seq'
  | 'endpoint_id'
  | 'org_id'
  | 'event_id'
  | 'event_type'
  | 'body'
  | 'status'
  | 'attempts'
  | 'next_attempt_at'
  | 'last_attempt_at'
  | 'response_status'
  | 'last_error'
  | 'duration_ms'
  | 'delivered_at'
  | 'redelivery_of'
  | 'created_at'
>;

const ENDPOINT_COLUMNS = 'id, org_id, url, events, enabled, disabled_reason, failing_since, created_at, updated_at';
const DELIVERY_COLUMNS =
  'id, seq, endpoint_id, org_id, event_id, event_type, body, status, attempts, next_attempt_at, last_attempt_at, response_status, last_error, duration_ms, delivered_at, redelivery_of, created_at';

const date = (d: Date | string | null) => (d === null ? null : new Date(d));

function webhookView(r: EndpointRow) {
  return {
    id: r.id,
    url: r.url,
    events: r.events,
    enabled: r.enabled,
    /** Set when the dispatcher disabled the endpoint (failing for too long). */
    disabledReason: r.disabled_reason,
    failingSince: date(r.failing_since),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}
export type WebhookView = ReturnType<typeof webhookView>;

function deliveryView(r: DeliveryRow) {
  return {
    id: r.id,
    seq: String(r.seq),
    webhookId: r.endpoint_id,
    eventId: r.event_id,
    eventType: r.event_type,
    body: r.body,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' ? new Date(r.next_attempt_at) : null,
    lastAttemptAt: date(r.last_attempt_at),
    responseStatus: r.response_status,
    lastError: r.last_error,
    durationMs: r.duration_ms,
    deliveredAt: date(r.delivered_at),
    redeliveryOf: r.redelivery_of,
    createdAt: new Date(r.created_at),
  };
}
export type WebhookDeliveryView = ReturnType<typeof deliveryView>;

/** `whsec_` and 32 random bytes (base64url); the HMAC key is this whole string (docs/webhooks.md). */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/**
 * The same address rule as organizations' upstream base URLs (gateway/upstream/guard.ts): unless
 * GATEWAY_ALLOW_PRIVATE_UPSTREAMS is set, the host must resolve to public addresses only. DNS is a
 * network call: run before the command's transaction. The dispatcher checks again on every connection.
 */
export async function vetWebhookUrl(url: string | undefined, allowPrivate: boolean): Promise<void> {
  if (url === undefined) return;
  const problem = await upstreamUrlProblem(url, allowPrivate);
  if (problem) throw badRequest(problem.replace(/^base URL/, 'the endpoint URL'));
}

export async function listWebhooks(em: EntityManager, orgId: string) {
  const rows = await em.execute<EndpointListRow[]>(
    `select e.id, e.org_id, e.url, e.events, e.enabled, e.disabled_reason, e.failing_since, e.created_at, e.updated_at,
            (select count(*) from webhook_delivery d where d.endpoint_id = e.id and d.status = 'pending')::text as pending,
            last.status as last_status, last.last_attempt_at, last.response_status as last_response_status
     from webhook_endpoint e
     left join lateral (select status, last_attempt_at, response_status from webhook_delivery d
                        where d.endpoint_id = e.id and d.attempts > 0 order by d.last_attempt_at desc limit 1) last on true
     where e.org_id = ? order by e.created_at`,
    [orgId],
  );
  return rows.map((r) => ({
    ...webhookView(r),
    pendingDeliveries: Number(r.pending),
    lastAttempt: r.last_status ? { status: r.last_status, at: date(r.last_attempt_at), responseStatus: r.last_response_status } : null,
  }));
}

async function endpointForUpdate(em: Sql, webhookId: string): Promise<EndpointRow & { sealed_secret: string }> {
  const rows = await em.execute<(EndpointRow & { sealed_secret: string })[]>(`select ${ENDPOINT_COLUMNS}, sealed_secret from webhook_endpoint where id = ? for update`, [webhookId]);
  const row = rows[0];
  if (!row) throw notFound('webhook');
  return row;
}

async function endpointView(em: Sql, webhookId: string): Promise<WebhookView> {
  const rows = await em.execute<EndpointRow[]>(`select ${ENDPOINT_COLUMNS} from webhook_endpoint where id = ?`, [webhookId]);
  return webhookView(rows[0]!);
}

export async function createWebhook(work: Work, box: SecretBox, input: { orgId: string; userId: string; url: string; events: string[] }) {
  const { em } = work;
  // The organization row lock serializes the count of concurrent creates.
  await em.execute('select id from organization where id = ? for update', [input.orgId]);
  const [count] = await em.execute<{ n: number }[]>('select count(*)::int as n from webhook_endpoint where org_id = ?', [input.orgId]);
  if ((count?.n ?? 0) >= MAX_WEBHOOKS_PER_ORG) throw precondition(`an organization may have at most ${MAX_WEBHOOKS_PER_ORG} webhook endpoints`);
  const id = randomUUID();
  const secret = generateWebhookSecret();
  await em.execute(
    `insert into webhook_endpoint (id, org_id, url, events, enabled, sealed_secret, created_by, created_at, updated_at)
     values (?, ?, ?, array(select jsonb_array_elements_text(?::jsonb)), true, ?, ?, now(), now())`,
    [id, input.orgId, input.url, JSON.stringify(input.events), box.seal(secret), input.userId],
  );
  work.audit(input.orgId, 'webhook.created', { type: 'webhook', id }, null, { url: input.url, events: input.events });
  work.emit(input.orgId, { type: 'webhook.changed', webhookId: id, change: 'created' });
  return { webhook: await endpointView(em, id), secret };
}

/** Pending deliveries of a switched-off endpoint end as failed (still in the log, redeliverable once it is back on). */
async function failPending(em: Sql, webhookId: string, reason: string): Promise<void> {
  await em.execute(`update webhook_delivery set status = 'failed', last_error = coalesce(last_error || ' / ', '') || ? where endpoint_id = ? and status = 'pending'`, [
    reason,
    webhookId,
  ]);
}

export async function updateWebhook(work: Work, input: { webhookId: string; url?: string; events?: string[]; enabled?: boolean }) {
  const { em } = work;
  const current = await endpointForUpdate(em, input.webhookId);
  const url = input.url ?? current.url;
  const events = input.events ?? current.events;
  const enabled = input.enabled ?? current.enabled;
  const reenabled = enabled && !current.enabled;
  await em.execute(
    `update webhook_endpoint set url = ?, events = array(select jsonb_array_elements_text(?::jsonb)), enabled = ?,
       disabled_reason = case when ? then null else disabled_reason end,
       failing_since = case when ? then null else failing_since end, updated_at = now() where id = ?`,
    [url, JSON.stringify(events), enabled, enabled, reenabled, current.id],
  );
  if (current.enabled && !enabled) await failPending(em, current.id, 'endpoint disabled');
  const before = { url: current.url, events: current.events, enabled: current.enabled };
  work.audit(current.org_id, 'webhook.updated', { type: 'webhook', id: current.id }, before, { url, events, enabled });
  work.emit(current.org_id, { type: 'webhook.changed', webhookId: current.id, change: 'updated' });
  return endpointView(em, current.id);
}

export async function deleteWebhook(work: Work, webhookId: string) {
  const rows = await work.em.execute<EndpointRow[]>(`delete from webhook_endpoint where id = ? returning ${ENDPOINT_COLUMNS}`, [webhookId]);
  const gone = rows[0];
  if (!gone) throw notFound('webhook');
  work.audit(gone.org_id, 'webhook.deleted', { type: 'webhook', id: gone.id }, { url: gone.url, events: gone.events, enabled: gone.enabled }, null);
  work.emit(gone.org_id, { type: 'webhook.changed', webhookId: gone.id, change: 'deleted' });
  return { ok: true as const };
}

/** A new secret, effective for the next attempt; the old one stops verifying at once. */
export async function rotateWebhookSecret(work: Work, box: SecretBox, webhookId: string) {
  const current = await endpointForUpdate(work.em, webhookId);
  const secret = generateWebhookSecret();
  await work.em.execute('update webhook_endpoint set sealed_secret = ?, updated_at = now() where id = ?', [box.seal(secret), current.id]);
  work.audit(current.org_id, 'webhook.secretRotated', { type: 'webhook', id: current.id }, null, { rotated: true });
  work.emit(current.org_id, { type: 'webhook.changed', webhookId: current.id, change: 'updated' });
  return { secret };
}

/**
 * Puts a delivery at the end of the endpoint's queue and wakes the dispatcher at commit. A person
 * asking for a delivery means the endpoint is probably back: retries waiting ahead of it are due now.
 */
async function enqueue(work: Work, endpoint: EndpointRow, d: { eventId: string; eventType: string; body: string; redeliveryOf: string | null }) {
  const { em } = work;
  if (!endpoint.enabled) throw precondition('this webhook is disabled; enable it first');
  const id = randomUUID();
  await em.execute(
    `insert into webhook_delivery (id, endpoint_id, org_id, event_id, event_type, body, status, attempts, next_attempt_at, redelivery_of, created_at)
     values (?, ?, ?, ?, ?, ?, 'pending', 0, now(), ?, now())`,
    [id, endpoint.id, endpoint.org_id, d.eventId, d.eventType, d.body, d.redeliveryOf],
  );
  await em.execute(`update webhook_delivery set next_attempt_at = now() where endpoint_id = ? and status = 'pending' and next_attempt_at > now()`, [endpoint.id]);
  await em.execute('select pg_notify(?, ?)', [WEBHOOK_CHANNEL, endpoint.id]);
  work.emit(endpoint.org_id, { type: 'webhook.delivery', webhookId: endpoint.id, deliveryId: id, status: 'pending' }, { store: false });
  const rows = await em.execute<DeliveryRow[]>(`select ${DELIVERY_COLUMNS} from webhook_delivery where id = ?`, [id]);
  return deliveryView(rows[0]!);
}

export async function sendTestWebhook(work: Work, webhookId: string) {
  const endpoint = await endpointForUpdate(work.em, webhookId);
  const eventId = randomUUID();
  const body = webhookBody(eventId, endpoint.org_id, { type: WEBHOOK_TEST_EVENT, webhookId: endpoint.id }, new Date().toISOString());
  return enqueue(work, endpoint, { eventId, eventType: WEBHOOK_TEST_EVENT, body, redeliveryOf: null });
}

/** The same event (same body, same `id`, a fresh signature) once more, as a new entry of the log. */
export async function redeliverWebhook(work: Work, deliveryId: string) {
  const rows = await work.em.execute<DeliveryRow[]>(`select ${DELIVERY_COLUMNS} from webhook_delivery where id = ?`, [deliveryId]);
  const original = rows[0];
  if (!original) throw notFound('delivery');
  if (original.status === 'pending') throw conflict('this delivery is still pending; it will be attempted again by itself');
  const endpoint = await endpointForUpdate(work.em, original.endpoint_id);
  return enqueue(work, endpoint, { eventId: original.event_id, eventType: original.event_type, body: original.body, redeliveryOf: original.id });
}

/** The endpoint's deliveries, newest first; `cursor` is the `seq` of the last one of the previous page. */
export async function listDeliveries(em: EntityManager, input: { webhookId: string; cursor?: string | null; limit: number }) {
  const rows = await em.execute<DeliveryRow[]>(
    `select ${DELIVERY_COLUMNS} from webhook_delivery where endpoint_id = ? and (?::bigint is null or seq < ?::bigint) order by seq desc limit ?`,
    [input.webhookId, input.cursor ?? null, input.cursor ?? null, input.limit + 1],
  );
  const items = rows.slice(0, input.limit).map(deliveryView);
  return { items, nextCursor: rows.length > input.limit ? items[items.length - 1]!.seq : null };
}
