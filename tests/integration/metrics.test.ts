/**
 * GET /metrics under gateway traffic: the gateway counters agree with the request log row for row
 * (by provider, model label and status), the histograms count every call, upstream failures,
 * meter batches and ledger postings match what was committed, open sockets and live subscriptions
 * follow a live client, tRPC calls and job runs are counted, and the endpoint asks for METRICS_TOKEN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, newOwner, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { liveConnection } from '../helpers/live.js';
import { waitFor } from '../helpers/billing.js';
import { scrape, total, type Sample } from '../helpers/metrics.js';
import { modelLabel, providerLabel } from '../../server/observability/metrics.js';
import { observedHandler } from '../../server/jobs/observed.js';

const TOKEN = 'metrics-token-for-tests';
let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;
let gw: Awaited<ReturnType<typeof gatewaySetup>>;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { METRICS_TOKEN: TOKEN }) });
  owner = await newOwner(app);
  gw = await gatewaySetup(app, owner);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const metrics = () => scrape(app.url, TOKEN);
const chat = (model: string, content: string, stream = false) => rawChat(app, gw.key, { model, messages: [{ role: 'user', content }], ...(stream ? { stream: true } : {}) });

/** after - before, per sample key (name and labels). */
function delta(before: Sample[], after: Sample[], name: string, match: Record<string, string> = {}): number {
  return total(after, name, match) - total(before, name, match);
}

