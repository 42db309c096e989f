/**
 * Spend-limit alerts (issue #12 item 6; server/modules/limits/alerts.ts): at 50, 80 and 100% of an
 * API key's spend limit (and of member budgets and the organization's caps), one email per
 * threshold per period to the owners, the billing email and the key's creator, and one live
 * `limit.alert` event, committed with the spend; a new period or a new amount re-arms them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { settle, sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { liveConnection, type LiveConnection } from '../helpers/live.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { observeSpend, thresholdReached, type SpendObservation } from '../../server/modules/limits/alerts.js';
import type { LimitAlertEvent } from '../../shared/events.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app, 'Alert Owner');
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

async function alertMails(orgId: string, to?: string) {
  // Alert emails name the organization; outbox rows carry no org id.
  const [org] = await sql<{ name: string }>(app, 'select name from organization where id = ?', [orgId]);
  const rows = await sql<{ recipient: string; subject: string; body: string }>(
    app,
    `select recipient, subject, body from email_outbox where body like ? and (subject like '%\\% of the %' or subject like '%reached') ${to ? 'and recipient = ?' : ''} order by created_at`,
    [`%${org!.name}%`, ...(to ? [to] : [])],
  );
  return rows;
}

async function storedAlerts(orgId: string): Promise<LimitAlertEvent[]> {
  const rows = await sql<{ payload: LimitAlertEvent }>(app, `select payload from org_event where org_id = ? and type = 'limit.alert' order by id`, [orgId]);
  return rows.map((r) => r.payload);
}

async function join(orgId: string, who: Owner, role: 'admin' | 'developer') {
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role });
  await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
}

/**
 * claude-opus-4-1 at $15 / $75 per million tokens: "go [chunks:300]" is 12 prompt and 300 output
 * tokens, $0.02268 a call; with max_tokens 400 it reserves about $0.0301 first.
 */
const CALL_COST = 22_680_000n;
const opusCall = (key: string) => rawChat(app, key, { model: 'anthropic/claude-opus-4-1', max_tokens: 400, messages: [{ role: 'user', content: 'go [chunks:300]' }] });

