/** Types of the events `live.organization` streams. */
import type { Role } from './permissions.js';

export interface Viewer { userId: string; name: string; page: string }

export type OrgEvent =
  | { type: 'member.added'; userId: string; email: string; name: string; role: Role }
  | { type: 'member.updated'; userId: string; role: Role; previousRole: Role }
  | { type: 'member.removed'; userId: string; reason: 'removed' | 'left' }
  | { type: 'invitation.created'; invitationId: string; email: string; role: Role }
  | { type: 'invitation.revoked'; invitationId: string; email: string }
  | { type: 'invitation.accepted'; invitationId: string; email: string }
  | { type: 'invitation.declined'; invitationId: string; email: string }
  | { type: 'project.created'; projectId: string; name: string }
  | { type: 'project.updated'; projectId: string; name: string }
  | { type: 'project.deleted'; projectId: string }
  | { type: 'organization.updated'; version: number; name: string; billingEmail: string | null; retentionLevel: 'none' | 'retain'; plan: string }
  | { type: 'organization.deleted' }
  | { type: 'credits.changed'; credits: string }
  | { type: 'billing.updated'; reason: string }
  | { type: 'budget.alert'; kind: 'balance_below' | 'monthly_spend_above'; threshold: string; value: string }
  | { type: 'auto_top_up.failed'; reason: string; disabled: boolean }
  | { type: 'usage'; requests: number; cost: string }
  | { type: 'apiKey.changed'; projectId: string; apiKeyId: string; change: 'created' | 'revoked' | 'transferred' | 'updated' | 'rolled' }
  | { type: 'providerKey.changed'; providerKeyId: string; change: 'created' | 'updated' | 'deleted' }
  | { type: 'webhook.changed'; webhookId: string; change: 'created' | 'updated' | 'deleted' | 'disabled' }
  /** Dashboard only (never sent to webhooks): a delivery attempt's outcome, for the live delivery log. */
  | { type: 'webhook.delivery'; webhookId: string; deliveryId: string; status: 'pending' | 'delivered' | 'failed' }
  | { type: 'presence'; viewers: Viewer[] };

export type OrgEventType = OrgEvent['type'];
/** An event as delivered: with its id and the actor. */
export type LiveEvent = OrgEvent & { orgId: string; actorId: string | null; at: string };
