/**
 * A small world for tests that walk the whole router: an organization with an owner, an admin and
 * a developer, plus an outsider (signed up, member of nothing of theirs), and ways to make fresh
 * organizations, projects and invitations for calls that destroy what they touch.
 * Also the fixture table: a valid input for every procedure, keyed by path.
 */
import { can, type Permission, type Role } from '../../shared/permissions.js';
import type { TestApp } from './app.js';
import { signUp, uniqueEmail } from './client.js';
import { raiseOrganizationLimit, sql } from './db-state.js';
import { call } from './rpc.js';

export type Person = Awaited<ReturnType<typeof signUp>>;
export type Actor = Role | 'outsider';
export const ACTORS: Actor[] = ['owner', 'admin', 'developer', 'outsider'];

export interface World {
  app: TestApp;
  people: Record<Actor, Person>;
  orgId: string;
  orgName: string;
  projectId: string;
  /** A new organization where owner, admin and developer hold their roles. */
  freshOrg(): Promise<{ id: string; name: string }>;
  freshProject(orgId?: string): Promise<string>;
  freshInvitation(orgId?: string): Promise<string>;
  /** A gateway API key in the shared org's project, created by `creator`. */
  freshApiKey(creator: Role): Promise<string>;
  /** A provider key (custom, OpenAI-compatible) in the shared org. */
  freshProviderKey(): Promise<string>;
  /** A webhook endpoint in the shared org (never reached: no job workers in the matrix world). */
  freshWebhook(): Promise<string>;
  /** A finished (failed) delivery of a fresh webhook in the shared org. */
  freshDelivery(): Promise<string>;
  /** The current settings version of an organization, read from the database. */
  version(orgId: string): Promise<number>;
  /**
   * An organization `actor` may damage with a `permission`-guarded call: a fresh one when the call
   * is permitted (it will succeed and destroy), the shared one when it must be refused anyway.
   */
  orgToDamage(actor: Actor, permission: Permission): Promise<{ id: string; name: string }>;
}

let serial = 0;

function lastDay() {
  const to = new Date();
  return { from: new Date(to.getTime() - 86_400_000), to };
}

export async function buildWorld(app: TestApp): Promise<World> {
  const [owner, admin, developer, outsider] = await Promise.all([
    signUp(app.url, 'Olga Owner'),
    signUp(app.url, 'Adam Admin'),
    signUp(app.url, 'Dora Developer'),
    signUp(app.url, 'Oscar Outsider'),
  ]);
  await raiseOrganizationLimit(app, owner!.user.id);
  const people: Record<Actor, Person> = { owner: owner!, admin: admin!, developer: developer!, outsider: outsider! };

  const join = async (orgId: string, who: Person, role: Role) => {
    const { inviteUrl } = await owner!.client.team.invite.mutate({ orgId, email: who.email, role });
    await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
  };
  const freshOrg = async () => {
    const name = `Fresh Org ${++serial}`;
    const { organization } = await owner!.client.organization.create.mutate({ name });
    await Promise.all([join(organization.id, admin!, 'admin'), join(organization.id, developer!, 'developer')]);
    return { id: organization.id, name };
  };
  const shared = await freshOrg();
  // The outsider has an organization of their own: being a member somewhere must not open others.
  await outsider!.client.organization.create.mutate({ name: 'Outsider Org' });
  const freshProject = async (orgId = shared.id) => (await owner!.client.project.create.mutate({ orgId, name: `Project ${++serial}` })).id;
  const projectId = await freshProject();
  const freshWebhook = async () => {
    // Earlier fixtures' endpoints go first: an organization holds at most 20.
    await sql(app, `delete from webhook_endpoint where org_id = ? and url like 'https://hooks.example.com/matrix-%'`, [shared.id]);
    const input = { orgId: shared.id, url: `https://hooks.example.com/matrix-${++serial}`, events: ['project.created'] };
    const created = await call(app.url, 'mutation', 'webhook.create', input, { cookie: owner!.cookieHeader() });
    if (!created.ok) throw new Error(`could not create a webhook: ${created.message}`);
    return (created.data as { webhook: { id: string } }).webhook.id;
  };
  return {
    app,
    people,
    orgId: shared.id,
    orgName: shared.name,
    projectId,
    freshOrg,
    freshProject,
    async freshInvitation(orgId = shared.id) {
      const { invitation } = await owner!.client.team.invite.mutate({ orgId, email: uniqueEmail('invitee'), role: 'developer' });
      return invitation.id;
    },
    async freshApiKey(creator) {
      const created = await call(app.url, 'mutation', 'apiKey.create', { projectId, name: `Key ${++serial}` }, { cookie: people[creator].cookieHeader() });
      if (!created.ok) throw new Error(`could not create an API key: ${created.message}`);
      return (created.data as { apiKey: { id: string } }).apiKey.id;
    },
    async freshProviderKey() {
      const input = { orgId: shared.id, provider: 'custom', name: `fixture-${++serial}`, baseUrl: 'https://llm.example.com/v1', key: 'sk-test-fixture-0123456789' };
      const created = await call(app.url, 'mutation', 'providerKey.create', input, { cookie: owner!.cookieHeader() });
      if (!created.ok) throw new Error(`could not create a provider key: ${created.message}`);
      return (created.data as { id: string }).id;
    },
    freshWebhook,
    async freshDelivery() {
      const webhookId = await freshWebhook();
      const sent = await call(app.url, 'mutation', 'webhook.sendTest', { webhookId }, { cookie: owner!.cookieHeader() });
      if (!sent.ok) throw new Error(`could not queue a test delivery: ${sent.message}`);
      const deliveryId = (sent.data as { id: string }).id;
      await sql(app, `update webhook_delivery set status = 'failed', attempts = 1 where id = ?`, [deliveryId]);
      return deliveryId;
    },
    async orgToDamage(actor, permission) {
      return actor !== 'outsider' && can(actor, permission) ? freshOrg() : shared;
    },
    async version(orgId) {
      const [row] = await sql<{ version: number }>(app, 'select version from organization where id = ?', [orgId]);
      return row!.version;
    },
  };
}

