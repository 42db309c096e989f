/**
 * The public procedure names in shared/API.md (and the additions in docs/api.md) are a contract
 * for other apps: each must stay on the router with its kind, and the key inputs must keep
 * accepting their documented minimum fields. Renaming, removing or narrowing one fails here.
 */
import { describe, expect, it } from 'vitest';
import { listProcedures } from '../helpers/rpc.js';

type Kind = 'query' | 'mutation' | 'subscription';
const q: Kind = 'query';
const m: Kind = 'mutation';
const s: Kind = 'subscription';

const CONTRACT: Record<string, Kind> = {
  'auth.signUp': m, 'auth.signIn': m, 'auth.signOut': m, 'auth.me': q,
  'auth.twoFactor.setup': m, 'auth.twoFactor.enable': m, 'auth.twoFactor.disable': m,
  'auth.twoFactor.regenerateRecoveryCodes': m, 'auth.twoFactor.status': q, 'auth.signInWithLink': m,
  'auth.tokens.create': m, 'auth.tokens.list': q, 'auth.tokens.revoke': m,
  'auth.requestPasswordReset': m, 'auth.resetPassword': m, 'auth.changePassword': m, 'auth.changeEmail': m,
  'auth.confirmEmail': m, 'auth.verifyEmail': m, 'auth.sendVerificationEmail': m, 'auth.updateProfile': m,
  'auth.sessions.list': q, 'auth.sessions.revokeOthers': m, 'auth.sessions.revoke': m, 'auth.pendingInvitations': q,
  'team.acceptPendingInvitation': m, 'team.declineInvitation': m,
  'organization.list': q, 'organization.create': m, 'organization.get': q, 'organization.update': m,
  'organization.delete': m, 'organization.deletionPreview': q,
  'project.list': q, 'project.create': m, 'project.update': m, 'project.delete': m,
  'team.members': q, 'team.invite': m, 'team.invitations': q, 'team.revokeInvitation': m,
  'team.acceptInvitation': m, 'team.updateRole': m, 'team.removeMember': m, 'team.leave': m,
  'team.setBudget': m,
  'apiKey.list': q, 'apiKey.create': m, 'apiKey.revoke': m, 'apiKey.update': m, 'apiKey.roll': m,
  'providerKey.list': q, 'providerKey.create': m, 'providerKey.update': m, 'providerKey.delete': m,
  'webhook.list': q, 'webhook.create': m, 'webhook.update': m, 'webhook.delete': m, 'webhook.rotateSecret': m,
  'webhook.sendTest': m, 'webhook.deliveries': q, 'webhook.redeliver': m,
  'billing.overview': q, 'billing.transactions': q, 'billing.purchaseCredits': m, 'billing.updateAutoTopUp': m,
  'billing.changePlan': m, 'billing.cancelSubscription': m,
  'billing.paymentMethods.list': q, 'billing.paymentMethods.add': m, 'billing.paymentMethods.setDefault': m,
  'billing.paymentMethods.remove': m, 'billing.refund': m, 'billing.budgetAlerts.list': q, 'billing.budgetAlerts.set': m,
  'analytics.summary': q, 'analytics.timeseries': q, 'analytics.breakdown': q,
  'logs.list': q, 'audit.list': q,
  // docs/api.md: request log, audit log and transactions (issue 13).
  'logs.get': q, 'audit.actors': q, 'billing.transactionsGrouped': q, 'billing.transactionsCsv': q,
  // docs/api.md: plans and subscriptions (issue 13 items 9 and 10).
  'organization.limits': q, 'organization.creationLimit': q, 'billing.resumeSubscription': m, 'billing.invoices': q,
  'live.organization': s, 'presence.update': m,
  // docs/api.md: provider health (issue 11).
  'providerHealth.get': q,
};

const ORG = '11111111-1111-4111-8111-111111111111';
const PROJECT = '22222222-2222-4222-8222-222222222222';

/** The documented minimum input of a few procedures other apps call most. */
const MINIMUM_INPUTS: Record<string, unknown[]> = {
  'organization.update': [{ orgId: ORG, version: 1 }, { orgId: ORG, version: 1, name: 'Acme', billingEmail: 'billing@example.com', retentionLevel: 'none' }],
  'apiKey.create': [{ projectId: PROJECT, name: 'ci' }],
  'team.setBudget': [{ orgId: ORG, userId: PROJECT, amount: '25', period: 'month' }, { orgId: ORG, userId: PROJECT, amount: null, period: 'day' }],
  'apiKey.update': [{ apiKeyId: PROJECT, name: 'ci' }, { apiKeyId: PROJECT, spendLimit: { amount: '5', period: 'week' } }, { apiKeyId: PROJECT, spendLimit: null }, { apiKeyId: PROJECT, expiresAt: new Date(Date.now() + 86_400_000), rpmLimit: 60, allowedModels: ['anthropic/*'], allowedProviders: ['openai'], enabled: false }, { apiKeyId: PROJECT, expiresAt: null, rpmLimit: null, allowedModels: null, allowedProviders: null }],
  'apiKey.roll': [{ apiKeyId: PROJECT }, { apiKeyId: PROJECT, graceSeconds: 3600 }],
  'webhook.create': [{ orgId: ORG, url: 'https://hooks.example.com/gateway', events: ['*'] }, { orgId: ORG, url: 'https://hooks.example.com/gateway', events: ['credits.changed', 'usage'] }],
  'webhook.deliveries': [{ webhookId: ORG }, { webhookId: ORG, cursor: '42' }],
  'billing.purchaseCredits': [{ orgId: ORG, amount: 10 }, { orgId: ORG, amount: '25.50' }],
  'live.organization': [{ orgId: ORG }, { orgId: ORG, lastEventId: '42' }, { orgId: ORG, lastEventId: null }],
  'organization.create': [{ name: 'Acme' }],
  'project.create': [{ orgId: ORG, name: 'Backend' }],
  'auth.tokens.create': [{ name: 'script' }],
  'billing.changePlan': [{ orgId: ORG, plan: 'pro', billingCycle: 'yearly' }, { orgId: ORG, plan: 'free' }],
  'billing.invoices': [{ orgId: ORG }, { orgId: ORG, cursor: 'in_1QxYz' }],
};

const procedures = new Map(listProcedures().map((p) => [p.path, p]));

describe('public API contract (shared/API.md)', () => {
  it.each(Object.entries(CONTRACT))('%s is a %s', (path, kind) => {
    expect(procedures.get(path)?.type, `${path} is missing from appRouter`).toBe(kind);
  });

  it.each(Object.entries(MINIMUM_INPUTS))('%s accepts its documented minimum input', (path, samples) => {
    const input = procedures.get(path)?.input;
    expect(input, `${path} has no input schema`).toBeDefined();
    for (const sample of samples) expect(input!.safeParse(sample).success, `${path} refuses ${JSON.stringify(sample)}`).toBe(true);
  });

  it('still refuses what the contract rules out', () => {
    expect(procedures.get('billing.purchaseCredits')!.input!.safeParse({ orgId: ORG, amount: 9 }).success).toBe(false);
    expect(procedures.get('organization.update')!.input!.safeParse({ orgId: ORG }).success).toBe(false);
  });
});
