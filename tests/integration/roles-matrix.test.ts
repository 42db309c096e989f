/**
 * The roles matrix, enforced: every procedure of appRouter is enumerated; each org-scoped one is
 * called as owner, admin, developer and an outsider, and the answer must follow `can(role, permission)`
 * from shared/permissions.ts. A permitted call must be seen to have happened (the state changed, or
 * the answer is the data the database holds); a refused mutation must have changed nothing (every
 * table's checksum is the same before and after). Plus the finer rules the matrix alone does not
 * express (owner role, retention level).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { call, listProcedures, type Outcome } from '../helpers/rpc.js';
import { settle, sql, tableChecksums } from '../helpers/db-state.js';
import { uniqueEmail } from '../helpers/client.js';
import { ACTORS, buildWorld, ORG_FIXTURES, PERSONAL_PROCEDURES, type Actor, type World } from '../helpers/world.js';
import { can, PERMISSIONS } from '../../shared/permissions.js';
import { nanosToDecimal } from '../../shared/money.js';

let app: TestApp;
let w: World;

beforeAll(async () => {
  app = await startTestApp();
  w = await buildWorld(app);
});
afterAll(async () => {
  await app?.close();
});

const procedures = listProcedures();
/** Input keys that name a resource (and so an organization): orgId, projectId, invitationId, apiKeyId... */
const NOT_A_RESOURCE = new Set(['lastEventId']);
const looksOrgScoped = (keys: string[]) => keys.some((k) => /Id$/.test(k) && !NOT_A_RESOURCE.has(k));

function as(actor: Actor) {
  return { cookie: w.people[actor].cookieHeader() };
}
function describeOutcome(o: Outcome) {
  return o.ok ? 'ok' : `${o.code} (${o.status}): ${o.message}`;
}

/** What a permitted call as `actor` with `input` must have done; `outcome` is its answer. */
interface Proof {
  /** Runs before a permitted call (e.g. a second owner, so the owner may leave). */
  prepare?(input: Input, actor: Actor): Promise<void>;
  happened(input: Input, outcome: Outcome, actor: Actor): Promise<void>;
}
type Input = Record<string, unknown>;

function dataOf<T = Record<string, unknown>>(outcome: Outcome): T {
  expect(outcome.ok ? 'ok' : `${outcome.code}: ${outcome.message}`).toBe('ok');
  return (outcome as { data: T }).data;
}
/** The domain's own NOT_FOUND, naming what is missing: the service ran (no fixture has the resource). */
function domainNotFound(message: string): Proof['happened'] {
  return async (_input, outcome) => {
    expect(outcome.ok ? 'ok' : `${outcome.code}: ${outcome.message}`).toBe(`NOT_FOUND: ${message}`);
  };
}
const ids = (rows: { id: string }[]) => rows.map((r) => String(r.id)).sort();
const one = async <T = Record<string, unknown>>(query: string, params: unknown[]) => (await sql<T>(app, query, params))[0];
const userOf = (actor: Actor) => w.people[actor].user.id;

/** A checkout URL the test-payment provider serves (the session exists there). */
async function checkoutServed(url: unknown) {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/test-payments\/checkout\/cs_/);
  const res = await fetch(String(url));
  expect(res.status).toBe(200);
}

