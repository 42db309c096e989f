/**
 * Webhooks (docs/webhooks.md): the event types an endpoint may subscribe to (the live stream's,
 * less the dashboard's own: presence, webhook delivery progress) and the input schemas shared by
 * the server and the dashboard's form.
 */
import { z } from 'zod';
import { id } from './schemas.js';
import type { OrgEventType } from './events.js';

/** Every event type a webhook can carry, with what it means (the dashboard shows these). */
export const WEBHOOK_EVENT_TYPES = {
  'member.added': 'A member joined',
  'member.updated': "A member's role changed",
  'member.removed': 'A member was removed or left',
  'invitation.created': 'An invitation was sent',
  'invitation.revoked': 'An invitation was revoked',
  'invitation.accepted': 'An invitation was accepted',
  'project.created': 'A project was created',
  'project.updated': 'A project was renamed or changed',
  'project.deleted': 'A project was deleted',
  'organization.updated': 'Settings changed (name, billing email, retention, plan)',
  'credits.changed': 'The credit balance changed',
  'billing.updated': 'Billing changed (payment methods, subscription)',
  'budget.alert': 'A budget alert fired',
  'limit.alert': 'A spend limit (key, member budget, daily or monthly cap) reached 50, 80 or 100%',
  'auto_top_up.failed': 'An auto top-up failed',
  usage: 'Usage summary (requests and cost since the last one)',
  'apiKey.changed': 'An API key was created, revoked or transferred',
  'providerKey.changed': 'A provider key was added, changed or deleted',
  'webhook.changed': 'A webhook endpoint was added, changed, deleted or disabled',
} as const satisfies Partial<Record<OrgEventType, string>>;

export type WebhookEventType = keyof typeof WEBHOOK_EVENT_TYPES;
/** Sent only by `webhook.sendTest`. */
export const WEBHOOK_TEST_EVENT = 'webhook.test';

export function isWebhookEventType(type: string): type is WebhookEventType {
  return Object.hasOwn(WEBHOOK_EVENT_TYPES, type);
}

/** The header a delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-gateway-signature';

export const webhookUrl = z
  .url({ protocol: /^https?$/, message: 'the endpoint URL must be an http(s) URL' })
  .max(1000, { message: 'the endpoint URL must be at most 1000 characters' });
export const webhookEvents = z
  .array(z.string().refine((t) => t === '*' || isWebhookEventType(t), { message: 'not a webhook event type (see docs/webhooks.md), nor *' }))
  .min(1, { message: 'choose at least one event type (or *)' })
  .max(50)
  .transform((types) => (types.includes('*') ? ['*'] : [...new Set(types)].sort()));

export const webhookListInput = z.object({ orgId: id });
export const webhookCreateInput = z.object({ orgId: id, url: webhookUrl, events: webhookEvents });
export const webhookUpdateInput = z.object({ webhookId: id, url: webhookUrl.optional(), events: webhookEvents.optional(), enabled: z.boolean().optional() });
export const webhookRef = z.object({ webhookId: id });
export const webhookDeliveriesInput = z.object({ webhookId: id, cursor: z.string().regex(/^\d{1,19}$/).nullish(), limit: z.number().int().min(1).max(100).default(25) });
export const webhookRedeliverInput = z.object({ deliveryId: id });
