/**
 * Spend-limit leases come back (issue #12 follow-up):
 * - an instance that crashes holding a lease (no heartbeat, nothing given back) keeps it out of the
 *   other instance's reach only until it expires (GATEWAY_LEASE_TTL_MS, 5 s here): the other
 *   instance is refused while the limit minus that lease is used up, then gets the whole remainder;
 *   counters end equal to the logs and nothing stays leased;
 * - records the usage meter gives up on (refused by the database every time) were never charged:
 *   what their costs took from the lease is free again, instead of shrinking the limit until a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, meterOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { decimalToNanos } from '../../shared/money.js';
import { findModel } from '../../shared/models.js';
import { worstCost } from '../../server/modules/limits/admission.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;

// As in spend-limits.test.ts: an expensive model and a prompt whose estimate is close to its exact
// cost (the answer is exactly max_tokens long), so a limit is used almost entirely.
const MODEL = 'anthropic/claude-opus-4-1';
const PROMPT = `[chunks:20] ${Array.from({ length: 40 }, () => 'abcd').join(' ')}`;
const BODY = { model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: PROMPT }] };
const WORST = worstCost(findModel('anthropic', 'claude-opus-4-1')!, { promptChars: JSON.stringify(BODY.messages).length, maxOutputTokens: 20 });
const TTL_MS = 5000;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  const env = fakeUpstreamEnv(upstream.url, { GATEWAY_UPSTREAM_TIMEOUT_MS: '30000', GATEWAY_LEASE_TTL_MS: String(TTL_MS) });
  a = await startTestApp({ env });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env });
  owner = await newOwner(a, 'Recovery Owner');
}, 120_000);

afterAll(async () => {
  if (b) meterOf(b).fault = null;
  await b?.close();
  await a?.close();
  await upstream?.close();
});

/** `n` calls at once on `app`; their statuses and error codes, once the meter committed them. */
async function burst(app: TestApp, key: string, n: number) {
  const results = await Promise.all(Array.from({ length: n }, () => rawChat(app, key, BODY).then((r) => ({ status: r.status, code: (r.json?.error as { code?: string } | undefined)?.code ?? null }))));
  await flushUsage(app);
  return results;
}

async function keyCost(apiKeyId: string): Promise<bigint> {
  const [row] = await sql<{ cost: string | null }>(a, `select sum(cost_nanos)::text as cost from request_log where status = 200 and api_key_id = ?`, [apiKeyId]);
  return BigInt(row!.cost ?? 0);
}

const leaseRows = (scope: string) => sql<{ id: string; amount: string; expired: boolean }>(a, `select id::text as id, amount_nanos::text as amount, expires_at < now() as expired from spend_lease where scope = ? order by id`, [scope]);

/** Every counter of the organization has spent `spent`, nothing is leased, no lease row holds anything (idle leases go back within ~2 s). */
async function expectSettled(orgId: string, spent: bigint) {
  const read = async () => ({
    counters: await sql<{ scope: string; spent: string; leased: string }>(a, `select scope, spent_nanos::text as spent, leased_nanos::text as leased from spend_counter where org_id = ? and scope not like 'slots:%' order by scope`, [orgId]),
    held: BigInt((await sql<{ held: string | null }>(a, `select sum(amount_nanos)::text as held from spend_lease where org_id = ?`, [orgId]))[0]?.held ?? 0),
  });
  let state = await read();
  for (let i = 0; i < 100 && (state.counters.some((c) => c.leased !== '0') || state.held !== 0n); i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = await read();
  }
  expect(state.counters.length).toBeGreaterThan(0);
  for (const c of state.counters) expect({ scope: c.scope, spent: BigInt(c.spent), leased: BigInt(c.leased) }).toEqual({ scope: c.scope, spent, leased: 0n });
  expect(state.held).toBe(0n);
}

const refusals = (results: { status: number; code: string | null }[]) => {
  expect(results.every((r) => r.status === 200 || (r.status === 402 && r.code === 'budget_exceeded'))).toBe(true);
  return results.filter((r) => r.status === 402).length;
};