export interface Fixture {
  /** The permission API.md's roles table gives this action; the procedure's meta must match it. */
  permission: Permission;
  /** A valid input for this caller. Called right before each call, so destructive calls get fresh resources. */
  input(w: World, actor: Actor): Promise<unknown> | unknown;
  /** Subscriptions are exercised over WebSockets elsewhere; the matrix skips them. */
  subscription?: boolean;
}

/**
 * A valid input for every org-scoped procedure. A new org-scoped procedure without an entry here
 * fails the roles-matrix test: add one (with fresh resources if the call destroys what it touches).
 */
export const ORG_FIXTURES: Record<string, Fixture> = {
  'organization.get': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  'organization.update': { permission: 'org.rename', input: async (w) => ({ orgId: w.orgId, version: await w.version(w.orgId), billingEmail: uniqueEmail('billing') }) },
  'organization.deletionPreview': { permission: 'org.delete', input: (w) => ({ orgId: w.orgId }) },
  'organization.limits': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  'organization.delete': {
    permission: 'org.delete',
    input: async (w, actor) => {
      const org = await w.orgToDamage(actor, 'org.delete');
      return { orgId: org.id, confirmName: org.name };
    },
  },
  'project.list': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  'project.create': { permission: 'project.manage', input: (w) => ({ orgId: w.orgId, name: `Matrix project ${++serial}` }) },
  'project.update': { permission: 'project.manage', input: (w) => ({ projectId: w.projectId, name: `Renamed ${++serial}`, cachingEnabled: true }) },
  'project.delete': { permission: 'project.manage', input: async (w) => ({ projectId: await w.freshProject() }) },
  'team.members': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  'team.invitations': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  'team.invite': { permission: 'member.manage', input: (w) => ({ orgId: w.orgId, email: uniqueEmail('matrix'), role: 'developer' }) },
  'team.revokeInvitation': { permission: 'member.manage', input: async (w) => ({ invitationId: await w.freshInvitation() }) },
  'team.updateRole': { permission: 'member.manage', input: async (w, actor) => ({ orgId: (await w.orgToDamage(actor, 'member.manage')).id, userId: w.people.developer.user.id, role: 'admin' }) },
  'team.removeMember': { permission: 'member.manage', input: async (w, actor) => ({ orgId: (await w.orgToDamage(actor, 'member.manage')).id, userId: w.people.developer.user.id }) },
  'team.setBudget': { permission: 'member.manage', input: (w) => ({ orgId: w.orgId, userId: w.people.developer.user.id, amount: '12.5', period: 'month' }) },
  'team.leave': { permission: 'org.view', input: async (w, actor) => ({ orgId: (await w.orgToDamage(actor, 'org.view')).id }) },
  'audit.list': { permission: 'audit.view', input: (w) => ({ orgId: w.orgId }) },
  'audit.actors': { permission: 'audit.view', input: (w) => ({ orgId: w.orgId }) },
  'presence.update': { permission: 'live.subscribe', input: (w) => ({ orgId: w.orgId, page: 'overview' }) },
  'live.organization': { permission: 'live.subscribe', input: (w) => ({ orgId: w.orgId }), subscription: true },
  'billing.overview': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId }) },
  'billing.transactions': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId, limit: 10 }) },
  'billing.transactionsGrouped': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId, limit: 50 }) },
  'billing.transactionsCsv': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId }) },
  'billing.purchaseCredits': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, amount: 25 }) },
  // Not the defaults ($10, $50): the roles matrix checks that a permitted call changed them.
  'billing.updateAutoTopUp': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, enabled: false, threshold: 15, amount: 60 }) },
  'billing.changePlan': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, plan: 'pro', billingCycle: 'monthly' }) },
  'billing.cancelSubscription': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId }) },
  'billing.resumeSubscription': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId }) },
  'billing.invoices': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId }) },
  'billing.paymentMethods.list': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId }) },
  'billing.paymentMethods.add': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId }) },
  // No payment method exists: permitted callers get the domain's "payment method not found".
  'billing.paymentMethods.setDefault': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, paymentMethodId: 'pm_unknown' }) },
  'billing.paymentMethods.remove': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, paymentMethodId: 'pm_unknown' }) },
  'billing.refund': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, transactionId: '1', reason: 'matrix test' }) },
  'billing.budgetAlerts.list': { permission: 'billing.view', input: (w) => ({ orgId: w.orgId }) },
  'billing.budgetAlerts.set': { permission: 'billing.manage', input: (w) => ({ orgId: w.orgId, kind: 'balance_below', threshold: 5 }) },
  'apiKey.list': { permission: 'org.view', input: (w) => ({ projectId: w.projectId }) },
  'apiKey.create': { permission: 'apiKey.create', input: (w) => ({ projectId: w.projectId, name: `Matrix key ${++serial}` }) },
  // Each caller revokes a key of their own (revoking others' keys is a finer rule, tested apart).
  'apiKey.revoke': { permission: 'apiKey.create', input: async (w, actor) => ({ apiKeyId: await w.freshApiKey(actor === 'outsider' ? 'owner' : actor) }) },
  'apiKey.update': { permission: 'apiKey.create', input: async (w, actor) => ({ apiKeyId: await w.freshApiKey(actor === 'outsider' ? 'owner' : actor), name: `Renamed ${++serial}`, rpmLimit: 42 }) },
  'apiKey.roll': { permission: 'apiKey.create', input: async (w, actor) => ({ apiKeyId: await w.freshApiKey(actor === 'outsider' ? 'owner' : actor), graceSeconds: 60 }) },
  'providerKey.list': { permission: 'providerKey.manage', input: (w) => ({ orgId: w.orgId }) },
  'providerKey.create': { permission: 'providerKey.manage', input: (w) => ({ orgId: w.orgId, provider: 'custom', name: `matrix-${++serial}`, baseUrl: 'https://llm.example.com/v1', key: 'sk-test-matrix-0123456789' }) },
  'providerKey.update': { permission: 'providerKey.manage', input: async (w) => ({ providerKeyId: await w.freshProviderKey(), status: 'disabled' }) },
  'analytics.summary': { permission: 'org.view', input: (w) => ({ orgId: w.orgId, ...lastDay() }) },
  'analytics.timeseries': { permission: 'org.view', input: (w) => ({ orgId: w.orgId, projectId: w.projectId, bucket: 'hour', ...lastDay() }) },
  'analytics.breakdown': { permission: 'org.view', input: (w) => ({ orgId: w.orgId, by: 'model', ...lastDay() }) },
  'logs.list': { permission: 'org.view', input: (w) => ({ orgId: w.orgId, limit: 10 }) },
  'providerHealth.get': { permission: 'org.view', input: (w) => ({ orgId: w.orgId }) },
  // No request was logged: permitted callers get the domain's "log not found".
  'logs.get': { permission: 'org.view', input: (w) => ({ orgId: w.orgId, logId: '1' }) },
  'providerKey.delete': { permission: 'providerKey.manage', input: async (w) => ({ providerKeyId: await w.freshProviderKey() }) },
  'webhook.list': { permission: 'webhook.manage', input: (w) => ({ orgId: w.orgId }) },
  'webhook.create': { permission: 'webhook.manage', input: (w) => ({ orgId: w.orgId, url: `https://hooks.example.com/create-${++serial}`, events: ['*'] }) },
  'webhook.update': { permission: 'webhook.manage', input: async (w) => ({ webhookId: await w.freshWebhook(), enabled: false }) },
  'webhook.delete': { permission: 'webhook.manage', input: async (w) => ({ webhookId: await w.freshWebhook() }) },
  'webhook.rotateSecret': { permission: 'webhook.manage', input: async (w) => ({ webhookId: await w.freshWebhook() }) },
  'webhook.sendTest': { permission: 'webhook.manage', input: async (w) => ({ webhookId: await w.freshWebhook() }) },
  'webhook.deliveries': { permission: 'webhook.manage', input: async (w) => ({ webhookId: await w.freshWebhook() }) },
  'webhook.redeliver': { permission: 'webhook.manage', input: async (w) => ({ deliveryId: await w.freshDelivery() }) },
};

