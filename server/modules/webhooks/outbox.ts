/**
 * The webhook outbox: when a command's events are published (server/events/unit-of-work.ts), one
 * delivery row per event and subscribed endpoint is inserted in the same transaction, after the
 * organization's event lock is held. So a delivery exists exactly when its event committed (never
 * lost, never doubled: no second writer, no scan), and an endpoint's stored events get increasing
 * `seq` in their commit order. The NOTIFY on WEBHOOK_CHANNEL wakes a dispatcher at commit
 * (dispatcher.ts); nothing here touches the network.
 */
import { randomUUID } from 'node:crypto';
import type { OrgEvent } from '../../../shared/events.js';
import { isWebhookEventType } from '../../../shared/webhooks.js';
import type { Sql } from '../../events/unit-of-work.js';

export const WEBHOOK_CHANNEL = 'webhook_deliveries';

export interface OutboxEvent {
  orgId: string;
  event: OrgEvent;
  /** The event's time (ISO), as the live stream carries it. */
  at: string;
}

/** The exact JSON a delivery POSTs: `{id, type, orgId, createdAt, data}` (data: the event's fields). */
export function webhookBody(eventId: string, orgId: string, event: { type: string } & Record<string, unknown>, createdAt: string): string {
  const { type, ...data } = event;
  return JSON.stringify({ id: eventId, type, orgId, createdAt, data });
}

/** One delivery row to be, per event a webhook may carry (the endpoints are joined in SQL). */
export interface OutboxRow {
  ord: number;
  event_id: string;
  org_id: string;
  type: string;
  body: string;
}

/** The outbox rows of `events`: those a webhook may carry, in order. */
export function outboxRows(events: readonly OutboxEvent[]): OutboxRow[] {
  const rows: OutboxRow[] = [];
  for (const e of events) {
    if (!isWebhookEventType(e.event.type)) continue;
    const eventId = randomUUID();
    rows.push({ ord: rows.length, event_id: eventId, org_id: e.orgId, type: e.event.type, body: webhookBody(eventId, e.orgId, e.event as never, e.at) });
  }
  return rows;
}

/**
 * The outbox as CTEs of a larger statement (the unit of work's publishing one): `webhook_ev` (the
 * rows, its one `?` parameter: outboxRows as JSON) and `webhook_ins` (one delivery per row and
 * enabled, subscribed endpoint). `after`, when given, names a one-row CTE joined in so that no
 * delivery is inserted (its `seq` drawn) before that CTE ran: the organization's event lock.
 * WEBHOOK_WAKE is the matching expression for the main query (one `?`: WEBHOOK_CHANNEL).
 */
export function outboxCtes(after: string | null): string {
  return `webhook_ev as (select * from jsonb_to_recordset(?::jsonb) as r(ord int, event_id uuid, org_id uuid, type varchar, body text)),
     webhook_ins as (
       insert into webhook_delivery (id, endpoint_id, org_id, event_id, event_type, body, status, attempts, next_attempt_at, created_at)
       select gen_random_uuid(), e.id, ev.org_id, ev.event_id, ev.type, ev.body, 'pending', 0, now(), now()
       from webhook_ev ev ${after ? `cross join ${after}` : ''}
         join webhook_endpoint e on e.org_id = ev.org_id and e.enabled and (ev.type = any(e.events) or '*' = any(e.events))
       order by ev.ord, e.id
       returning endpoint_id)`;
}
/** Wakes a dispatcher per endpoint that got deliveries (a scalar subquery over `webhook_ins`). */
export const WEBHOOK_WAKE = `(select count(*) from (select pg_notify(?, endpoint_id::text) from (select distinct endpoint_id from webhook_ins) queued) woken)`;

/** Inserts the deliveries of `events` (those a webhook may carry) for every enabled, subscribed endpoint. */
export async function queueWebhookDeliveries(tx: Sql, events: readonly OutboxEvent[]): Promise<void> {
  const rows = outboxRows(events);
  if (rows.length === 0) return;
  await tx.execute(`with ${outboxCtes(null)} select ${WEBHOOK_WAKE}`, [JSON.stringify(rows), WEBHOOK_CHANNEL]);
}