describe('through gateway calls against a key limited to $0.10 a day', () => {
  let live: LiveConnection;
  afterAll(async () => {
    await live?.close();
  });

  it('sends one email per threshold (owners, billing email, the key creator) and one live event; a refused call is 100%', async () => {
    const { orgId, projectId } = await gatewaySetup(app, owner, { name: 'Limited Org' });
    await owner.client.organization.update.mutate({ orgId, version: (await owner.client.organization.get.query({ orgId })).version, billingEmail: 'billing@limited.example' });
    const developer = await signUp(app.url, 'Dana Developer');
    await join(orgId, developer, 'developer');
    const { apiKey, key } = await developer.client.apiKey.create.mutate({ projectId, name: 'intern key' });
    await owner.client.apiKey.update.mutate({ apiKeyId: apiKey.id, spendLimit: { amount: '0.10', period: 'day' } });
    live = liveConnection(app.url, { cookie: owner.cookieHeader() });
    const events = live.subscribe(orgId);
    await events.until('the subscription', () => events.started);

    const thresholdsSeen = () => events.received.filter((r) => r.event.type === 'limit.alert').map((r) => (r.event as LimitAlertEvent).threshold);
    const expected: [number, number[]][] = [[1, []], [2, []], [3, [50]], [4, [50, 80]]];
    for (const [calls, thresholds] of expected) {
      const res = await opusCall(key);
      expect(res.status, res.text).toBe(200);
      await flushUsage(app);
      const spent = (await developer.client.apiKey.list.query({ projectId })).find((k) => k.id === apiKey.id)!;
      expect(spent.spent).toBe((Number(CALL_COST * BigInt(calls)) / 1e9).toFixed(5).replace(/0+$/, ''));
      // The event commits with the batch: it is there by the time the next call goes.
      if (thresholds.length) await events.until(`alerts ${thresholds.join(', ')}`, () => thresholdsSeen().length === thresholds.length);
      expect(thresholdsSeen()).toEqual(thresholds);
    }
    // $0.0907 spent: the next call's $0.03 reservation does not fit.
    const refused = await opusCall(key);
    expect(refused.status).toBe(402);
    expect((refused.json as { error: { code: string } }).error.code).toBe('budget_exceeded');
    await flushUsage(app);
    await events.until('the 100% alert', () => thresholdsSeen().length === 3);
    // More refusals in the same period: nothing more.
    expect((await opusCall(key)).status).toBe(402);
    await flushUsage(app);
    expect(thresholdsSeen()).toEqual([50, 80, 100]);

    const alerts = events.received.filter((r) => r.event.type === 'limit.alert').map((r) => r.event as LimitAlertEvent);
    expect(alerts[2]).toMatchObject({ scope: 'apiKey', subjectId: apiKey.id, name: 'intern key', userId: developer.user.id, projectId, threshold: 100, limit: '0.10' });
    expect(alerts.every((a) => a.resetsAt === new Date(dayStart(Date.now()).getTime() + DAY).toISOString())).toBe(true);
    expect(await storedAlerts(orgId)).toHaveLength(3);

    await settle(app);
    const mails = await alertMails(orgId);
    const byRecipient = (to: string) => mails.filter((m) => m.recipient === to.toLowerCase()).map((m) => m.subject);
    const subjects = ['API key “intern key”: 50% of the spend limit used', 'API key “intern key”: 80% of the spend limit used', 'API key “intern key”: spend limit reached'];
    expect(byRecipient(owner.email)).toEqual(subjects);
    expect(byRecipient('billing@limited.example')).toEqual(subjects);
    expect(byRecipient(developer.email)).toEqual(subjects);
    expect(mails).toHaveLength(9);
    expect(mails.find((m) => m.subject.endsWith('reached'))!.body).toContain('has reached its spend limit of $0.10');

    // The request log names the limit that refused the call.
    const [log] = await sql<{ status: number; error: string }>(app, 'select status, error from request_log where org_id = ? and status = 402 order by created_at limit 1', [orgId]);
    expect(log!.error).toMatch(/this API key's daily spend limit of \$0\.10 is reached/);
  }, 30_000);
});

const DAY = 86_400_000;
const dayStart = (t: number) => new Date(Math.floor(t / DAY) * DAY);

describe('observeSpend (the alert rules)', () => {
  const observe = (observations: SpendObservation[]) => runCommand(app.services, null, (work) => observeSpend(work, observations));

  it('reaches the highest threshold at or below what was spent; a refusal is 100%', () => {
    const at = (spent: bigint, refused = false) => thresholdReached({ limitNanos: 1000n, spentNanos: spent, refused });
    expect([at(0n), at(499n), at(500n), at(799n), at(800n), at(999n), at(1000n), at(10n, true)]).toEqual([0, 0, 50, 50, 80, 80, 100, 100]);
    expect(thresholdReached({ limitNanos: 0n, spentNanos: 0n })).toBe(0);
  });

  it('notifies once per threshold per period, re-arms in a new period and for a new amount', async () => {
    const { orgId, apiKeyId } = await gatewaySetup(app, owner, { name: 'Rules Org' });
    const today = dayStart(Date.now());
    const base = { orgId, scope: 'apiKey' as const, subjectId: apiKeyId, limitNanos: 1_000_000_000n, periodStart: today, resetsAt: new Date(today.getTime() + DAY) };
    await observe([{ ...base, spentNanos: 400_000_000n }]);
    expect(await storedAlerts(orgId)).toHaveLength(0);
    await observe([{ ...base, spentNanos: 500_000_000n }]);
    await observe([{ ...base, spentNanos: 600_000_000n }]);
    expect((await storedAlerts(orgId)).map((e) => e.threshold)).toEqual([50]);
    // Jumping from 60% past 80 and 100 in one batch: one notice, for the highest.
    await observe([{ ...base, spentNanos: 1_000_000_000n }]);
    await observe([{ ...base, spentNanos: 1_000_000_000n, refused: true }]);
    expect((await storedAlerts(orgId)).map((e) => e.threshold)).toEqual([50, 100]);
    // An older period's late batch changes nothing.
    await observe([{ ...base, periodStart: new Date(today.getTime() - DAY), spentNanos: 900_000_000n }]);
    expect(await storedAlerts(orgId)).toHaveLength(2);
    // The next day: armed again.
    const tomorrow = new Date(today.getTime() + DAY);
    await observe([{ ...base, periodStart: tomorrow, resetsAt: new Date(tomorrow.getTime() + DAY), spentNanos: 850_000_000n }]);
    // The limit raised to $2: 85c is below 50%; at $1.10 it is 55% of the new amount.
    await observe([{ ...base, periodStart: tomorrow, limitNanos: 2_000_000_000n, spentNanos: 850_000_000n }]);
    await observe([{ ...base, periodStart: tomorrow, limitNanos: 2_000_000_000n, spentNanos: 1_100_000_000n }]);
    const events = await storedAlerts(orgId);
    expect(events.map((e) => [e.threshold, e.limit])).toEqual([[50, '1.00'], [100, '1.00'], [80, '1.00'], [50, '2.00']]);
    expect(events[0]).toMatchObject({ scope: 'apiKey', subjectId: apiKeyId, name: 'test key', userId: owner.user.id, spent: '0.50', limit: '1.00', resetsAt: base.resetsAt.toISOString() });
    await settle(app);
    const mails = await alertMails(orgId, owner.email);
    expect(mails.map((m) => m.subject)).toEqual([
      'API key “test key”: 50% of the spend limit used',
      'API key “test key”: spend limit reached',
      'API key “test key”: 80% of the spend limit used',
      'API key “test key”: 50% of the spend limit used',
    ]);
    expect(mails[0]!.body).toContain('The API key “test key” in Rules Org has spent $0.50 of its spend limit of $1.00 (50%)');
  });

  it('two batches crossing the same threshold at once notify once', async () => {
    const { orgId } = await gatewaySetup(app, owner, { name: 'Race Org' });
    const start = new Date(Date.UTC(2026, 11, 1));
    const cap = { orgId, scope: 'monthlyCap' as const, subjectId: orgId, limitNanos: 10_000_000_000n, periodStart: start, resetsAt: new Date(Date.UTC(2027, 0, 1)) };
    await Promise.all(Array.from({ length: 6 }, (_, i) => observe([{ ...cap, spentNanos: 8_000_000_000n + BigInt(i) }])));
    expect((await storedAlerts(orgId)).map((e) => [e.scope, e.threshold])).toEqual([['monthlyCap', 80]]);
    await settle(app);
    const mails = await alertMails(orgId);
    expect(mails.map((m) => [m.recipient, m.subject])).toEqual([[owner.email.toLowerCase(), 'Race Org: 80% of the monthly spend cap used']]);
  });
});