const PROOFS: Record<string, Proof> = {
  'organization.get': {
    async happened(input, outcome, actor) {
      expect(dataOf(outcome)).toMatchObject({ id: input.orgId, name: w.orgName, myRole: actor });
    },
  },
  'organization.update': {
    async happened(input, outcome) {
      const row = await one<{ billing_email: string; version: number }>('select billing_email, version from organization where id = ?', [input.orgId]);
      expect(row!.billing_email).toBe(input.billingEmail);
      expect(row!.version).toBe((input.version as number) + 1);
      expect(dataOf(outcome)).toMatchObject({ billingEmail: input.billingEmail, version: row!.version });
    },
  },
  'organization.deletionPreview': {
    async happened(input, outcome) {
      const row = await one<{ name: string; plan: string; credits_nanos: string }>('select name, plan, credits_nanos from organization where id = ?', [input.orgId]);
      const credits = BigInt(row!.credits_nanos);
      // No subscription exists in the matrix world.
      expect(dataOf(outcome)).toEqual({ name: row!.name, plan: row!.plan, forfeitedCredits: nanosToDecimal(credits > 0n ? credits : 0n), subscription: null });
    },
  },
  'organization.limits': {
    async happened(input, outcome) {
      const [row] = await sql<{ plan: string; n: number }>(app, 'select o.plan, (select count(*)::int from project p where p.org_id = o.id) as n from organization o where o.id = ?', [input.orgId]);
      expect(dataOf(outcome)).toMatchObject({ plan: row!.plan, projects: { used: row!.n } });
    },
  },
  'organization.delete': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from organization where id = ?', [input.orgId])).toHaveLength(0);
    },
  },
  'project.list': {
    async happened(input, outcome) {
      expect(ids(dataOf<{ id: string }[]>(outcome))).toEqual(ids(await sql(app, 'select id from project where org_id = ?', [input.orgId])));
    },
  },
  'project.create': {
    async happened(input, outcome) {
      const { id } = dataOf<{ id: string }>(outcome);
      expect(await one('select org_id, name from project where id = ?', [id])).toEqual({ org_id: input.orgId, name: input.name });
    },
  },
  'project.update': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await one('select name, caching_enabled from project where id = ?', [input.projectId])).toEqual({ name: input.name, caching_enabled: true });
    },
  },
  'project.delete': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from project where id = ?', [input.projectId])).toHaveLength(0);
    },
  },
  'team.members': {
    async happened(input, outcome, actor) {
      const members = dataOf<{ userId: string; role: string }[]>(outcome);
      const rows = await sql<{ user_id: string; role: string }>(app, 'select user_id, role from membership where org_id = ?', [input.orgId]);
      expect(members.map((m) => [m.userId, m.role]).sort()).toEqual(rows.map((r) => [r.user_id, r.role]).sort());
      expect(members.find((m) => m.userId === userOf(actor))?.role).toBe(actor);
    },
  },
  'team.invitations': {
    async happened(input, outcome) {
      const pending = await sql<{ id: string }>(app, 'select id from invitation where org_id = ? and accepted_at is null and revoked_at is null and expires_at > now()', [input.orgId]);
      expect(ids(dataOf<{ id: string }[]>(outcome))).toEqual(ids(pending));
    },
  },
  'team.invite': {
    async happened(input, outcome, actor) {
      const { invitation } = dataOf<{ invitation: { id: string } }>(outcome);
      const row = await one('select org_id, email, role, invited_by, accepted_at, revoked_at from invitation where id = ?', [invitation.id]);
      expect(row).toEqual({ org_id: input.orgId, email: input.email, role: input.role, invited_by: userOf(actor), accepted_at: null, revoked_at: null });
    },
  },
  'team.revokeInvitation': {
    async happened(input, outcome) {
      dataOf(outcome);
      const row = await one<{ revoked_at: Date | null }>('select revoked_at from invitation where id = ?', [input.invitationId]);
      expect(row!.revoked_at).not.toBeNull();
    },
  },
  'team.updateRole': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await one('select role from membership where org_id = ? and user_id = ?', [input.orgId, input.userId])).toEqual({ role: input.role });
    },
  },
  'team.removeMember': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from membership where org_id = ? and user_id = ?', [input.orgId, input.userId])).toHaveLength(0);
    },
  },
  'team.setBudget': {
    async happened(input, outcome) {
      expect(dataOf(outcome)).toMatchObject({ userId: input.userId, budget: { amount: '12.50', period: 'month' } });
      expect(await one('select amount_nanos::text as nanos, period from member_budget where org_id = ? and user_id = ?', [input.orgId, input.userId])).toEqual({ nanos: '12500000000', period: 'month' });
    },
  },
  'team.leave': {
    // An owner may leave once someone else owns the organization too (the last-owner rule is tested apart).
    async prepare(input, actor) {
      if (actor === 'owner') await sql(app, `update membership set role = 'owner' where org_id = ? and user_id = ?`, [input.orgId, userOf('admin')]);
    },
    async happened(input, outcome, actor) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from membership where org_id = ? and user_id = ?', [input.orgId, userOf(actor)])).toHaveLength(0);
    },
  },
  'audit.list': {
    async happened(input, outcome) {
      const items = dataOf<{ items: { id: string }[] }>(outcome).items;
      expect(items.length).toBeGreaterThan(0);
      const all = new Set(ids(await sql(app, 'select id from audit_log where org_id = ?', [input.orgId])));
      for (const item of items) expect(all.has(String(item.id)), `audit entry ${item.id} belongs to the organization`).toBe(true);
    },
  },
  'audit.actors': {
    async happened(input, outcome) {
      const actors = dataOf<{ actors: { id: string }[] }>(outcome).actors;
      const rows = await sql<{ id: string }>(app, 'select distinct actor_id as id from audit_log where org_id = ? and actor_id is not null', [input.orgId]);
      expect(ids(actors)).toEqual(ids(rows));
    },
  },
  'presence.update': {
    async happened(input, outcome, actor) {
      dataOf(outcome);
      const rows = await sql(app, 'select 1 from presence where org_id = ? and user_id = ? and page = ?', [input.orgId, userOf(actor), input.page]);
      expect(rows.length).toBeGreaterThan(0);
    },
  },
  'billing.overview': {
    async happened(input, outcome) {
      const row = await one<{ credits_nanos: string; plan: string; auto_top_up_threshold_nanos: string }>(
        'select credits_nanos, plan, auto_top_up_threshold_nanos from organization where id = ?',
        [input.orgId],
      );
      expect(dataOf(outcome)).toMatchObject({
        credits: nanosToDecimal(BigInt(row!.credits_nanos)),
        plan: row!.plan,
        autoTopUp: { threshold: nanosToDecimal(BigInt(row!.auto_top_up_threshold_nanos)) },
      });
    },
  },
  'billing.transactions': {
    async happened(input, outcome) {
      const rows = await sql<{ id: string }>(app, 'select id from credit_ledger where org_id = ? order by id desc limit 10', [input.orgId]);
      expect(ids(dataOf<{ items: { id: string }[] }>(outcome).items)).toEqual(ids(rows));
    },
  },
  'billing.transactionsGrouped': {
    async happened(input, outcome) {
      // Every non-usage entry on its own row; usage summed into periods whose entries add up to the ledger's.
      const items = dataOf<{ items: ({ kind: 'entry'; id: string } | { kind: 'usage'; entries: number })[] }>(outcome).items;
      const entries = await sql<{ id: string }>(app, `select id from credit_ledger where org_id = ? and type <> 'usage'`, [input.orgId]);
      expect(ids(items.flatMap((i) => (i.kind === 'entry' ? [{ id: i.id }] : [])))).toEqual(ids(entries));
      const [usage] = await sql<{ n: number }>(app, `select count(*)::int as n from credit_ledger where org_id = ? and type = 'usage'`, [input.orgId]);
      expect(items.reduce((n, i) => n + (i.kind === 'usage' ? i.entries : 0), 0)).toBe(usage!.n);
    },
  },
  'billing.transactionsCsv': {
    async happened(input, outcome) {
      const { filename, csv } = dataOf<{ filename: string; csv: string }>(outcome);
      expect(filename).toBe(`transactions-${input.orgId}.csv`);
      const [count] = await sql<{ n: number }>(app, 'select count(*)::int as n from credit_ledger where org_id = ?', [input.orgId]);
      expect(csv.split('\n').filter(Boolean)).toHaveLength(1 + count!.n);
    },
  },
  'billing.purchaseCredits': {
    async happened(input, outcome, actor) {
      const { checkoutUrl, sessionId } = dataOf<{ checkoutUrl: string; sessionId: string }>(outcome);
      await checkoutServed(checkoutUrl);
      const audit = await one('select actor_id from audit_log where org_id = ? and action = ? and target_id = ?', [input.orgId, 'billing.purchase_started', sessionId]);
      expect(audit).toEqual({ actor_id: userOf(actor) });
    },
  },
  'billing.updateAutoTopUp': {
    async happened(input, outcome) {
      dataOf(outcome);
      const row = await one('select auto_top_up_enabled, auto_top_up_threshold_nanos, auto_top_up_amount_nanos from organization where id = ?', [input.orgId]);
      expect(row).toEqual({
        auto_top_up_enabled: input.enabled,
        auto_top_up_threshold_nanos: String(BigInt(input.threshold as number) * 1_000_000_000n),
        auto_top_up_amount_nanos: String(BigInt(input.amount as number) * 1_000_000_000n),
      });
    },
  },
  'billing.changePlan': {
    async happened(_input, outcome) {
      await checkoutServed(dataOf<{ checkoutUrl: string }>(outcome).checkoutUrl);
    },
  },
  // No subscription exists in the matrix world: cancelling one is the domain's NOT_FOUND.
  'billing.cancelSubscription': { happened: domainNotFound('active subscription not found') },
  'billing.resumeSubscription': { happened: domainNotFound('active subscription not found') },
  'billing.invoices': {
    async happened(input, outcome) {
      // The invoices the payment provider holds for the organization's customer (none without a subscription).
      const [org] = await sql<{ stripe_customer_id: string | null }>(app, 'select stripe_customer_id from organization where id = ?', [input.orgId]);
      const held = org?.stripe_customer_id ? await sql(app, `select id from test_stripe_object where type = 'invoice' and data->>'customer' = ?`, [org.stripe_customer_id]) : [];
      expect(dataOf<{ items: unknown[] }>(outcome).items).toHaveLength(held.length);
    },
  },
  'billing.paymentMethods.list': {
    async happened(_input, outcome) {
      expect(dataOf(outcome)).toEqual([]);
    },
  },
  'billing.paymentMethods.add': {
    async happened(input, outcome) {
      await checkoutServed(dataOf<{ checkoutUrl: string }>(outcome).checkoutUrl);
      // The organization became a customer of the payment provider.
      const row = await one<{ stripe_customer_id: string | null }>('select stripe_customer_id from organization where id = ?', [input.orgId]);
      expect(row!.stripe_customer_id).toMatch(/^cus_/);
    },
  },
  'billing.paymentMethods.setDefault': { happened: domainNotFound('payment method not found') },
  'billing.paymentMethods.remove': { happened: domainNotFound('payment method not found') },
  'billing.refund': { happened: domainNotFound('transaction not found') },
  'billing.budgetAlerts.list': {
    async happened(input, outcome) {
      const kinds = (await sql<{ kind: string }>(app, 'select kind from budget_alert where org_id = ?', [input.orgId])).map((r) => r.kind).sort();
      expect(dataOf<{ alerts: { kind: string }[] }>(outcome).alerts.map((a) => a.kind).sort()).toEqual(kinds);
    },
  },
  'billing.budgetAlerts.set': {
    async happened(input, outcome) {
      dataOf(outcome);
      const row = await one('select threshold_nanos from budget_alert where org_id = ? and kind = ?', [input.orgId, input.kind]);
      expect(row).toEqual({ threshold_nanos: String(BigInt(input.threshold as number) * 1_000_000_000n) });
    },
  },
  'apiKey.list': {
    async happened(input, outcome) {
      expect(ids(dataOf<{ id: string }[]>(outcome))).toEqual(ids(await sql(app, 'select id from api_key where project_id = ?', [input.projectId])));
    },
  },
  'apiKey.create': {
    async happened(input, outcome, actor) {
      const { apiKey } = dataOf<{ apiKey: { id: string } }>(outcome);
      const row = await one('select project_id, name, created_by, revoked_at from api_key where id = ?', [apiKey.id]);
      expect(row).toEqual({ project_id: input.projectId, name: input.name, created_by: userOf(actor), revoked_at: null });
    },
  },
  'apiKey.revoke': {
    async happened(input, outcome) {
      dataOf(outcome);
      const row = await one<{ revoked_at: Date | null }>('select revoked_at from api_key where id = ?', [input.apiKeyId]);
      expect(row!.revoked_at).not.toBeNull();
    },
  },
  'apiKey.update': {
    async happened(input, outcome) {
      expect(dataOf(outcome)).toMatchObject({ id: input.apiKeyId, name: input.name, rpmLimit: 42 });
      expect(await one('select name, rpm_limit from api_key where id = ?', [input.apiKeyId])).toEqual({ name: input.name, rpm_limit: 42 });
    },
  },
  'apiKey.roll': {
    async happened(input, outcome) {
      const { key, apiKey } = dataOf<{ key: string; apiKey: { id: string; prefix: string } }>(outcome);
      expect(apiKey.id).toBe(input.apiKeyId);
      expect(key.startsWith(apiKey.prefix)).toBe(true);
      const row = await one<{ prefix: string; previous_key_hash: Buffer | null }>('select prefix, previous_key_hash from api_key where id = ?', [input.apiKeyId]);
      expect(row!.prefix).toBe(apiKey.prefix);
      expect(row!.previous_key_hash).not.toBeNull();
    },
  },
  'providerKey.list': {
    async happened(input, outcome) {
      expect(ids(dataOf<{ id: string }[]>(outcome))).toEqual(ids(await sql(app, 'select id from provider_key where org_id = ?', [input.orgId])));
    },
  },
  'providerKey.create': {
    async happened(input, outcome, actor) {
      const { id } = dataOf<{ id: string }>(outcome);
      const row = await one('select org_id, provider, name, last4, created_by from provider_key where id = ?', [id]);
      expect(row).toEqual({ org_id: input.orgId, provider: input.provider, name: input.name, last4: String(input.key).slice(-4), created_by: userOf(actor) });
    },
  },
  'providerKey.update': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await one('select status from provider_key where id = ?', [input.providerKeyId])).toEqual({ status: input.status });
    },
  },
  'providerKey.delete': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from provider_key where id = ?', [input.providerKeyId])).toHaveLength(0);
    },
  },
  'webhook.list': {
    async happened(input, outcome) {
      expect(ids(dataOf<{ id: string }[]>(outcome))).toEqual(ids(await sql(app, 'select id from webhook_endpoint where org_id = ?', [input.orgId])));
    },
  },
  'webhook.create': {
    async happened(input, outcome, actor) {
      const { webhook, secret } = dataOf<{ webhook: { id: string }; secret: string }>(outcome);
      expect(secret).toMatch(/^whsec_/);
      expect(await one('select org_id, url, events, created_by from webhook_endpoint where id = ?', [webhook.id])).toEqual({ org_id: input.orgId, url: input.url, events: ['*'], created_by: userOf(actor) });
    },
  },
  'webhook.update': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await one('select enabled from webhook_endpoint where id = ?', [input.webhookId])).toEqual({ enabled: input.enabled });
    },
  },
  'webhook.delete': {
    async happened(input, outcome) {
      dataOf(outcome);
      expect(await sql(app, 'select 1 from webhook_endpoint where id = ?', [input.webhookId])).toHaveLength(0);
    },
  },
  'webhook.rotateSecret': {
    async happened(input, outcome) {
      expect(dataOf<{ secret: string }>(outcome).secret).toMatch(/^whsec_/);
      expect(await sql(app, `select 1 from audit_log where action = 'webhook.secretRotated' and target_id = ?`, [input.webhookId])).toHaveLength(1);
    },
  },
  'webhook.sendTest': {
    async happened(input, outcome) {
      const { id } = dataOf<{ id: string }>(outcome);
      expect(await one('select endpoint_id, event_type from webhook_delivery where id = ?', [id])).toEqual({ endpoint_id: input.webhookId, event_type: 'webhook.test' });
    },
  },
  'webhook.deliveries': {
    async happened(input, outcome) {
      const { items } = dataOf<{ items: { id: string }[] }>(outcome);
      expect(ids(items)).toEqual(ids(await sql(app, 'select id from webhook_delivery where endpoint_id = ?', [input.webhookId])));
    },
  },
  'webhook.redeliver': {
    async happened(input, outcome) {
      const { id } = dataOf<{ id: string }>(outcome);
      expect(await one('select redelivery_of, status from webhook_delivery where id = ?', [id])).toEqual({ redelivery_of: input.deliveryId, status: 'pending' });
    },
  },
  // No traffic in the matrix world: the analytics answer the (empty) rollups, over the asked range.
  'analytics.summary': {
    async happened(input, outcome) {
      const [row] = await sql<{ n: number }>(app, 'select coalesce(sum(requests), 0)::int as n from usage_rollup_project where org_id = ?', [input.orgId]);
      expect(dataOf(outcome)).toMatchObject({ from: input.from, to: input.to, requests: row!.n });
    },
  },
  'analytics.timeseries': {
    async happened(input, outcome) {
      const points = dataOf<{ t: Date; requests: number }[]>(outcome);
      // One point per hour that starts in [from, to): 24, or 25 when `from` is not on the hour.
      const from = input.from as Date;
      const to = input.to as Date;
      const first = Math.floor(from.getTime() / 3_600_000) * 3_600_000;
      expect(points).toHaveLength(Math.ceil((to.getTime() - first) / 3_600_000));
      expect(new Date(points[0]!.t).getTime()).toBe(first);
      expect(points.every((p) => p.requests === 0)).toBe(true);
    },
  },
  'analytics.breakdown': {
    async happened(input, outcome) {
      const [row] = await sql<{ n: number }>(app, 'select count(*)::int as n from usage_rollup where org_id = ?', [input.orgId]);
      expect(row!.n).toBe(0);
      expect(dataOf(outcome)).toEqual([]);
    },
  },
  'logs.list': {
    async happened(input, outcome) {
      const rows = await sql<{ id: string }>(app, 'select id from request_log where org_id = ? order by id desc limit 10', [input.orgId]);
      expect(ids(dataOf<{ items: { id: string }[] }>(outcome).items)).toEqual(ids(rows));
    },
  },
  // No request was logged: permitted callers get the domain's "log not found".
  'logs.get': { happened: domainNotFound('log not found') },
  'providerHealth.get': {
    // Four attempts of the operator's OpenAI key this minute, one failed, as an instance writes them.
    async prepare(input) {
      await sql(app, `insert into provider_health (org_id, provider, credential, minute, calls, failures, lat_b8) values (?, 'openai', 'operator:openai:0', date_trunc('minute', now()), 4, 1, 4) on conflict do nothing`, [input.orgId]);
    },
    async happened(_input, outcome) {
      const [openai] = dataOf<{ providers: { provider: string; last60: { calls: number; failures: number }; keys: { name: string }[] }[] }>(outcome).providers;
      expect(openai).toMatchObject({ provider: 'openai', last60: { calls: 4, failures: 1 }, keys: [{ name: 'Gateway key 1' }] });
    },
  },
};