describe('spend-limit leases come back', () => {
  it("a crashed instance's lease: the other instance is kept from it only until it expires, then gets the whole remainder", async () => {
    const limit = decimalToNanos('0.10');
    const { orgId, projectId } = await gatewaySetup(a, owner, { credits: '100' });
    const { apiKey, key } = await owner.client.apiKey.create.mutate({ projectId, name: 'limited', spendLimit: { amount: '0.10', period: 'lifetime' } });
    const scope = `key:${apiKey.id}`;

    // Instance a serves a call: it leases a slice (an eighth of the limit) and uses a part of it.
    expect((await rawChat(a, key, BODY)).status).toBe(200);
    // ...and crashes at once (within its lease's idle time): no heartbeat, nothing given back.
    await a.services.gateway!.limits.abandon();
    await flushUsage(a);
    const spentA = await keyCost(apiKey.id);
    const [leaseA, ...others] = await leaseRows(scope);
    expect(others).toEqual([]);
    const heldA = BigInt(leaseA!.amount);
    expect(heldA).toBeGreaterThan(2n * WORST);
    expect(leaseA!.expired).toBe(false);

    // While that lease is live, instance b uses everything but it, and is refused then.
    const first = await burst(b, key, 60);
    expect(refusals(first)).toBeGreaterThan(0);
    const spentB1 = (await keyCost(apiKey.id)) - spentA;
    expect(spentB1).toBeLessThanOrEqual(limit - spentA - heldA);
    expect(spentB1).toBeGreaterThan(limit - spentA - heldA - 4n * WORST);
    // (The lease was live throughout: still there, untouched.)
    expect((await leaseRows(scope)).find((l) => l.id === leaseA!.id)?.amount).toBe(leaseA!.amount);

    // Once it expired (no heartbeat extends it), b's next lease reclaims it: the whole remainder.
    // (Waiting also for b's own idle leases to go back, so its next calls lease afresh on every
    // limit, the balance included, and so reclaim a's balance lease too.)
    const live = async () => Number((await sql<{ n: string }>(a, `select count(*) as n from spend_lease where org_id = ? and amount_nanos > 0 and expires_at >= now()`, [orgId]))[0]!.n);
    for (let i = 0; i < 300 && (await live()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await leaseRows(scope)).find((l) => l.id === leaseA!.id)?.expired).toBe(true);
    expect(await live()).toBe(0);
    const second = await burst(b, key, 30);
    expect(refusals(second)).toBeGreaterThan(0);
    const total = await keyCost(apiKey.id);
    expect(total - spentA - spentB1).toBeGreaterThan(heldA - 4n * WORST);
    expect(total).toBeLessThanOrEqual(limit);
    expect(total).toBeGreaterThan(limit - 4n * WORST);
    expect((await leaseRows(scope)).find((l) => l.id === leaseA!.id)).toBeUndefined();

    // Counters equal the logs (balance and key), and nothing stays leased: a's balance lease was reclaimed too.
    await expectSettled(orgId, total);
  }, 90_000);

  it('records the meter gives up on: what they took from the lease is free again, the whole limit stays usable', async () => {
    const limit = decimalToNanos('0.05');
    const { orgId, projectId } = await gatewaySetup(a, owner, { credits: '100' });
    const { apiKey, key } = await owner.client.apiKey.create.mutate({ projectId, name: 'dropped', spendLimit: { amount: '0.05', period: 'lifetime' } });
    const meter = meterOf(b);
    const dropped = meter.stats.dropped;
    // The database refuses every batch with this organization's records: split, stripped, given up.
    meter.fault = (point, _batchId, records) => {
      if (point === 'begin' && records.some((r) => r.orgId === orgId)) throw Object.assign(new Error('invalid input syntax for type json'), { code: '22P02' });
    };
    try {
      const served = await Promise.all(Array.from({ length: 4 }, () => rawChat(b, key, BODY)));
      expect(served.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      await flushUsage(b);
    } finally {
      meter.fault = null;
    }
    expect(meter.stats.dropped - dropped).toBe(4);
    expect(await logsOf(a, orgId)).toEqual([]);

    // Never charged, never counted as spent, and no longer held: the counters are back to nothing.
    await expectSettled(orgId, 0n);

    // The whole limit is there for calls.
    const results = await burst(b, key, 40);
    expect(refusals(results)).toBeGreaterThan(0);
    const total = await keyCost(apiKey.id);
    expect(total).toBeLessThanOrEqual(limit);
    expect(total).toBeGreaterThan(limit - 4n * WORST);
    await expectSettled(orgId, total);
  }, 90_000);
});
