/**
 * Metering is exact: concurrent calls across two instances on one database leave request logs,
 * usage ledger entries and the balance in agreement to the nano-dollar, and rollups equal the raw
 * logs. Failures before any output are logged and not charged; a stream that fails, is cut or is
 * aborted is charged for what it delivered; an answer without usage is estimated from its content;
 * cache hits are not charged; closing an instance drains its pending records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, newOwner, openai, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { waitFor } from '../helpers/billing.js';
import { liveConnection } from '../helpers/live.js';
import { ledgerCheck } from '../../server/modules/billing/ledger.js';
import { LATENCY_COLUMNS } from '../../server/modules/usage/histogram.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  a = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await upstream?.close();
});

const flushBoth = () => Promise.all([flushUsage(a), flushUsage(b)]);

async function rollupTotals(orgId: string) {
  const [r] = await sql<Record<string, string>>(
    a,
    `select sum(requests) as requests, sum(errors) as errors, sum(cache_hits) as cache_hits, sum(canceled) as canceled, sum(streamed) as streamed,
            sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens, sum(cached_tokens) as cached_tokens,
            sum(cost_nanos) as cost_nanos, sum(charged_nanos) as charged_nanos, sum(latency_sum_ms) as latency_sum_ms,
            sum(${LATENCY_COLUMNS.join(' + ')}) as histogram
       from usage_rollup where org_id = ?`,
    [orgId],
  );
  const [l] = await sql<Record<string, string>>(
    a,
    `select count(*) as requests, count(*) filter (where status >= 400) as errors, count(*) filter (where cached) as cache_hits,
            count(*) filter (where canceled) as canceled, count(*) filter (where streamed) as streamed,
            sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens, sum(cached_tokens) as cached_tokens,
            sum(cost_nanos) as cost_nanos, sum(cost_nanos) filter (where paid_by = 'credits') as charged_nanos, sum(latency_ms) as latency_sum_ms,
            count(*) as histogram
       from request_log where org_id = ?`,
    [orgId],
  );
  const norm = (x: Record<string, string>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, String(v ?? 0)]));
  return { rollups: norm(r!), logs: norm(l!) };
}

describe('exact accounting', () => {
  it('N concurrent calls across two instances: log costs == usage ledger == balance change; rollups == logs', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '50' });
    const before = await balanceOf(a, orgId);
    const models = ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5', 'gpt-4.1-nano', 'qwen/qwen-plus', 'google/gemini-2.5-flash'];
    const N = 80;
    const calls = Array.from({ length: N }, async (_, i) => {
      const app = i % 2 ? a : b;
      const client = openai(app, key);
      const model = models[i % models.length]!;
      const content = `call ${i} ${'x '.repeat(i % 7)} [chunks:${1 + (i % 9)}] [cached:${i % 3}]`;
      if (i % 3 === 0) {
        const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content }], stream: true });
        for await (const chunk of stream) void chunk;
      } else {
        await client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
      }
    });
    await Promise.all(calls);
    await flushBoth();

    const logs = await logsOf(a, orgId);
    // Any failed attempt (which the SDK would retry) shows here with its status and error first.
    expect(logs.filter((l) => l.status !== 200).map((l) => `${l.status} ${l.error}`)).toEqual([]);
    expect(logs).toHaveLength(N);
    expect(logs.every((l) => l.paid_by === 'credits' && BigInt(l.cost_nanos) > 0n)).toBe(true);
    const logCost = logs.reduce((sum, l) => sum + BigInt(l.cost_nanos), 0n);
    const ledger = await usageLedgerOf(a, orgId);
    expect(ledger.total).toBe(logCost);
    expect(ledger.requests).toBe(N);
    // Group commit: far fewer ledger entries than calls.
    expect(ledger.entries).toBeLessThan(N);
    expect(before - (await balanceOf(a, orgId))).toBe(logCost);
    const check = await ledgerCheck(a.orm.em.fork(), orgId);
    expect(check.balanceNanos).toBe(check.ledgerSumNanos);

    const { rollups, logs: fromLogs } = await rollupTotals(orgId);
    expect(rollups).toEqual(fromLogs);
    // The per-project rollups (what summaries and time series read) hold the same sums.
    const [perProject] = await sql<Record<string, string>>(a, 'select sum(requests)::text as requests, sum(cost_nanos)::text as cost, sum(output_tokens)::text as output, sum(lat_b0 + lat_b31)::text as edges from usage_rollup_project where org_id = ?', [orgId]);
    const [detailed] = await sql<Record<string, string>>(a, 'select sum(requests)::text as requests, sum(cost_nanos)::text as cost, sum(output_tokens)::text as output, sum(lat_b0 + lat_b31)::text as edges from usage_rollup where org_id = ?', [orgId]);
    expect(perProject).toEqual(detailed);
    // Per model too.
    const byModelRollup = await sql<{ model: string; cost: string; n: string }>(a, 'select model, sum(cost_nanos)::text as cost, sum(requests)::text as n from usage_rollup where org_id = ? group by model order by model', [orgId]);
    const byModelLogs = await sql<{ model: string; cost: string; n: string }>(a, 'select model, sum(cost_nanos)::text as cost, count(*)::text as n from request_log where org_id = ? group by model order by model', [orgId]);
    expect(byModelRollup).toEqual(byModelLogs);
    expect(byModelRollup).toHaveLength(models.length);
  });

  it('refuses credit-paid calls with 402 when the balance cannot cover their largest possible cost (never below zero)', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '0.000001' });
    // Without max_tokens the model's output limit (16,384 tokens) is reserved: more than $0.000001.
    const refused = await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'two' }] });
    expect(refused.status).toBe(402);
    expect((refused.json!.error as { code: string }).code).toBe('insufficient_credits');
    await flushUsage(a);
    expect(await balanceOf(a, orgId)).toBe(1000n);
    // The other instance sees the new balance through the credits.changed event.
    expect((await rawChat(b, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'three' }] })).status).toBe(402);
  });
});

describe('failures are logged, not charged; what was delivered is paid for', () => {
  it('upstream 500, timeout and a malformed answer: nothing delivered, nothing charged', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    const before = await balanceOf(a, orgId);
    const client = openai(a, key, { maxRetries: 0 });
    const e500 = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[status:500]' }] }).catch((e: unknown) => e);
    expect(e500).toBeInstanceOf(OpenAI.APIError);
    expect((e500 as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    const timeout = await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[delay:2500]' }] });
    expect(timeout.status).toBe(504);
    expect(timeout.json).toMatchObject({ error: { type: 'timeout_error' } });
    const badJson = await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[malformed]' }] });
    expect(badJson.status).toBe(502);
    // A stream refused before its first byte.
    const refusedStream = await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[status:500]' }], stream: true });
    expect(refusedStream.status).toBe(502);
    await flushUsage(a);
    const logs = await logsOf(a, orgId);
    expect(logs.map((l) => l.status)).toEqual([502, 504, 502, 502]);
    expect(logs.every((l) => l.cost_nanos === '0' && l.paid_by === 'none' && l.error)).toBe(true);
    expect(logs[1]!.error).toMatch(/did not answer within/);
    expect(await balanceOf(a, orgId)).toBe(before);
  });

  it('a stream that fails or is cut by the upstream after output was delivered is charged for that output', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    const before = await balanceOf(a, orgId);
    const client = openai(a, key, { maxRetries: 0 });
    const streamed = async (model: string, content: string) => {
      let received = '';
      const err = await client.chat.completions
        .create({ model, messages: [{ role: 'user', content }], stream: true })
        .then(async (s) => {
          for await (const c of s) received += c.choices[0]?.delta?.content ?? '';
        })
        .catch((e: unknown) => e);
      expect(err, `${model} ${content}`).toBeInstanceOf(Error);
      // The first chunk reached the client before the failure.
      expect(received, `${model} ${content}`).toBe('w0 ');
    };
    // A broken event, an error event, an end without [DONE], a connection reset; Anthropic's error event.
    for (const directive of ['[malformed]', '[fail-mid]', '[truncate]', '[reset]']) await streamed('gpt-4o-mini', `${directive} [chunks:4]`);
    await streamed('anthropic/claude-haiku-4-5', '[fail-mid] [chunks:4]');
    await flushUsage(a);
    const logs = await logsOf(a, orgId);
    expect(logs).toHaveLength(5);
    for (const log of logs) {
      expect(log).toMatchObject({ status: 502, paid_by: 'credits', streamed: true, canceled: false });
      expect(log.error).toBeTruthy();
      // "w0 " is one token by the 4-characters rule (Anthropic reported 1 at message_start).
      expect(log.output_tokens).toBe(1);
      expect(log.input_tokens).toBeGreaterThan(0);
      expect(BigInt(log.cost_nanos)).toBeGreaterThan(0n);
    }
    const charged = logs.reduce((sum, l) => sum + BigInt(l.cost_nanos), 0n);
    expect((await usageLedgerOf(a, orgId)).total).toBe(charged);
    expect(before - (await balanceOf(a, orgId))).toBe(charged);
  });

  it('a non-streamed answer without usage is estimated from its content, not its JSON envelope', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    const messages = [{ role: 'user', content: 'no usage here [nousage] [chunks:25]' }];
    const res = await rawChat(a, key, { model: 'gpt-4o-mini', messages });
    expect(res.status).toBe(200);
    const content = (res.json as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(res.json).not.toHaveProperty('usage');
    await flushUsage(a);
    const [log] = await logsOf(a, orgId);
    expect(log).toMatchObject({ status: 200, paid_by: 'credits' });
    expect(log!.output_tokens).toBe(Math.ceil(content.length / 4));
    expect(log!.input_tokens).toBe(Math.ceil(JSON.stringify(messages).length / 4));
  });

  it('a client that aborts mid-stream is charged for what was delivered and logged as canceled', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    const before = await balanceOf(a, orgId);
    const abort = new AbortController();
    const res = await fetch(`${a.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'long one [chunks:200] [slow:20]' }], stream: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/"content"/g) ?? []).length < 5) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    await reader.cancel().catch(() => {});
    await waitFor(async () => upstream.openStreams() === 0, 5_000, 'the upstream stream to be aborted');
    await waitFor(async () => (await logsOf(a, orgId)).length === 1 || (await flushUsage(a), false), 5_000, 'the canceled call to be logged');
    const [log] = await logsOf(a, orgId);
    expect(log).toMatchObject({ canceled: true, streamed: true, paid_by: 'credits', status: 200 });
    expect(log!.output_tokens).toBeGreaterThan(0);
    expect(log!.output_tokens).toBeLessThan(200);
    expect(BigInt(log!.cost_nanos)).toBeGreaterThan(0n);
    expect(before - (await balanceOf(a, orgId))).toBe(BigInt(log!.cost_nanos));
  });
});

describe('response cache', () => {
  it('answers identical requests from the cache on any instance, logged as hits and not charged', async () => {
    const { orgId, projectId, key } = await gatewaySetup(a, owner);
    await owner.client.project.update.mutate({ projectId, cachingEnabled: true, cacheTtlSeconds: 60 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'cache me' }], temperature: 0 };
    const first = await rawChat(a, key, body);
    expect(first.headers.get('x-gateway-cache')).toBe('miss');
    // Same request, keys in another order, on the other instance.
    const second = await rawChat(b, key, { temperature: 0, messages: [{ content: 'cache me', role: 'user' }], model: 'gpt-4o-mini' });
    expect(second.headers.get('x-gateway-cache')).toBe('hit');
    expect(second.json).toEqual(first.json);
    const other = await rawChat(b, key, { ...body, temperature: 1 });
    expect(other.headers.get('x-gateway-cache')).toBe('miss');
    const streamed = await rawChat(b, key, { ...body, stream: true });
    expect(streamed.text).toContain('data: [DONE]');
    await flushBoth();
    const logs = await logsOf(a, orgId);
    expect(logs.map((l) => [l.cached, l.paid_by, l.cost_nanos === '0'])).toEqual([
      [false, 'credits', false],
      [true, 'cache', true],
      [false, 'credits', false],
      [false, 'credits', false],
    ]);
    const charged = logs.filter((l) => l.paid_by === 'credits').reduce((s, l) => s + BigInt(l.cost_nanos), 0n);
    expect((await usageLedgerOf(a, orgId)).total).toBe(charged);
    const { rollups } = await rollupTotals(orgId);
    expect(rollups.cache_hits).toBe('1');
  });
});

describe('retention level, live usage events, drain on close', () => {
  it('stores bodies only when the retention level is retain', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'not kept' }] });
    const org = await owner.client.organization.get.query({ orgId });
    await owner.client.organization.update.mutate({ orgId, version: org.version, retentionLevel: 'retain' });
    await waitFor(async () => {
      await rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'kept' }] });
      await flushUsage(a);
      const logs = await logsOf(a, orgId);
      return logs.at(-1)!.request_body !== null;
    }, 5_000, 'bodies to be retained');
    const logs = await logsOf(a, orgId);
    expect(logs[0]!.request_body).toBeNull();
    expect(logs[0]!.response_body).toBeNull();
    expect(logs.at(-1)!.request_body).toMatchObject({ messages: [{ content: 'kept' }] });
    expect(logs.at(-1)!.response_body).toMatchObject({ choices: [{ message: { content: 'w0 w1 w2 w3 w4 ' } }] });
  });

  it('publishes coalesced usage events to the organization', async () => {
    const { orgId, key } = await gatewaySetup(a, owner);
    const live = liveConnection(b.url, { cookie: owner.cookieHeader() });
    try {
      const sub = live.subscribe(orgId);
      await sub.until('subscribed', () => sub.started);
      await Promise.all(Array.from({ length: 20 }, (_, i) => rawChat(a, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `live ${i}` }] })));
      await flushUsage(a);
      const usage = () => sub.received.filter((r) => r.event.type === 'usage').map((r) => r.event as { requests: number; cost: string });
      await sub.until('usage events totalling 20 requests', () => usage().reduce((n, e) => n + e.requests, 0) === 20);
      expect(usage().length).toBeLessThanOrEqual(5);
      expect(sub.received.some((r) => r.event.type === 'credits.changed')).toBe(true);
    } finally {
      await live.close();
    }
  });

  it("a batch holding a deleted organization's calls still commits everyone else's", async () => {
    const c = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url, { GATEWAY_BATCH_WINDOW_MS: '20' }) });
    try {
      const kept = await gatewaySetup(a, owner, { name: 'Kept Org' });
      const before = await balanceOf(a, kept.orgId);
      const meter = c.services.gateway!.meter;
      const record = (orgId: string, projectId: string, apiKeyId: string) => ({
        orgId, projectId, apiKeyId, endpoint: 'chat.completions', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 20, cachedTokens: 0, cacheWriteTokens: 0,
        costNanos: 1234n, paidBy: 'credits' as const, latencyMs: 3, ttftMs: null, status: 200, error: null,
        cached: false, streamed: false, canceled: false, requestBody: null, responseBody: null, createdAt: new Date(),
      });
      // The same batch: three calls of a live organization and two of one deleted since its calls.
      const gone = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()] as const;
      for (let i = 0; i < 3; i++) meter.record(record(kept.orgId, kept.projectId, kept.apiKeyId));
      for (let i = 0; i < 2; i++) meter.record(record(...gone));
      await meter.flush();
      expect(meter.stats.dropped).toBe(0);
      expect(await logsOf(a, kept.orgId)).toHaveLength(3);
      expect(await usageLedgerOf(a, kept.orgId)).toMatchObject({ total: 3702n, requests: 3 });
      expect(await balanceOf(a, kept.orgId)).toBe(before - 3702n);
      const { balanceNanos, ledgerSumNanos } = await ledgerCheck(a.orm.em.fork(), kept.orgId);
      expect(balanceNanos).toBe(ledgerSumNanos);
      expect(await sql(a, 'select id from request_log where org_id = ?', [gone[0]])).toHaveLength(0);
    } finally {
      await c.close();
    }
  });

  it('closing an instance (the SIGTERM path) commits every pending record first', async () => {
    const c = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url, { GATEWAY_BATCH_WINDOW_MS: '20' }) });
    const { orgId, key } = await gatewaySetup(a, owner);
    const calls = Array.from({ length: 30 }, (_, i) => rawChat(c, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `drain ${i}` }] }));
    await Promise.all(calls);
    // Answered, but (usually) still in the meter's memory: close must commit them before it returns.
    expect(c.services.gateway!.meter.pendingCount).toBeLessThanOrEqual(30);
    await c.close();
    const logs = await logsOf(a, orgId);
    expect(logs).toHaveLength(30);
    expect((await usageLedgerOf(a, orgId)).requests).toBe(30);
  });
});
