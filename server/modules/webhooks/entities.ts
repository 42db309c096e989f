import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';

/** An organization's webhook endpoint: where its events are POSTed, signed with `sealedSecret` (SecretBox). */
export const WebhookEndpoint = defineEntity({
  name: 'WebhookEndpoint',
  tableName: 'webhook_endpoint',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    url: p.string().length(1000),
    /** Event types delivered (`*`: every type). */
    events: p.array<string>(),
    enabled: p.boolean(),
    /** Why the endpoint was switched off by the dispatcher (failing for too long); null when enabled or switched off by hand. */
    disabledReason: p.string().length(500).nullable(),
    /** When the current run of failed attempts began (null after a success). */
    failingSince: p.datetime().nullable(),
    sealedSecret: p.text(),
    /** The dispatcher holding this endpoint's queue (one sender at a time, across instances) and until when. */
    leaseToken: p.uuid().nullable(),
    leaseUntil: p.datetime().nullable(),
    createdBy: references(User, 'created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
  indexes: [{ properties: ['orgId'] }],
});
export type WebhookEndpointEntity = InferEntity<typeof WebhookEndpoint>;

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/**
 * One event for one endpoint (the outbox row, written in the event's own transaction), and its
 * delivery log: attempts, the last response code and error. `seq` orders an endpoint's queue.
 */
export const WebhookDelivery = defineEntity({
  name: 'WebhookDelivery',
  tableName: 'webhook_delivery',
  properties: {
    id: p.uuid().primary(),
    seq: p.bigint('string').autoincrement(),
    endpointId: references(WebhookEndpoint, 'endpoint_id').deleteRule('cascade'),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    /** The event's id (the body's `id`), the same for every endpoint and every redelivery of it. */
    eventId: p.uuid(),
    eventType: p.string().length(100),
    /** The exact JSON body POSTed (what the signature covers, with the timestamp). */
    body: p.text(),
    status: p.enum([...WEBHOOK_DELIVERY_STATUSES]),
    attempts: p.integer(),
    nextAttemptAt: p.datetime(),
    lastAttemptAt: p.datetime().nullable(),
    responseStatus: p.integer().nullable(),
    lastError: p.string().length(1000).nullable(),
    durationMs: p.integer().nullable(),
    deliveredAt: p.datetime().nullable(),
    /** The delivery this one repeats (manual redelivery). */
    redeliveryOf: p.uuid().nullable(),
    createdAt: p.datetime(),
  },
  indexes: [
    { properties: ['endpointId', 'seq'] },
    { properties: ['status', 'nextAttemptAt'] },
  ],
});
export type WebhookDeliveryEntity = InferEntity<typeof WebhookDelivery>;