/** Every table's checksum, once after-commit work (emails) has settled; sessions slide on any request. */
async function snapshot() {
  await settle(app);
  return tableChecksums(app, ['session']);
}

describe('the router, enumerated', () => {
  it('finds the procedures (sanity: the enumeration works)', () => {
    expect(procedures.length).toBeGreaterThan(20);
    expect(procedures.map((p) => p.path)).toContain('team.updateRole');
  });

  it('gives every org-scoped-looking procedure a permission in its meta', () => {
    // Invitations addressed to the caller's own verified email are the caller's, whatever the organization.
    const addressedToCaller = new Set(['team.acceptPendingInvitation', 'team.declineInvitation']);
    const missing = procedures.filter((p) => looksOrgScoped(p.inputKeys) && !p.permission && !addressedToCaller.has(p.path)).map((p) => p.path);
    expect(missing, 'org-scoped procedures must be built with orgProcedure(permission)').toEqual([]);
  });

  it("guards each procedure with the permission API.md's roles table gives its action", () => {
    const wrong = procedures
      .filter((p) => p.permission && ORG_FIXTURES[p.path] && ORG_FIXTURES[p.path]!.permission !== p.permission)
      .map((p) => `${p.path}: ${p.permission} (expected ${ORG_FIXTURES[p.path]!.permission})`);
    expect(wrong).toEqual([]);
  });

  it('has a proof of effect for every org-scoped procedure the matrix calls', () => {
    const called = procedures.filter((p) => p.permission && !ORG_FIXTURES[p.path]?.subscription).map((p) => p.path);
    expect(called.filter((p) => !PROOFS[p]), 'add a proof in PROOFS above').toEqual([]);
    expect(Object.keys(PROOFS).filter((p) => !called.includes(p))).toEqual([]);
  });

  it('uses only permissions the shared matrix knows', () => {
    for (const p of procedures) if (p.permission) expect(Object.keys(PERMISSIONS), p.path).toContain(p.permission);
  });

  it('has a fixture for every org-scoped procedure, and lists every other one as personal/public', () => {
    const orgScoped = procedures.filter((p) => p.permission).map((p) => p.path);
    const others = procedures.filter((p) => !p.permission).map((p) => p.path);
    expect(orgScoped.filter((p) => !ORG_FIXTURES[p]), 'add a fixture in tests/helpers/world.ts').toEqual([]);
    expect(others.filter((p) => !PERSONAL_PROCEDURES[p]), 'new procedure without meta: org-scoped ones need orgProcedure(permission)').toEqual([]);
    // Stale entries would hide a procedure that lost its orgProcedure.
    expect(Object.keys(ORG_FIXTURES).filter((p) => !orgScoped.includes(p))).toEqual([]);
    expect(Object.keys(PERSONAL_PROCEDURES).filter((p) => !others.includes(p))).toEqual([]);
  });
});

