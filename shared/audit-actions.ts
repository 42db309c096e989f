/**
 * Every action the server writes to an organization's audit log (`work.audit(orgId, action, ...)`),
 * named in words: one map, used by the audit page (sentence, filter groups) and checked by
 * tests/unit/audit-actions.test.ts against the server's audit writes, so a new action cannot
 * appear as a raw id. The sentence reads after the actor's name ("Ana · Created project “API”").
 */

/** What an entry carries that a sentence may quote (the before/after values of the entry). */
export interface AuditFacts {
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export type AuditGroup = 'organization' | 'projects' | 'members' | 'apiKeys' | 'providerKeys' | 'webhooks' | 'billing';

interface AuditAction {
  group: AuditGroup;
  /** A short sentence for the filter list. */
  label: string;
  /** The sentence shown for one entry (may quote its values). */
  sentence: (facts: AuditFacts) => string;
}

/** A value of the entry quoted in a sentence: the after value, else the before one. */
function pick(f: AuditFacts, key: string): string | null {
  const v = f.after?.[key] ?? f.before?.[key];
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null;
}
const quoted = (v: string | null) => (v ? ` “${v}”` : '');
const dollars = (v: string | null) => (v ? ` of $${v.replace(/^-/, '')}` : '');
const ROLE_WORDS: Record<string, string> = { owner: 'Owner', admin: 'Admin', developer: 'Developer' };
const role = (v: string | null) => (v ? ROLE_WORDS[v] ?? v : 'a role');

const fixed = (group: AuditGroup, label: string): AuditAction => ({ group, label, sentence: () => label });

export const AUDIT_ACTIONS: Record<string, AuditAction> = {
  'organization.created': fixed('organization', 'Created the organization'),
  'organization.updated': {
    group: 'organization',
    label: 'Changed organization settings',
    sentence: (f) => {
      const keys = Object.keys(f.after ?? {});
      if (keys.length === 1 && keys[0] === 'name') return `Renamed the organization to${quoted(pick(f, 'name'))}`;
      if (keys.length === 1 && keys[0] === 'retentionLevel') return f.after?.retentionLevel === 'retain' ? 'Turned on keeping request bodies' : 'Turned off keeping request bodies';
      if (keys.length === 1 && keys[0] === 'billingEmail') return 'Changed the billing email';
      return 'Changed organization settings';
    },
  },
  'organization.deleted': fixed('organization', 'Deleted the organization'),

  'project.created': { group: 'projects', label: 'Created a project', sentence: (f) => `Created project${quoted(pick(f, 'name'))}` },
  'project.updated': {
    group: 'projects',
    label: 'Updated a project',
    sentence: (f) => ('name' in (f.after ?? {}) ? `Renamed project${quoted(typeof f.before?.name === 'string' ? f.before.name : null)} to${quoted(pick(f, 'name'))}` : 'Changed the settings of a project'),
  },
  'project.deleted': { group: 'projects', label: 'Deleted a project', sentence: (f) => `Deleted project${quoted(pick(f, 'name'))}` },

  'invitation.created': { group: 'members', label: 'Invited a member', sentence: (f) => `Invited ${pick(f, 'email') ?? 'someone'} as ${role(pick(f, 'role'))}` },
  'invitation.revoked': { group: 'members', label: 'Revoked an invitation', sentence: (f) => `Revoked the invitation of ${pick(f, 'email') ?? 'someone'}` },
  'invitation.accepted': { group: 'members', label: 'Accepted an invitation', sentence: () => 'Accepted an invitation and joined' },
  'invitation.declined': { group: 'members', label: 'Declined an invitation', sentence: (f) => `${pick(f, 'email') ?? 'Someone'} declined the invitation` },
  'member.added': { group: 'members', label: 'Added a member', sentence: (f) => `Added ${pick(f, 'email') ?? 'a member'} as ${role(pick(f, 'role'))}` },
  'member.role_changed': {
    group: 'members',
    label: "Changed a member's role",
    sentence: (f) => `Changed a member's role from ${role(typeof f.before?.role === 'string' ? f.before.role : null)} to ${role(typeof f.after?.role === 'string' ? f.after.role : null)}`,
  },
  'member.removed': { group: 'members', label: 'Removed a member', sentence: (f) => `Removed ${pick(f, 'email') ?? 'a member'} from the organization` },
  'member.left': fixed('members', 'Left the organization'),
  'member.budget_changed': {
    group: 'members',
    label: "Changed a member's budget",
    sentence: (f) => {
      const b = f.after?.budget as { amount?: string; period?: string } | null | undefined;
      const words: Record<string, string> = { lifetime: 'lifetime', day: 'daily', week: 'weekly', month: 'monthly' };
      return b?.amount ? `Set a member's ${words[b.period ?? ''] ?? ''} budget to $${b.amount}` : "Removed a member's budget";
    },
  },

  'apiKey.created': { group: 'apiKeys', label: 'Created an API key', sentence: (f) => `Created API key${quoted(pick(f, 'name'))}` },
  'apiKey.revoked': { group: 'apiKeys', label: 'Revoked an API key', sentence: (f) => `Revoked API key${quoted(pick(f, 'name'))}` },
  'apiKey.updated': { group: 'apiKeys', label: 'Changed an API key’s settings', sentence: (f) => `Changed the settings of API key${quoted(pick(f, 'name'))}` },
  'apiKey.rolled': { group: 'apiKeys', label: 'Replaced an API key’s secret', sentence: (f) => `Replaced the secret of API key${quoted(pick(f, 'name'))}` },
  'apiKey.transferred': { group: 'apiKeys', label: 'Transferred an API key', sentence: (f) => `Transferred API key${quoted(pick(f, 'name'))} to another member` },

  'providerKey.created': { group: 'providerKeys', label: 'Added a provider key', sentence: (f) => `Added provider key${quoted(pick(f, 'name'))}` },
  'providerKey.updated': { group: 'providerKeys', label: 'Updated a provider key', sentence: (f) => `Updated provider key${quoted(pick(f, 'name'))}` },
  'providerKey.rotated': { group: 'providerKeys', label: 'Replaced a provider key’s secret', sentence: (f) => `Replaced the secret of provider key${quoted(pick(f, 'name'))}` },
  'providerKey.deleted': { group: 'providerKeys', label: 'Deleted a provider key', sentence: (f) => `Deleted provider key${quoted(pick(f, 'name'))}` },

  'webhook.created': { group: 'webhooks', label: 'Added a webhook', sentence: (f) => `Added a webhook${pick(f, 'url') ? ` to ${pick(f, 'url')}` : ''}` },
  'webhook.updated': { group: 'webhooks', label: 'Updated a webhook', sentence: () => 'Updated a webhook' },
  'webhook.deleted': { group: 'webhooks', label: 'Deleted a webhook', sentence: (f) => `Deleted the webhook${pick(f, 'url') ? ` to ${pick(f, 'url')}` : ''}` },
  'webhook.secretRotated': fixed('webhooks', 'Replaced a webhook’s signing secret'),
  'webhook.disabled': fixed('webhooks', 'A webhook was turned off after failed deliveries'),

  'billing.purchase_started': { group: 'billing', label: 'Started a credit purchase', sentence: (f) => `Started a credit purchase${dollars(pick(f, 'amount'))}` },
  'billing.purchase_refunded': { group: 'billing', label: 'Refunded a purchase', sentence: (f) => `Refunded a purchase${dollars(pick(f, 'amount'))}` },
  'billing.refund_refused': fixed('billing', 'A refund was refused'),
  'billing.refund_failed': fixed('billing', 'A refund failed at the payment provider'),
  'billing.usage_credited_back': { group: 'billing', label: 'Credited back usage', sentence: (f) => `Credited back usage${dollars(pick(f, 'amount'))}` },
  'billing.plan_changed': {
    group: 'billing',
    label: 'Changed the plan',
    sentence: (f) => {
      const plan = typeof f.after?.plan === 'string' ? f.after.plan : null;
      const name = plan ? plan.charAt(0).toUpperCase() + plan.slice(1) : null;
      const cycle = plan === 'pro' && (f.after?.billingCycle === 'monthly' || f.after?.billingCycle === 'yearly') ? `, billed ${f.after.billingCycle}` : '';
      return name ? `Changed the plan to ${name}${cycle}${f.after?.by === 'operator' ? ' (by the operator)' : ''}` : 'Changed the plan';
    },
  },
  'billing.subscription_canceled': fixed('billing', 'Canceled the subscription at the end of the period'),
  'billing.subscription_resumed': fixed('billing', 'Resumed the subscription (it renews again)'),
  'billing.auto_top_up_updated': {
    group: 'billing',
    label: 'Changed auto top-up',
    sentence: (f) => (f.after?.enabled === false && f.before?.enabled === true ? 'Turned off auto top-up' : f.after?.enabled === true && f.before?.enabled === false ? 'Turned on auto top-up' : 'Changed auto top-up'),
  },
  'billing.auto_top_up_disabled': fixed('billing', 'Auto top-up was turned off after failed charges'),
  'billing.budget_alert_set': {
    group: 'billing',
    label: 'Set a budget alert',
    sentence: (f) => (f.after?.threshold === null ? 'Removed a budget alert' : 'Set a budget alert'),
  },
  'billing.payment_method_default': fixed('billing', 'Changed the default payment method'),
  'billing.payment_method_removed': fixed('billing', 'Removed a payment method'),
};

export const AUDIT_GROUP_LABELS: Record<AuditGroup, string> = {
  organization: 'Organization',
  projects: 'Projects',
  members: 'Members and invitations',
  apiKeys: 'API keys',
  providerKeys: 'Provider keys',
  webhooks: 'Webhooks',
  billing: 'Billing',
};

/** The sentence for an entry; an action this map does not know (newer server) reads as its id in words. */
export function describeAuditAction(action: string, facts: AuditFacts): string {
  const known = AUDIT_ACTIONS[action];
  if (known) return known.sentence(facts);
  const words = action.replace(/[._]/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Field names in words, for the changes column. */
export const AUDIT_FIELD_LABELS: Record<string, string> = {
  name: 'Name',
  billingEmail: 'Billing email',
  retentionLevel: 'Request bodies',
  role: 'Role',
  email: 'Email',
  mode: 'Mode',
  cachingEnabled: 'Caching',
  cacheTtlSeconds: 'Cache lifetime (s)',
  enabled: 'Enabled',
  threshold: 'Threshold',
  amount: 'Amount',
  plan: 'Plan',
  billingCycle: 'Billing cycle',
  kind: 'Kind',
  reason: 'Reason',
  refundId: 'Refund',
  provider: 'Provider',
  baseUrl: 'Base URL',
  last4: 'Key ending',
  status: 'Status',
  prefix: 'Key prefix',
  projectId: 'Project',
  rpmLimit: 'Requests per minute',
  createdBy: 'Owner',
  apiKeysRevoked: 'API keys revoked',
  apiKeysTransferred: 'API keys transferred',
  apiKeysTransferredTo: 'Keys transferred to',
  cancelAtPeriodEnd: 'Cancels at period end',
  periodEnd: 'Period ends',
  spent: 'Spent',
  rotated: 'Secret replaced',
  by: 'By',
  id: 'Payment method',
  url: 'URL',
  expiresAt: 'Expires',
  spendLimit: 'Spend limit',
  allowedModels: 'Allowed models',
  allowedProviders: 'Allowed providers',
  graceSeconds: 'Old secret valid for (s)',
  events: 'Events',
};

/**
 * The fields an entry changed: for an update, only those whose value differs; for a creation or
 * removal (one side empty), every field it recorded.
 */
export function changedFields(facts: AuditFacts): { key: string; before: unknown; after: unknown; hadBefore: boolean; hasAfter: boolean }[] {
  const before = facts.before ?? {};
  const after = facts.after ?? {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const both = facts.before !== null && facts.after !== null;
  return keys
    .filter((k) => !(both && k in before && k in after && JSON.stringify(before[k]) === JSON.stringify(after[k])))
    // In an update, a field only on the "before" side is context (e.g. the key's name), not a change.
    .filter((k) => !(both && !(k in after)))
    // A creation's or removal's empty values say nothing.
    .filter((k) => both || ((facts.after ?? facts.before ?? {})[k] ?? null) !== null)
    .map((k) => ({ key: k, before: before[k], after: after[k], hadBefore: k in before, hasAfter: k in after }));
}
