/**
 * Spend limits hold exactly on two instances (issue #12): 300 parallel calls, split over two gateway
 * instances on one database, against an API key's limit, the balance, a member's budget and the
 * organization's daily cap never spend past it (and use most of it), and the counters end exact
 * (also when a budget changes under calls in flight); the cap on calls in flight holds across
 * instances, and an idle instance gives its slots back at once; periods reset at the UTC boundary;
 * refusals are 402s that say which limit, what is left, when it resets and the max_tokens that fits
 * (chat completions and /v1/messages). Old counters are pruned; a removed member's budget goes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, newOwner, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { decimalToNanos } from '../../shared/money.js';
import { periodEnd } from '../../shared/limits.js';
import { findModel } from '../../shared/models.js';
import { worstCost } from '../../server/modules/limits/admission.js';
import { pruneSpendCounters } from '../../server/jobs/maintenance.js';
import { signUp } from '../helpers/client.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;

// An expensive model ($15 / $75 per million tokens), so a few cents take ~20 calls. 40 words of 4
// letters: the gateway's prompt estimate (4 characters a token) stays above what the fake upstream
// counts (10 + one a word), and the answer is exactly max_tokens long (`[chunks:20]`: 20 words; the
// directive needs its colon): reservations are close to the exact cost, so the limit is used almost
// entirely.
const MODEL = 'anthropic/claude-opus-4-1';
const PROMPT = `[chunks:20] ${Array.from({ length: 40 }, () => 'abcd').join(' ')}`;
const BODY = { model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: PROMPT }] };
const entry = findModel('anthropic', 'claude-opus-4-1')!;
const WORST = worstCost(entry, { promptChars: JSON.stringify(BODY.messages).length, maxOutputTokens: 20 });

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  // 300 calls at once on a loaded 2-core machine: the fake upstream may take seconds to answer.
  const env = fakeUpstreamEnv(upstream.url, { GATEWAY_UPSTREAM_TIMEOUT_MS: '30000' });
  a = await startTestApp({ env });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env });
  owner = await newOwner(a, 'Limits Owner');
}, 120_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await upstream?.close();
});

/** `n` calls at once, alternating between the two instances; their statuses and error codes. */
async function burst(keys: string[], n = 300, body: unknown = BODY) {
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => rawChat(i % 2 ? b : a, keys[i % keys.length]!, body).then((r) => ({ status: r.status, code: (r.json?.error as { code?: string } | undefined)?.code ?? null }))),
  );
  await flushUsage(a);
  await flushUsage(b);
  return results;
}

async function charged(where: string, params: unknown[]): Promise<{ cost: bigint; calls: number }> {
  const [row] = await sql<{ cost: string | null; calls: string }>(a, `select sum(cost_nanos) as cost, count(*) as calls from request_log where status = 200 and ${where}`, params);
  return { cost: BigInt(row!.cost ?? 0), calls: Number(row!.calls) };
}

function expectExact(results: { status: number; code: string | null }[], spent: bigint, limit: bigint, code: string) {
  const ok = results.filter((r) => r.status === 200).length;
  const refused = results.filter((r) => r.status === 402);
  expect(ok + refused.length).toBe(results.length);
  expect(refused.every((r) => r.code === code)).toBe(true);
  expect(refused.length).toBeGreaterThan(0);
  // Never past the limit, and most of it used: what is left is less than a few calls' worst cost.
  expect(spent).toBeLessThanOrEqual(limit);
  // What makes "nearly all of it" a fair demand: each answer cost nearly what its call reserved.
  expect(spent).toBeGreaterThanOrEqual((BigInt(ok) * WORST * 9n) / 10n);
  expect(spent).toBeGreaterThan(limit - 4n * WORST);
}

/**
 * Once idle leases went back: every counter of the organization has spent exactly what its logs
 * charged (`spent`), nothing is leased any more, and no lease row holds anything.
 */
async function expectCountersSettled(orgId: string, spent: bigint) {
  const read = async () => ({
    counters: await sql<{ scope: string; spent: string; leased: string }>(a, `select scope, spent_nanos::text as spent, leased_nanos::text as leased from spend_counter where org_id = ? and scope not like 'slots:%' order by scope`, [orgId]),
    leases: await sql<{ held: string | null }>(a, `select sum(amount_nanos)::text as held from spend_lease where org_id = ?`, [orgId]),
  });
  // Idle leases go back within LEASE_IDLE_MS (2 s) plus a sweep.
  let state = await read();
  for (let i = 0; i < 100 && (state.counters.some((c) => c.leased !== '0') || BigInt(state.leases[0]?.held ?? 0) !== 0n); i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = await read();
  }
  expect(state.counters.length).toBeGreaterThan(0);
  for (const c of state.counters) expect({ scope: c.scope, spent: BigInt(c.spent), leased: BigInt(c.leased) }).toEqual({ scope: c.scope, spent, leased: 0n });
  expect(BigInt(state.leases[0]?.held ?? 0)).toBe(0n);
}