describe('every org-scoped procedure against the matrix', () => {
  const orgScoped = procedures.filter((p) => p.permission && !ORG_FIXTURES[p.path]?.subscription);

  for (const proc of orgScoped) {
    it(`${proc.path} (${proc.permission})`, async () => {
      const fixture = ORG_FIXTURES[proc.path];
      expect(fixture, `fixture for ${proc.path}`).toBeDefined();
      const proof = PROOFS[proc.path]!;
      const type = proc.type as 'query' | 'mutation';
      for (const actor of ACTORS) {
        const input = (await fixture!.input(w, actor)) as Input;
        const permitted = actor !== 'outsider' && can(actor, proc.permission!);
        if (permitted) await proof.prepare?.(input, actor);
        // A refused mutation must leave every table as it was.
        const before = !permitted && type === 'mutation' ? await snapshot() : null;
        const outcome = await call(app.url, type, proc.path, input, as(actor));
        expect(outcome.ok || outcome.code !== 'INTERNAL_SERVER_ERROR', `${proc.path} as ${actor}: ${describeOutcome(outcome)}`).toBe(true);
        if (actor === 'outsider') {
          // The same answer as for an organization that does not exist: nothing leaks.
          expect(describeOutcome(outcome), `${proc.path} as outsider must not reveal the organization`).toBe('NOT_FOUND (404): not found');
        } else if (!permitted) {
          expect(outcome.ok ? 'ok' : outcome.code, `${proc.path} as ${actor}: ${describeOutcome(outcome)}`).toBe('FORBIDDEN');
          expect(outcome.status).toBe(403);
          expect(outcome.ok ? '' : outcome.message).toContain(actor);
        } else {
          // Permitted: it happened (the state changed, or the answer is what the database holds).
          await proof.happened(input, outcome, actor);
        }
        if (before) expect(await snapshot(), `${proc.path} as ${actor} was refused but changed the database`).toEqual(before);
      }
      // Anonymous callers are asked to sign in, before anything else is looked at.
      const anonymous = await call(app.url, type, proc.path, await fixture!.input(w, 'outsider'), {});
      expect(anonymous.ok ? 'ok' : anonymous.code).toBe('UNAUTHORIZED');
      expect(anonymous.status).toBe(401);
    });
  }
});

