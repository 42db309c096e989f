/** Types of the events `live.organization` streams. */
import type { Role } from './permissions.js';

export interface Viewer { userId: string; name: string; page: string }

export type OrgEvent =
  | { type: 'member.added'; userId: string; email: string; name: string; role: Role }
  | { type: 'member.updated'; userId: string; role: Role; previousRole: Role }
  | { type: 'member.removed'; userId: string; reason: 'removed' | 'left' }
  /** team.setBudget: the member's own budget (null: removed; the developers' default may then apply). */
  | { type: 'member.budget_changed'; userId: string; budget: { amount: string; period: 'lifetime' | 'day' | 'week' | 'month' } | null }
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
  /** A spend limit reached 50, 80 or 100% of its amount in its period (server/modules/limits/alerts.ts). */
  | LimitAlertEvent
  | { type: 'usage'; requests: number; cost: string }
  | { type: 'apiKey.changed'; projectId: string; apiKeyId: string; change: 'created' | 'revoked' | 'transferred' | 'updated' | 'rolled' }
  | { type: 'providerKey.changed'; providerKeyId: string; change: 'created' | 'updated' | 'deleted' }
  | { type: 'webhook.changed'; webhookId: string; change: 'created' | 'updated' | 'deleted' | 'disabled' }
  /** Dashboard only (never sent to webhooks): a delivery attempt's outcome, for the live delivery log. */
  | { type: 'webhook.delivery'; webhookId: string; deliveryId: string; status: 'pending' | 'delivered' | 'failed' }
  | { type: 'presence'; viewers: Viewer[] };

/** What a spend limit applies to: an API key, a member's budget, the organization's daily or monthly cap. */
export type LimitScope = 'apiKey' | 'member' | 'dailyCap' | 'monthlyCap';
export const LIMIT_ALERT_THRESHOLDS = [50, 80, 100] as const;
export type LimitAlertThreshold = (typeof LIMIT_ALERT_THRESHOLDS)[number];
export interface LimitAlertEvent {
  type: 'limit.alert';
  scope: LimitScope;
  /** The key's id (apiKey), the member's user id (member), the organization's id (caps). */
  subjectId: string;
  /** The key's or the member's name; the organization's for caps. */
  name: string;
  /** Who the limit concerns besides owners: the key's creator or the member (null for caps). */
  userId: string | null;
  /** The key's project (apiKey only). */
  projectId: string | null;
  threshold: LimitAlertThreshold;
  /** Decimal dollars spent in the period, and the limit. */
  spent: string;
  limit: string;
  /** When the period ends and the limit resets (ISO); null for a lifetime limit. */
  resetsAt: string | null;
}

export type OrgEventType = OrgEvent['type'];
/** An event as delivered: with its id and the actor. */
export type LiveEvent = OrgEvent & { orgId: string; actorId: string | null; at: string };