describe('spend limits on two instances', () => {
  it("an API key's limit: 300 parallel calls spend at most its $0.05, and nearly all of it", async () => {
    const { orgId, projectId } = await gatewaySetup(a, owner, { credits: '100' });
    const { apiKey, key } = await owner.client.apiKey.create.mutate({ projectId, name: 'limited', spendLimit: { amount: '0.05', period: 'day' } });
    const results = await burst([key]);
    const { cost } = await charged('api_key_id = ?', [apiKey.id]);
    expectExact(results, cost, decimalToNanos('0.05'), 'budget_exceeded');
    await expectCountersSettled(orgId, cost);
    // The counter agrees with the logs, nothing is left leased once idle leases went back, and the list shows it.
    const [list] = (await owner.client.apiKey.list.query({ projectId })).filter((k) => k.id === apiKey.id);
    expect(list!.spent).toBe(nanos(cost));
    expect(list!.spendLimit).toEqual({ amount: '0.05', period: 'day' });
    expect(new Date(list!.resetsAt!).toISOString()).toBe(periodEnd('day', Date.now())!.toISOString());
  }, 60_000);

  it('the balance: $0.05 of credits never goes below zero under 300 parallel calls', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '0.05' });
    const results = await burst([key]);
    const { cost } = await charged('org_id = ?', [orgId]);
    expectExact(results, cost, decimalToNanos('0.05'), 'insufficient_credits');
    await expectCountersSettled(orgId, cost);
    expect(await balanceOf(a, orgId)).toBe(decimalToNanos('0.05') - cost);
    expect(await balanceOf(a, orgId)).toBeGreaterThanOrEqual(0n);
    expect((await usageLedgerOf(a, orgId)).total).toBe(cost);
  }, 60_000);

  it("a member's budget: their keys together spend at most it", async () => {
    const { orgId, projectId, key } = await gatewaySetup(a, owner, { credits: '100' });
    const second = await owner.client.apiKey.create.mutate({ projectId, name: 'second' });
    const set = await owner.client.team.setBudget.mutate({ orgId, userId: owner.user.id, amount: '0.05', period: 'month' });
    expect(set.budget).toEqual({ amount: '0.05', period: 'month' });
    const results = await burst([key, second.key]);
    const { cost } = await charged('org_id = ?', [orgId]);
    expectExact(results, cost, decimalToNanos('0.05'), 'budget_exceeded');
    await expectCountersSettled(orgId, cost);
    const me = (await owner.client.team.members.query({ orgId })).find((m) => m.userId === owner.user.id)!;
    expect(me.budget).toEqual({ amount: '0.05', period: 'month' });
    expect(me.spent).toBe(nanos(cost));
    const audit = await sql<{ action: string }>(a, `select action from audit_log where org_id = ? and action = 'member.budget_changed'`, [orgId]);
    expect(audit.length).toBe(1);
  }, 60_000);

  it('a budget changed while calls are in flight on both instances: the counters stay exact', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '100' });
    await owner.client.team.setBudget.mutate({ orgId, userId: owner.user.id, amount: '0.05', period: 'month' });
    const scope = `member:${orgId}:${owner.user.id}`;
    const slow = { ...BODY, messages: [{ role: 'user', content: `[delay:2500] ${PROMPT}` }] };
    // First wave: reserved on both instances' leases against $0.05, then held upstream.
    const first = Promise.all(Array.from({ length: 8 }, (_, i) => rawChat(i % 2 ? b : a, key, slow)));
    for (let i = 0; i < 100; i++) {
      const [row] = await sql<{ n: string }>(a, `select count(*) as n from spend_lease where scope = ? and amount_nanos > 0`, [scope]);
      if (Number(row!.n) === 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // The amount changes under them: the second wave leases against $0.06, the first wave's leases
    // retire with their reservations still in flight.
    await owner.client.team.setBudget.mutate({ orgId, userId: owner.user.id, amount: '0.06', period: 'month' });
    const second = await Promise.all(Array.from({ length: 8 }, (_, i) => rawChat(i % 2 ? b : a, key, BODY)));
    const all = [...(await first), ...second];
    expect(all.map((r) => r.status)).toEqual(all.map(() => 200));
    await flushUsage(a);
    await flushUsage(b);
    const { cost, calls } = await charged('org_id = ?', [orgId]);
    expect(calls).toBe(16);
    await expectCountersSettled(orgId, cost);
    const me = (await owner.client.team.members.query({ orgId })).find((m) => m.userId === owner.user.id)!;
    expect(me).toMatchObject({ budget: { amount: '0.06', period: 'month' }, spent: nanos(cost) });
  }, 60_000);

  it("the organization's daily cap on credits", async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '100' });
    const org = await owner.client.organization.get.query({ orgId });
    const updated = await owner.client.organization.update.mutate({ orgId, version: org.version, dailySpendCap: '0.05' });
    expect(updated.dailySpendCap).toBe('0.05');
    const results = await burst([key]);
    const { cost } = await charged('org_id = ?', [orgId]);
    expectExact(results, cost, decimalToNanos('0.05'), 'budget_exceeded');
    await expectCountersSettled(orgId, cost);
    const after = await owner.client.organization.get.query({ orgId });
    expect(after.dailySpend).toMatchObject({ limit: '0.05', period: 'day', spent: nanos(cost) });
  }, 60_000);

  it('maxConcurrentCalls holds across both instances', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '100' });
    const org = await owner.client.organization.get.query({ orgId });
    await owner.client.organization.update.mutate({ orgId, version: org.version, maxConcurrentCalls: 3 });
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, upstream.openStreams())), 2);
    const body = { model: 'openai/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: '[chunks:4] [slow:60] hello' }] };
    const results = await burst([key], 24, body).finally(() => clearInterval(watch));
    expect(most).toBeLessThanOrEqual(3);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(3);
    expect(results.every((r) => r.status === 200 || (r.status === 429 && r.code === 'concurrency_limit_exceeded'))).toBe(true);
    // Slots come back when calls finish: a later call goes through, on either instance (an instance
    // gone idle does not keep the slots its calls had). Across instances that takes a moment: the
    // other instance's give-back commits just after its answers went out, and an instance that found
    // the cap reached asks again after 250 ms (RECHECK_MS); meanwhile the answer is the 429 that says
    // to retry, so this retries for up to 3 s, as a client honouring retry-after would.
    for (const app of [a, b]) {
      const statuses: number[] = [];
      const deadline = Date.now() + 3000;
      for (;;) {
        const r = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'after' }] });
        statuses.push(r.status);
        if (r.status !== 429 || Date.now() > deadline) break;
        expect((r.json?.error as { code?: string } | undefined)?.code).toBe('concurrency_limit_exceeded');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(statuses.at(-1)).toBe(200);
    }
  }, 60_000);

  it('slots an instance no longer uses go back at once: the other instance gets them', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '100' });
    const org = await owner.client.organization.get.query({ orgId });
    await owner.client.organization.update.mutate({ orgId, version: org.version, maxConcurrentCalls: 2 });
    const body = { model: 'openai/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: '[chunks:4] [slow:60] hello' }] };
    // Both slots leased by instance a for its two calls in flight...
    expect((await Promise.all([rawChat(a, key, body), rawChat(a, key, body)])).map((r) => r.status)).toEqual([200, 200]);
    // ...are not kept there idle: instance b's calls right after get them. Instance a gives them back
    // as its calls finish, a moment after their answers went out, so a call of b's that arrives first
    // gets the 429 that says to retry; within a second (well before a's 2 s idle sweep would give
    // them back) both must be through.
    const deadline = Date.now() + 1000;
    const second = async () => {
      for (;;) {
        const r = await rawChat(b, key, body);
        if (r.status !== 429 || Date.now() > deadline) return r.status;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    expect(await Promise.all([second(), second()])).toEqual([200, 200]);
    await flushUsage(a);
    await flushUsage(b);
    await expectCountersSettled(orgId, (await charged('org_id = ?', [orgId])).cost);
    const [slots] = await sql<{ leased: string }>(a, `select leased_nanos::text as leased from spend_counter where scope = ?`, [`slots:${orgId}`]);
    expect(slots!.leased).toBe('0');
  }, 60_000);

  it('a period resets at its UTC boundary: yesterday does not count, today does until midnight', async () => {
    const { projectId } = await gatewaySetup(a, owner, { credits: '100' });
    const day = 86_400_000;
    const today = new Date(Math.floor(Date.now() / day) * day);
    const spentToday = await owner.client.apiKey.create.mutate({ projectId, name: 'spent today', spendLimit: { amount: '0.01', period: 'day' } });
    const spentYesterday = await owner.client.apiKey.create.mutate({ projectId, name: 'spent yesterday', spendLimit: { amount: '0.01', period: 'day' } });
    const insert = `insert into spend_counter (scope, period_start, org_id, spent_nanos) select ?, ?, org_id, ? from api_key where id = ?`;
    await sql(a, insert, [`key:${spentToday.apiKey.id}`, today, decimalToNanos('0.01').toString(), spentToday.apiKey.id]);
    await sql(a, insert, [`key:${spentYesterday.apiKey.id}`, new Date(today.getTime() - day), decimalToNanos('0.01').toString(), spentYesterday.apiKey.id]);
    const refused = await rawChat(b, spentToday.key, BODY);
    expect(refused.status).toBe(402);
    const error = refused.json!.error as { message: string; code: string; type: string; limit: { kind: string; left: string; resetsAt: string; maxTokens: number | null } };
    expect(error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', limit: { kind: 'key', left: '0.00', resetsAt: new Date(today.getTime() + day).toISOString(), maxTokens: null } });
    expect(error.message).toContain("this API key's daily spend limit of $0.01 is reached: $0.00 left; it resets at " + new Date(today.getTime() + day).toISOString());
    expect((await rawChat(b, spentYesterday.key, BODY)).status).toBe(200);
  }, 60_000);

  it('counters of periods that ended over 35 days ago are pruned; current and lifetime ones stay', async () => {
    const { orgId, apiKeyId } = await gatewaySetup(a, owner, { credits: '100' });
    const day = 86_400_000;
    const now = Date.now();
    const insert = `insert into spend_counter (scope, period_start, org_id, spent_nanos) values (?, ?, ?, 7)`;
    const rows: [string, Date][] = [
      [`month:${orgId}`, new Date(now - 70 * day)], // a month that ended ~39 days ago at most
      [`day:${orgId}`, new Date(now - 67 * day)],
      [`month:${orgId}`, new Date(now - 40 * day)], // a month that may have ended only ~9 days ago
      [`day:${orgId}`, new Date(now - 1 * day)],
      [`key:${apiKeyId}`, new Date(0)], // lifetime
      [`balance:${orgId}`, new Date(0)],
    ];
    for (const [scope, start] of rows) await sql(a, insert, [scope, start, orgId]);
    expect(await pruneSpendCounters(a.orm.em.fork())).toBe(2);
    const left = await sql<{ scope: string; start: Date }>(a, `select scope, period_start as start from spend_counter where org_id = ?`, [orgId]);
    const names = (list: [string, Date][]) => list.map(([scope, start]) => `${scope}@${start.toISOString()}`).sort();
    expect(names(left.map((r) => [r.scope, new Date(r.start)]))).toEqual(names(rows.slice(2)));
  }, 60_000);

  it("removing a member removes their budget: invited back, they have none", async () => {
    const { orgId } = await gatewaySetup(a, owner, { credits: '100' });
    const join = async (who: Owner) => {
      const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role: 'admin' });
      await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
    };
    const member = await signUp(a.url, 'Budgeted Member');
    await join(member);
    await owner.client.team.setBudget.mutate({ orgId, userId: member.user.id, amount: '0.05', period: 'month' });
    await owner.client.team.removeMember.mutate({ orgId, userId: member.user.id });
    expect(await sql(a, `select 1 from member_budget where org_id = ? and user_id = ?`, [orgId, member.user.id])).toEqual([]);
    await join(member);
    const back = (await owner.client.team.members.query({ orgId })).find((m) => m.userId === member.user.id)!;
    expect(back.budget).toBeNull();
  }, 60_000);

  it('402 answers name the limit, what is left, the reset and the max_tokens that fits (chat completions and messages)', async () => {
    const { projectId } = await gatewaySetup(a, owner, { credits: '100' });
    // Room for a short answer, not for a 4096-token one.
    const { key } = await owner.client.apiKey.create.mutate({ projectId, name: 'small', spendLimit: { amount: '0.01', period: 'lifetime' } });
    const big = { ...BODY, max_tokens: 4096 };
    const chat = await rawChat(a, key, big);
    expect(chat.status).toBe(402);
    const err = chat.json!.error as { message: string; code: string; limit: { left: string; resetsAt: string | null; maxTokens: number } };
    expect(err.code).toBe('budget_exceeded');
    expect(err.limit.left).toBe('0.01');
    expect(err.limit.resetsAt).toBeNull();
    expect(err.limit.maxTokens).toBeGreaterThan(20);
    expect(err.message).toContain(`max_tokens ${err.limit.maxTokens} would fit`);
    expect(err.message).toContain('a lifetime limit: it does not reset');

    const res = await fetch(`${b.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: MODEL, max_tokens: 4096, messages: [{ role: 'user', content: PROMPT }] }),
    });
    expect(res.status).toBe(402);
    const body = (await res.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('billing_error');
    expect(body.error.message).toMatch(/this API key's lifetime spend limit of \$0\.01 is reached: \$0\.0\d left.*max_tokens \d+ would fit/);
    // The max_tokens it named fits indeed.
    expect((await rawChat(a, key, { ...BODY, max_tokens: err.limit.maxTokens })).status).toBe(200);
  }, 60_000);
});

const nanos = (n: bigint) => {
  const whole = n / 1_000_000_000n;
  let frac = (n % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${whole}.${frac}`;
};