describe('personal and public procedures', () => {
  for (const [path, spec] of Object.entries(PERSONAL_PROCEDURES)) {
    if (spec.access !== 'authed') continue;
    it(`${path} asks anonymous callers to sign in`, async () => {
      const proc = procedures.find((p) => p.path === path)!;
      const outcome = await call(app.url, proc.type as 'query' | 'mutation', path, spec.input(w), {});
      expect(outcome.ok ? 'ok' : outcome.code).toBe('UNAUTHORIZED');
    });
  }
});

describe('finer rules', () => {
  async function roleOf(orgId: string, userId: string) {
    const [row] = await sql<{ role: string }>(app, 'select role from membership where org_id = ? and user_id = ?', [orgId, userId]);
    return row?.role ?? null;
  }

  it('admins cannot invite owners, developers cannot invite at all; owners can invite owners', async () => {
    const email = uniqueEmail('would-be-owner');
    const byAdmin = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'owner' }, as('admin'));
    expect(byAdmin.ok ? 'ok' : byAdmin.code).toBe('FORBIDDEN');
    const byDeveloper = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'developer' }, as('developer'));
    expect(byDeveloper.ok ? 'ok' : byDeveloper.code).toBe('FORBIDDEN');
    expect(await sql(app, 'select 1 from invitation where email = ?', [email])).toHaveLength(0);
    const byOwner = await call(app.url, 'mutation', 'team.invite', { orgId: w.orgId, email, role: 'owner' }, as('owner'));
    expect(byOwner.ok).toBe(true);
  });

  it("admins cannot change an owner's role, nor make anyone an owner", async () => {
    const org = await w.freshOrg();
    const demote = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.owner.user.id, role: 'developer' }, as('admin'));
    expect(demote.ok ? 'ok' : demote.code).toBe('FORBIDDEN');
    const promote = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.developer.user.id, role: 'owner' }, as('admin'));
    expect(promote.ok ? 'ok' : promote.code).toBe('FORBIDDEN');
    const self = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.admin.user.id, role: 'owner' }, as('admin'));
    expect(self.ok ? 'ok' : self.code).toBe('FORBIDDEN');
    expect(await roleOf(org.id, w.people.owner.user.id)).toBe('owner');
    expect(await roleOf(org.id, w.people.developer.user.id)).toBe('developer');
    expect(await roleOf(org.id, w.people.admin.user.id)).toBe('admin');
    // What admins may do: move people between admin and developer.
    const fine = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.developer.user.id, role: 'admin' }, as('admin'));
    expect(fine.ok).toBe(true);
    expect(await roleOf(org.id, w.people.developer.user.id)).toBe('admin');
    // And owners grant the owner role.
    const byOwner = await call(app.url, 'mutation', 'team.updateRole', { orgId: org.id, userId: w.people.admin.user.id, role: 'owner' }, as('owner'));
    expect(byOwner.ok).toBe(true);
    expect(await roleOf(org.id, w.people.admin.user.id)).toBe('owner');
  });

  it('admins cannot remove an owner', async () => {
    const org = await w.freshOrg();
    const outcome = await call(app.url, 'mutation', 'team.removeMember', { orgId: org.id, userId: w.people.owner.user.id }, as('admin'));
    expect(outcome.ok ? 'ok' : outcome.code).toBe('FORBIDDEN');
    expect(await roleOf(org.id, w.people.owner.user.id)).toBe('owner');
  });

  it("only owners set the spend caps; owners and admins the developers' budget; only owners an owner's budget", async () => {
    const org = await w.freshOrg();
    for (const field of [{ dailySpendCap: '5' }, { monthlySpendCap: '50' }, { maxConcurrentCalls: 10 }]) {
      for (const actor of ['admin', 'developer'] as const) {
        const outcome = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), ...field }, as(actor));
        expect(outcome.ok ? 'ok' : outcome.code, `${actor} ${JSON.stringify(field)}`).toBe('FORBIDDEN');
      }
      const byOwner = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), ...field }, as('owner'));
      expect(byOwner.ok, JSON.stringify(field)).toBe(true);
    }
    const dev = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), developerBudget: { amount: '3', period: 'week' } }, as('developer'));
    expect(dev.ok ? 'ok' : dev.code).toBe('FORBIDDEN');
    const admin = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), developerBudget: { amount: '3', period: 'week' } }, as('admin'));
    expect(admin.ok ? 'ok' : admin.code).toBe('ok');
    const ownerBudget = await call(app.url, 'mutation', 'team.setBudget', { orgId: org.id, userId: w.people.owner.user.id, amount: '1', period: 'day' }, as('admin'));
    expect(ownerBudget.ok ? 'ok' : ownerBudget.code).toBe('FORBIDDEN');
    const [row] = await sql<{ daily: string; dev: string }>(app, 'select daily_spend_cap_nanos::text as daily, developer_budget_nanos::text as dev from organization where id = ?', [org.id]);
    expect(row).toEqual({ daily: '5000000000', dev: '3000000000' });
  });

  it('only owners change the retention level; admins may still rename', async () => {
    const org = await w.freshOrg();
    for (const actor of ['admin', 'developer'] as const) {
      const outcome = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain' }, as(actor));
      expect(outcome.ok ? 'ok' : outcome.code, actor).toBe('FORBIDDEN');
    }
    const [unchanged] = await sql<{ retention_level: string }>(app, 'select retention_level from organization where id = ?', [org.id]);
    expect(unchanged!.retention_level).toBe('none');
    const admin = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain', name: 'Sneaky' }, as('admin'));
    expect(admin.ok ? 'ok' : admin.code).toBe('FORBIDDEN');
    expect(admin.ok ? '' : admin.message).toMatch(/owner/i);
    const [stillNamed] = await sql<{ name: string }>(app, 'select name from organization where id = ?', [org.id]);
    expect(stillNamed!.name).toBe(org.name);

    const rename = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), name: 'Renamed by admin' }, as('admin'));
    expect(rename.ok).toBe(true);
    const owner = await call(app.url, 'mutation', 'organization.update', { orgId: org.id, version: await w.version(org.id), retentionLevel: 'retain' }, as('owner'));
    expect(owner.ok).toBe(true);
    const [changed] = await sql<{ retention_level: string; name: string }>(app, 'select retention_level, name from organization where id = ?', [org.id]);
    expect(changed).toEqual({ retention_level: 'retain', name: 'Renamed by admin' });
  });

  it('everyone revokes their own API keys; only owners and admins revoke other people’s', async () => {
    const ownersKey = await w.freshApiKey('owner');
    const byDeveloper = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: ownersKey }, as('developer'));
    expect(byDeveloper.ok ? 'ok' : byDeveloper.code).toBe('FORBIDDEN');
    const [still] = await sql<{ revoked_at: Date | null }>(app, 'select revoked_at from api_key where id = ?', [ownersKey]);
    expect(still!.revoked_at).toBeNull();
    const developersKey = await w.freshApiKey('developer');
    const own = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: developersKey }, as('developer'));
    expect(own.ok).toBe(true);
    const byAdmin = await call(app.url, 'mutation', 'apiKey.revoke', { apiKeyId: ownersKey }, as('admin'));
    expect(byAdmin.ok).toBe(true);
    const revoked = await sql<{ id: string }>(app, 'select id from api_key where id in (?, ?) and revoked_at is not null', [ownersKey, developersKey]);
    expect(revoked).toHaveLength(2);
  });

  it('refuses an input naming resources of two organizations, even to a member of both', async () => {
    const other = await w.freshOrg();
    const foreignProject = await w.freshProject(other.id);
    const range = { from: new Date(Date.now() - 3_600_000), to: new Date() };
    for (const actor of ['owner', 'developer', 'outsider'] as const) {
      const mixed = await call(app.url, 'query', 'analytics.summary', { orgId: w.orgId, projectId: foreignProject, ...range }, as(actor));
      expect(describeOutcome(mixed), actor).toBe('NOT_FOUND (404): not found');
    }
    const outsiderOrg = (await w.people.outsider.client.organization.list.query())[0]!.id;
    const viaOwnOrg = await call(app.url, 'query', 'logs.list', { orgId: outsiderOrg, projectId: w.projectId }, as('outsider'));
    expect(describeOutcome(viaOwnOrg)).toBe('NOT_FOUND (404): not found');
    const sameOrg = await call(app.url, 'query', 'analytics.summary', { orgId: other.id, projectId: foreignProject, ...range }, as('developer'));
    expect(sameOrg.ok).toBe(true);
  });

  it('treats an optional id sent as undefined (the typed client keeps the key) as left out', async () => {
    const summary = await w.people.developer.client.analytics.summary.query({ orgId: w.orgId, projectId: undefined, from: new Date(Date.now() - 3_600_000), to: new Date() });
    expect(summary.requests).toBe(0);
  });

  it('a resource id from another organization is NOT_FOUND for a non-member, whatever their role elsewhere', async () => {
    // The outsider owns their own organization; owning something must not open ours.
    const outsiderOrgs = await w.people.outsider.client.organization.list.query();
    expect(outsiderOrgs.map((o) => o.role)).toEqual(['owner']);
    const update = await call(app.url, 'mutation', 'project.update', { projectId: w.projectId, name: 'Hijacked' }, as('outsider'));
    expect(update.ok ? 'ok' : update.code).toBe('NOT_FOUND');
    const [project] = await sql<{ name: string }>(app, 'select name from project where id = ?', [w.projectId]);
    expect(project!.name).not.toBe('Hijacked');
  });
});
