/**
 * Routing records (issue #11, money and records): a call's upstream attempts reach the request log
 * (request_log.attempts, null for a call with at most one), rollups count calls once and also count
 * retried calls and fallbacks per provider, logs.get / logs.list return the attempts, analytics
 * return the counts; provider key weights are validated, stored, listed and loaded by the gateway,
 * and an organization may hold several keys for one provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, meterOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import type { UsageAttempt, UsageRecord } from '../../server/modules/usage/meter.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string } | 'ok'> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return 'ok';
  if (err instanceof TRPCClientError) return { code: String((err.data as { code?: string } | undefined)?.code), message: err.message };
  throw err;
}

function record(orgId: string, projectId: string, apiKeyId: string, extra: Partial<UsageRecord> = {}): UsageRecord {
  return {
    orgId, projectId, apiKeyId, endpoint: 'chat.completions', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 20, cachedTokens: 0, cacheWriteTokens: 0,
    costNanos: 1000n, paidBy: 'credits', latencyMs: 30, ttftMs: null, status: 200, error: null,
    cached: false, streamed: false, canceled: false, requestBody: null, responseBody: null, createdAt: new Date(), ...extra,
  };
}
const attempt = (provider: string, model: string, status: number, over: Partial<UsageAttempt> = {}): UsageAttempt => ({
  provider, model, keyName: provider, providerKeyId: null, status, latencyMs: 12, error: status === 200 ? null : `upstream ${status}`, ...over,
});

const hour = () => ({ from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) });

describe('attempts in the request log and the rollups', () => {
  it('stores several attempts, nothing for one; counts each call once with its retries and fallbacks per provider', async () => {
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const meter = meterOf(app);
    meter.record(record(orgId, projectId, apiKeyId)); // answered without routing records
    meter.record(record(orgId, projectId, apiKeyId, { attempts: [attempt('openai', 'gpt-4o-mini', 200)] })); // one attempt
    meter.record(record(orgId, projectId, apiKeyId, { attempts: [attempt('openai', 'gpt-4o-mini', 429, { keyName: 'openai-2' }), attempt('openai', 'gpt-4o-mini', 200)] })); // another key
    meter.record(record(orgId, projectId, apiKeyId, { attempts: [attempt('azure', 'gpt-4o-mini', 0, { error: 'connect ECONNREFUSED' }), attempt('openai', 'gpt-4o-mini', 200)] })); // another provider
    meter.record(
      record(orgId, projectId, apiKeyId, {
        provider: 'anthropic',
        model: 'claude-haiku-4-5',
        attempts: [attempt('openai', 'gpt-4o-mini', 500, { error: 'bad\u0000 text \ud800 here' }), attempt('openai', 'gpt-4o-mini', 503), attempt('anthropic', 'claude-haiku-4-5', 200)],
      }),
    );
    await flushUsage(app);

    const logs = await sql<{ id: string; provider: string; attempts: UsageAttempt[] | null }>(app, 'select id, provider, attempts from request_log where org_id = ? order by id', [orgId]);
    expect(logs).toHaveLength(5);
    expect(logs.map((l) => l.attempts?.length ?? null)).toEqual([null, null, 2, 2, 3]);
    expect(logs[3]!.attempts![0]).toEqual({ provider: 'azure', model: 'gpt-4o-mini', keyName: 'azure', providerKeyId: null, status: 0, latencyMs: 12, error: 'connect ECONNREFUSED' });
    // Text PostgreSQL cannot hold is repaired, as in bodies.
    expect(logs[4]!.attempts![0]!.error).toBe('bad\ufffd text \ufffd here');

    const rollups = await sql<{ provider: string; requests: number; retried: number; fell_back: number }>(
      app,
      'select provider, sum(requests)::int as requests, sum(retried)::int as retried, sum(fell_back)::int as fell_back from usage_rollup where org_id = ? group by provider order by provider',
      [orgId],
    );
    expect(rollups).toEqual([
      { provider: 'anthropic', requests: 1, retried: 1, fell_back: 1 },
      { provider: 'openai', requests: 4, retried: 2, fell_back: 1 },
    ]);
    const [project] = await sql<{ requests: number; retried: number; fell_back: number }>(
      app,
      'select sum(requests)::int as requests, sum(retried)::int as retried, sum(fell_back)::int as fell_back from usage_rollup_project where org_id = ?',
      [orgId],
    );
    expect(project).toEqual({ requests: 5, retried: 3, fell_back: 2 });

    const byProvider = await owner.client.analytics.breakdown.query({ orgId, ...hour(), by: 'provider' });
    expect(byProvider.map((r) => ({ key: r.key, requests: r.requests, retried: r.retried, fellBack: r.fellBack })).sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: 'anthropic', requests: 1, retried: 1, fellBack: 1 },
      { key: 'openai', requests: 4, retried: 2, fellBack: 1 },
    ]);
    expect(byProvider.find((r) => r.key === 'openai')!.retryRate).toBe(0.5);
    const summary = await owner.client.analytics.summary.query({ orgId, ...hour() });
    expect(summary).toMatchObject({ requests: 5, retried: 3, fellBack: 2, retryRate: 0.6, fallbackRate: 0.4 });

    // logs.get and logs.list return the attempts (empty for a call with at most one).
    const detail = await owner.client.logs.get.query({ orgId, logId: logs[4]!.id });
    expect(detail.attempts.map((a) => [a.provider, a.status])).toEqual([['openai', 500], ['openai', 503], ['anthropic', 200]]);
    expect((await owner.client.logs.get.query({ orgId, logId: logs[1]!.id })).attempts).toEqual([]);
    const list = await owner.client.logs.list.query({ orgId });
    expect(list.items.map((i) => i.attempts.length)).toEqual([3, 2, 2, 0, 0]);
    expect(list.items[1]!.attempts[0]).toMatchObject({ provider: 'azure', keyName: 'azure', status: 0, error: 'connect ECONNREFUSED' });
  });

  it('a call through the gateway that failed over to another key of the provider is logged with both attempts and counted once', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner, { mode: 'provider-keys' });
    // Two keys for one provider: the heavy one is refused upstream, the light one answers.
    const bad = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-routing-bad-0001', weight: 100 });
    const good = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-routing-good-0002' });
    expect([bad.name, good.name]).toEqual(['openai', 'openai-2']);
    upstream.faults = [{ status: 401, authorization: 'Bearer sk-routing-bad-0001' }];
    try {
      // The heavy key is picked first for nearly every call (until its 401 cools it down); a few calls make missing it all but impossible.
      let calls = 0;
      let failedOver = false;
      while (!failedOver && calls < 6) {
        const res = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `fail over ${calls}` }] });
        calls++;
        expect(res.status, `${res.text} attempts=${res.headers.get('x-gateway-attempts')}`).toBe(200);
        failedOver = res.headers.get('x-gateway-attempts') === '2';
      }
      expect(failedOver).toBe(true);
      await flushUsage(app);
      const logs = await sql<{ id: string; status: number; attempts: UsageAttempt[] | null; cost_nanos: string; paid_by: string }>(
        app,
        'select id, status, attempts, cost_nanos::text, paid_by from request_log where org_id = ? order by id',
        [orgId],
      );
      expect(logs).toHaveLength(calls);
      const over = logs.filter((l) => l.attempts !== null);
      expect(over.length).toBeGreaterThanOrEqual(1);
      for (const l of over) {
        expect(l.status).toBe(200);
        expect(l.attempts!.map((a) => [a.keyName, a.providerKeyId, a.status])).toEqual([
          ['openai', bad.id, 401],
          ['openai-2', good.id, 200],
        ]);
      }
      const [rollup] = await sql<{ requests: number; retried: number; fell_back: number }>(
        app,
        'select sum(requests)::int as requests, sum(retried)::int as retried, sum(fell_back)::int as fell_back from usage_rollup where org_id = ? and project_id = ?',
        [orgId, projectId],
      );
      // Calls, not attempts; another key of the same provider and model is a retry, not a fallback.
      expect(rollup).toEqual({ requests: calls, retried: over.length, fell_back: 0 });
      const detail = await owner.client.logs.get.query({ orgId, logId: over[0]!.id });
      expect(detail.attempts.map((a) => a.keyName)).toEqual(['openai', 'openai-2']);
    } finally {
      upstream.faults = [];
    }
  });
});

describe('provider key weights', () => {
  it('are validated with a clear error, stored, listed, updated and loaded by the gateway; several keys per provider are allowed', async () => {
    const { orgId } = await gatewaySetup(app, owner);
    for (const weight of [0, 101, 2.5, -1]) {
      const r = await refusal(owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-weight-check-0001', weight }));
      expect(r, String(weight)).not.toBe('ok');
      expect(r !== 'ok' && r.code).toBe('BAD_REQUEST');
      expect(r !== 'ok' && r.message).toMatch(/weight must be/);
    }
    const first = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-weight-first-0001' });
    expect(first.weight).toBe(1);
    const second = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-weight-second-0002', weight: 3 });
    const third = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-weight-third-0003', name: 'backup' });
    expect([first.name, second.name, third.name]).toEqual(['openai', 'openai-2', 'backup']);
    // A custom provider's name stays unique (it is the model prefix).
    const custom = { orgId, provider: 'custom' as const, name: 'my-llm', baseUrl: `${upstream.url}/v1`, key: 'sk-custom-llm-0001' };
    await owner.client.providerKey.create.mutate(custom);
    expect(await refusal(owner.client.providerKey.create.mutate(custom))).toMatchObject({ code: 'CONFLICT' });

    const updated = await owner.client.providerKey.update.mutate({ providerKeyId: third.id, weight: 100 });
    expect(updated.weight).toBe(100);
    expect(await refusal(owner.client.providerKey.update.mutate({ providerKeyId: third.id, weight: 0 }))).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/weight must be at least 1/) });
    const list = await owner.client.providerKey.list.query({ orgId });
    expect(Object.fromEntries(list.map((k) => [k.name, k.weight]))).toEqual({ openai: 1, 'openai-2': 3, backup: 100, 'my-llm': 1 });
    const [row] = await sql<{ weight: number }>(app, 'select weight from provider_key where id = ?', [second.id]);
    expect(row!.weight).toBe(3);

    const runtime = app.services.gateway!.runtime;
    const creds = await runtime.providerCredentials(orgId);
    expect(Object.fromEntries(creds.map((c) => [c.name, c.weight]))).toEqual({ openai: 1, 'openai-2': 3, backup: 100, 'my-llm': 1 });
    // The change is audited with the weight before and after.
    const [audit] = await sql<{ before: { weight: number }; after: { weight: number } }>(
      app,
      `select before, after from audit_log where org_id = ? and action = 'providerKey.updated' and target_id = ? order by id desc limit 1`,
      [orgId, third.id],
    );
    expect([audit!.before.weight, audit!.after.weight]).toEqual([1, 100]);
  });
});