/**
 * Procedures that are not org-scoped (no meta.permission): who may call them. Every procedure of
 * the router is either here or in ORG_FIXTURES, so a new one cannot slip past the matrix unreviewed.
 */
export const PERSONAL_PROCEDURES: Record<string, { access: 'public' | 'authed'; input: (w: World) => unknown }> = {
  'auth.signUp': { access: 'public', input: () => ({ email: uniqueEmail('fixture'), password: 'correct horse battery', name: 'Fixture' }) },
  'auth.signIn': { access: 'public', input: (w) => ({ email: w.people.owner.email, password: 'correct horse battery' }) },
  'auth.signOut': { access: 'public', input: () => undefined },
  'auth.me': { access: 'public', input: () => undefined },
  'auth.twoFactor.setup': { access: 'authed', input: () => undefined },
  'auth.twoFactor.enable': { access: 'authed', input: () => ({ code: '123456' }) },
  'auth.twoFactor.disable': { access: 'authed', input: () => ({ code: '123456' }) },
  'auth.twoFactor.status': { access: 'authed', input: () => undefined },
  'auth.twoFactor.regenerateRecoveryCodes': { access: 'authed', input: () => ({ code: '123456' }) },
  'auth.signInWithLink': { access: 'public', input: () => ({ token: 'a'.repeat(39) }) },
  'auth.tokens.create': { access: 'authed', input: () => ({ name: 'fixture token' }) },
  'auth.tokens.list': { access: 'authed', input: () => undefined },
  'auth.tokens.revoke': { access: 'authed', input: () => ({ id: 'abcdefghijklmnop' }) },
  'organization.list': { access: 'authed', input: () => undefined },
  'organization.create': { access: 'authed', input: () => ({ name: 'Fixture Org' }) },
  'organization.creationLimit': { access: 'authed', input: () => undefined },
  'team.invitationPreview': { access: 'public', input: () => ({ token: 'A'.repeat(43) }) },
  'team.acceptInvitation': { access: 'authed', input: () => ({ token: 'A'.repeat(43) }) },
  'auth.requestPasswordReset': { access: 'public', input: () => ({ email: uniqueEmail('fixture-reset') }) },
  'auth.resetPassword': { access: 'public', input: () => ({ token: 'a'.repeat(39), password: 'correct horse battery' }) },
  'auth.confirmEmail': { access: 'public', input: () => ({ token: 'a'.repeat(39) }) },
  'auth.verifyEmail': { access: 'public', input: () => ({ token: 'a'.repeat(39) }) },
  'auth.changePassword': { access: 'authed', input: () => ({ currentPassword: 'x', password: 'correct horse battery' }) },
  'auth.changeEmail': { access: 'authed', input: () => ({ email: uniqueEmail('fixture-change') }) },
  'auth.sendVerificationEmail': { access: 'authed', input: () => undefined },
  'auth.updateProfile': { access: 'authed', input: () => ({ name: 'Fixture' }) },
  'auth.pendingInvitations': { access: 'authed', input: () => undefined },
  'auth.sessions.list': { access: 'authed', input: () => undefined },
  'auth.sessions.revokeOthers': { access: 'authed', input: () => undefined },
  'auth.sessions.revoke': { access: 'authed', input: () => ({ id: 'abcdefghijklmnop' }) },
  // Addressed to the caller's own verified email, not scoped by a role in an organization.
  'team.acceptPendingInvitation': { access: 'authed', input: () => ({ invitationId: '33333333-3333-4333-8333-333333333333' }) },
  'team.declineInvitation': { access: 'authed', input: () => ({ invitationId: '33333333-3333-4333-8333-333333333333' }) },
};