describe('/metrics', () => {
  it('asks for the token when METRICS_TOKEN is set', async () => {
    expect((await fetch(`${app.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${app.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await ok.text();
    for (const name of ['gateway_requests_total', 'gateway_request_duration_seconds', 'gateway_db_pool_connections', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('counts gateway calls as the request log records them', async () => {
    const before = await metrics();
    const ledgerBefore = await usageLedgerOf(app, gw.orgId);
    const answers = await Promise.all([
      ...Array.from({ length: 4 }, () => chat('openai/gpt-4o-mini', 'hello there')),
      ...Array.from({ length: 3 }, () => chat('openai/gpt-4o-mini', 'stream me [chunks:3]', true)),
      ...Array.from({ length: 2 }, () => chat('openai/gpt-4o-mini', 'break [status:500]')),
      chat('anthropic/claude-haiku-4-5', 'hi'),
      chat('openai/not-in-the-catalog-model', 'hi'),
    ]);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(8);
    expect(answers.filter((a) => a.status === 502).length).toBe(2);
    await flushUsage(app);
    const after = await metrics();

    const rows = await sql<{ provider: string; model: string; status: number; n: string; ttft: string }>(
      app,
      'select provider, model, status, count(*) as n, count(ttft_ms) as ttft from request_log where org_id = ? group by provider, model, status',
      [gw.orgId],
    );
    const calls = rows.reduce((n, r) => n + Number(r.n), 0);
    expect(calls).toBe(answers.length);
    // Row for row: each (provider, model label, status) has as many calls in the counter as in the log.
    const expected = new Map<string, number>();
    for (const r of rows) {
      const key = `${providerLabel(r.provider)} ${modelLabel(r.model)} ${r.status}`;
      expected.set(key, (expected.get(key) ?? 0) + Number(r.n));
    }
    const counted = new Map<string, number>();
    for (const s of after.filter((x) => x.name === 'gateway_requests_total')) {
      const key = `${s.labels.provider} ${s.labels.model} ${s.labels.status}`;
      const d = s.value - total(before, 'gateway_requests_total', s.labels);
      if (d !== 0) counted.set(key, (counted.get(key) ?? 0) + d);
    }
    expect(Object.fromEntries(counted)).toEqual(Object.fromEntries(expected));
    expect(counted.get('openai gpt-4o-mini 200')).toBe(7);
    expect(counted.get('openai gpt-4o-mini 502')).toBe(2);
    // Models outside the catalog share one label value.
    expect([...counted.keys()].some((k) => k.includes('not-in-the-catalog'))).toBe(false);
    expect(after.filter((s) => s.name === 'gateway_requests_total').every((s) => s.labels.endpoint === 'chat.completions')).toBe(true);

    expect(delta(before, after, 'gateway_request_duration_seconds_count')).toBe(calls);
    expect(delta(before, after, 'gateway_time_to_first_token_seconds_count')).toBe(rows.reduce((n, r) => n + Number(r.ttft), 0));
    expect(delta(before, after, 'gateway_time_to_first_token_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'openai', status: '502' })).toBe(2);

    // Every record went through a committed batch; the lag is measured once per batch.
    expect(delta(before, after, 'gateway_meter_batch_records_sum')).toBe(calls);
    const batches = delta(before, after, 'gateway_meter_batch_records_count');
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(delta(before, after, 'gateway_meter_commit_lag_seconds_count')).toBe(batches);
    expect(total(after, 'gateway_meter_pending_records')).toBe(0);

    // One usage ledger entry per organization per batch, counted after its commit.
    const ledgerAfter = await usageLedgerOf(app, gw.orgId);
    expect(delta(before, after, 'gateway_ledger_postings_total', { type: 'usage', status: 'completed' })).toBe(ledgerAfter.entries - ledgerBefore.entries);
    expect(ledgerAfter.entries - ledgerBefore.entries).toBeGreaterThanOrEqual(1);
  });

  it('shows open sockets, live subscriptions and event lag', async () => {
    const live = liveConnection(app.url, { cookie: owner.cookieHeader() });
    const sub = live.subscribe(gw.orgId);
    await sub.event('presence');
    const open = await metrics();
    expect(total(open, 'gateway_websockets_open')).toBe(1);
    expect(total(open, 'gateway_live_subscriptions')).toBe(1);
    const lagBefore = total(open, 'gateway_live_event_lag_seconds_count');
    expect((await chat('openai/gpt-4o-mini', 'hello')).status).toBe(200);
    await flushUsage(app);
    await sub.event('credits.changed');
    expect(total(await metrics(), 'gateway_live_event_lag_seconds_count')).toBeGreaterThan(lagBefore);
    await live.close();
    await waitFor(async () => {
      const s = await metrics();
      return total(s, 'gateway_websockets_open') === 0 && total(s, 'gateway_live_subscriptions') === 0;
    }, 10_000, 'the socket and its subscription to close');
  });

  it('reports database pool use', async () => {
    const s = await metrics();
    for (const pool of ['orm', 'meter']) {
      for (const state of ['used', 'idle', 'waiting']) expect(s.some((x) => x.name === 'gateway_db_pool_connections' && x.labels.pool === pool && x.labels.state === state)).toBe(true);
    }
    expect(total(s, 'gateway_db_pool_connections', { pool: 'orm' })).toBeGreaterThanOrEqual(1);
  });

  it('counts tRPC calls by procedure and result code', async () => {
    const before = await metrics();
    await owner.client.organization.list.query();
    await expect(owner.client.organization.get.query({ orgId: '00000000-0000-4000-8000-000000000000' })).rejects.toThrow();
    const after = await metrics();
    expect(delta(before, after, 'gateway_trpc_calls_total', { path: 'organization.list', type: 'query', code: 'OK' })).toBe(1);
    expect(delta(before, after, 'gateway_trpc_calls_total', { path: 'organization.get', type: 'query', code: 'NOT_FOUND' })).toBe(1);
    expect(delta(before, after, 'gateway_trpc_duration_seconds_count', { type: 'query' })).toBe(2);
  });

  it('counts job runs by queue and outcome', async () => {
    const before = await metrics();
    const ok = observedHandler('test-queue', async () => 'done');
    const failing = observedHandler('test-queue', async () => {
      throw new Error('job failed on purpose');
    });
    expect(await ok()).toBe('done');
    await expect(failing()).rejects.toThrow('job failed on purpose');
    const after = await metrics();
    expect(delta(before, after, 'gateway_jobs_total', { queue: 'test-queue', outcome: 'completed' })).toBe(1);
    expect(delta(before, after, 'gateway_jobs_total', { queue: 'test-queue', outcome: 'failed' })).toBe(1);
    expect(delta(before, after, 'gateway_job_duration_seconds_count', { queue: 'test-queue' })).toBe(2);
  });
});
