/**
 * Provider health shared through PostgreSQL (issue #11 item 5): two gateway instances on one
 * database both contribute to what either reads; the circuit breaker opens on failures, lets exactly
 * one probe through once cooled off, and closes on its success; providerHealth.get's figures match
 * the calls made (fake upstream failures included); project.update {routing} is validated, stored,
 * listed, and picked up by the gateway runtime on every instance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { browserClient } from '../helpers/client.js';
import { eventually } from '../helpers/live.js';
import { histogramQuantile, LATENCY_BUCKET_COUNT, latencyBucket } from '../../server/modules/usage/histogram.js';
import type { AttemptSample, SharedProviderHealth } from '../../server/modules/gateway/health.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;

const healthOf = (app: TestApp): SharedProviderHealth => app.services.gateway!.health;
/** The owner's session, on instance `app`. */
function clientOn(app: TestApp) {
  if (app === a) return owner.client;
  const browser = browserClient(app.url);
  for (const [k, v] of owner.cookies) browser.cookies.set(k, v);
  return browser.client;
}
const sample = (orgId: string, provider: string, credential: string, ok: boolean, latencyMs: number, ttftMs: number | null = null): AttemptSample => ({
  orgId,
  provider,
  credential,
  ok,
  status: ok ? 200 : 500,
  latencyMs,
  ttftMs,
  at: Date.now(),
});
/** p50/p95 as the histogram gives them for these values. */
function percentile(values: number[], q: number): number | null {
  const counts = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (const v of values) counts[latencyBucket(v)]! += 1;
  return histogramQuantile(counts, q);
}

async function codeOf(promise: Promise<unknown>): Promise<[string | undefined, string]> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return ['ok', ''];
  expect(err).toBeInstanceOf(TRPCClientError);
  return [(err as { data?: { code?: string } }).data?.code, (err as Error).message];
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  a = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(a, 'Health Owner');
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await upstream?.close();
});

describe('provider health across instances', () => {
  it('both instances contribute to the figures and scores either one reads', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    const providerKey = await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'team-llm', key: 'sk-team-secret-0123456789', baseUrl: `${upstream.url}/v1` });
    const okLatencies = [80, 90, 120, 150, 95, 110];
    const failLatencies = [900, 1200, 1500, 700];
    for (const ms of okLatencies) healthOf(a).record(sample(orgId, 'google', 'operator:google:0', true, ms, ms / 2));
    for (const ms of failLatencies) healthOf(b).record(sample(orgId, 'google', 'operator:google:0', false, ms));
    healthOf(b).record(sample(orgId, 'custom', providerKey.id, true, 300, 100));
    await healthOf(a).sync();
    await healthOf(b).sync();
    await healthOf(a).sync();

    // Instance a's router sees b's calls too.
    expect(healthOf(a).score('google').samples).toBeGreaterThanOrEqual(10);
    const stored = await sql<{ calls: number; failures: number }>(a, `select sum(calls)::int as calls, sum(failures)::int as failures from provider_health where org_id = ? and provider = 'google'`, [orgId]);
    expect(stored[0]).toEqual({ calls: 10, failures: 4 });

    for (const app of [a, b]) {
      const { providers } = await clientOn(app).providerHealth.get.query({ orgId });
      const google = providers.find((p) => p.provider === 'google')!;
      const all = [...okLatencies, ...failLatencies];
      expect(google.last5).toEqual({
        calls: 10,
        failures: 4,
        successRate: 0.6,
        latencyP50Ms: percentile(all, 0.5),
        latencyP95Ms: percentile(all, 0.95),
        ttftP50Ms: percentile(okLatencies.map((ms) => ms / 2), 0.5),
        ttftP95Ms: percentile(okLatencies.map((ms) => ms / 2), 0.95),
      });
      expect(google.last60.calls).toBe(10);
      expect(google.label).toBe('Google');
      expect(google.keys).toMatchObject([{ credential: 'operator:google:0', name: 'Gateway key 1', kind: 'operator', circuit: 'closed', cooledDownUntil: null }]);
      expect(google.minutes).toHaveLength(60);
      expect(google.minutes.reduce((n, m) => n + m.calls, 0)).toBe(10);
      const custom = providers.find((p) => p.provider === 'custom')!;
      // The key's name, never its secret; no provider-wide circuit for custom servers.
      expect(custom).toMatchObject({ circuit: 'closed', keys: [{ credential: providerKey.id, name: 'team-llm', kind: 'organization', last5: { calls: 1, successRate: 1 } }] });
      expect(JSON.stringify(providers)).not.toContain('sk-team-secret');
    }
  });

  it('a credential cooled down on one instance is cooled down on the other, and shown', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    const credential = 'operator:alibaba:0';
    healthOf(a).record({ ...sample(orgId, 'alibaba', credential, false, 50), status: 429 });
    healthOf(a).coolDown(credential, 60_000);
    expect(healthOf(a).available('alibaba', credential)).toBe(false);
    expect(healthOf(b).available('alibaba', credential)).toBe(true);
    await healthOf(a).sync();
    await healthOf(b).sync();
    expect(healthOf(b).available('alibaba', credential)).toBe(false);
    const { providers } = await owner.client.providerHealth.get.query({ orgId });
    expect(providers.find((p) => p.provider === 'alibaba')!.keys[0]!.cooledDownUntil).toBeInstanceOf(Date);
  });
});

describe('provider health rows', () => {
  it('are written on close (nothing pending is lost when an instance stops) and deleted after a day', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    const c = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
    healthOf(c).record(sample(orgId, 'openai', 'operator:openai:1', true, 42));
    await c.close();
    const rows = await sql<{ calls: number }>(a, `select calls from provider_health where org_id = ? and credential = 'operator:openai:1'`, [orgId]);
    expect(rows).toEqual([{ calls: 1 }]);

    await sql(a, `insert into provider_health (org_id, provider, credential, minute, calls) values (?, 'openai', 'operator:openai:2', date_trunc('minute', now()) - interval '25 hours', 3), (?, 'openai', 'operator:openai:2', date_trunc('minute', now()) - interval '23 hours', 2)`, [orgId, orgId]);
    await healthOf(a).prune();
    const kept = await sql<{ calls: number }>(a, `select calls from provider_health where org_id = ? and credential = 'operator:openai:2'`, [orgId]);
    expect(kept).toEqual([{ calls: 2 }]);
  });
});

describe('circuit breaker', () => {
  it('opens after failures (on both instances), lets exactly one probe through after the cool-off, and closes on its success', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    for (const h of [healthOf(a), healthOf(b)]) Object.assign(h.settings, { coolOffMs: 300, minCalls: 6, failureRate: 0.5 });
    const provider = 'bedrock';
    const credential = 'operator:bedrock:0';
    // Below the thresholds on a alone: 2 failures of 5 calls.
    for (let i = 0; i < 3; i++) healthOf(a).record(sample(orgId, provider, credential, true, 100));
    for (let i = 0; i < 2; i++) healthOf(a).record(sample(orgId, provider, credential, false, 100));
    expect(healthOf(a).circuitState(provider)).toBe('closed');
    expect(healthOf(a).available(provider, credential)).toBe(true);
    // Instance b's failures reach a through the database: 3 + 5 failures of 10 calls in the last minute.
    for (let i = 0; i < 5; i++) healthOf(b).record(sample(orgId, provider, credential, false, 100));
    expect(healthOf(b).circuitState(provider)).toBe('closed'); // b alone: 5 calls, under minCalls
    await healthOf(b).sync();
    await healthOf(a).sync();
    await healthOf(b).sync();
    expect(healthOf(a).circuitState(provider)).toBe('open');
    expect(healthOf(b).circuitState(provider)).toBe('open');
    expect(healthOf(a).available(provider, credential)).toBe(false);
    expect(healthOf(a).peek(provider, credential)).toBe(false);

    await eventually(() => healthOf(a).circuitState(provider) === 'half-open', 5_000, 'the cool-off to end');
    expect(healthOf(a).peek(provider, credential)).toBe(true);
    expect(healthOf(a).peek(provider, credential)).toBe(true); // peeking takes no probe slot
    const callers = Array.from({ length: 5 }, () => healthOf(a).available(provider, credential));
    expect(callers.filter(Boolean)).toHaveLength(1);
    // The probe fails: open again, for twice as long.
    healthOf(a).record(sample(orgId, provider, credential, false, 100));
    expect(healthOf(a).circuitState(provider)).toBe('open');
    expect(healthOf(a).available(provider, credential)).toBe(false);
    await eventually(() => healthOf(a).circuitState(provider) === 'half-open', 5_000, 'the second cool-off to end');
    expect(healthOf(a).available(provider, credential)).toBe(true);
    expect(healthOf(a).available(provider, credential)).toBe(false);
    // The probe succeeds: closed, and the failures before it no longer count.
    healthOf(a).record(sample(orgId, provider, credential, true, 100));
    expect(healthOf(a).circuitState(provider)).toBe('closed');
    expect(Array.from({ length: 5 }, () => healthOf(a).available(provider, credential)).every(Boolean)).toBe(true);
    await healthOf(a).sync();
    expect(healthOf(a).circuitState(provider)).toBe('closed');
    const { providers } = await owner.client.providerHealth.get.query({ orgId });
    expect(providers.find((p) => p.provider === provider)).toMatchObject({ circuit: 'closed', last5: { calls: 12, failures: 8 } });
  });

  it('a credential has its own circuit: one failing key is skipped while the provider stays up', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    Object.assign(healthOf(a).settings, { coolOffMs: 60_000, minCalls: 4, failureRate: 0.5 });
    for (let i = 0; i < 20; i++) healthOf(a).record(sample(orgId, 'azure', 'key-good', true, 100));
    for (let i = 0; i < 4; i++) healthOf(a).record(sample(orgId, 'azure', 'key-bad', false, 100));
    expect(healthOf(a).circuitState('azure')).toBe('closed');
    expect(healthOf(a).circuitState('azure', 'key-bad')).toBe('open');
    expect(healthOf(a).available('azure', 'key-bad')).toBe(false);
    expect(healthOf(a).available('azure', 'key-good')).toBe(true);
    // An organization's own keys never open the provider's circuit for everyone (only the operator's shared keys do).
    for (let i = 0; i < 30; i++) healthOf(a).record(sample(orgId, 'qwen', `own-key-${i % 3}`, false, 100));
    expect(healthOf(a).circuitState('qwen')).toBe('closed');
    expect(healthOf(a).circuitState('qwen', 'own-key-0')).toBe('open');
    expect(healthOf(a).available('qwen', 'operator:qwen:0')).toBe(true);
  });
});

describe('providerHealth.get from gateway traffic', () => {
  it('counts the attempts the gateway made, failures from the upstream included, and is empty for a new organization', async () => {
    const fresh = await gatewaySetup(a, owner);
    expect((await owner.client.providerHealth.get.query({ orgId: fresh.orgId })).providers).toEqual([]);

    const { orgId, projectId, key } = await gatewaySetup(a, owner, { mode: 'credits' });
    // One attempt per call, so every call is one attempt of the operator's OpenAI key.
    await owner.client.project.update.mutate({ projectId, routing: { maxAttempts: 1 } });
    const chat = (app: TestApp, text: string) => rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: text }] });
    const answers = await Promise.all([chat(a, 'hello'), chat(b, 'hello there'), chat(a, 'fine'), chat(b, '[status:500] broken'), chat(a, '[status:503] broken too')]);
    expect(answers.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers.slice(3).every((r) => r.status >= 500)).toBe(true);
    await healthOf(a).sync();
    await healthOf(b).sync();
    const { providers } = await owner.client.providerHealth.get.query({ orgId });
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ provider: 'openai', last5: { calls: 5, failures: 2, successRate: 0.6 } });
    expect(providers[0]!.keys).toMatchObject([{ credential: 'operator:openai:0', name: 'Gateway key 1', kind: 'operator', last5: { calls: 5, failures: 2 } }]);
    expect(providers[0]!.last5.latencyP50Ms).not.toBeNull();
  });
});

describe('project routing settings', () => {
  it('validates, stores, lists and reaches the gateway runtime on both instances', async () => {
    const { orgId, projectId, key } = await gatewaySetup(a, owner);
    const update = (routing: unknown) => owner.client.project.update.mutate({ projectId, routing } as never);

    expect(await codeOf(update({ maxAttempts: 0 }))).toEqual(['BAD_REQUEST', expect.stringContaining('maxAttempts must be at least 1')]);
    expect(await codeOf(update({ maxAttempts: 6 }))).toEqual(['BAD_REQUEST', expect.stringContaining('maxAttempts must be at most 5')]);
    expect(await codeOf(update({ maxAttempts: 2.5 }))).toEqual(['BAD_REQUEST', expect.stringContaining('whole number')]);
    expect(await codeOf(update({ strategy: 'fastest' }))).toEqual(['BAD_REQUEST', expect.stringContaining('strategy must be one of')]);
    expect(await codeOf(update({ fallbacks: { 'openai/gpt-4o': [] } }))).toEqual(['BAD_REQUEST', expect.stringContaining('at least one model')]);
    const six = ['openai/gpt-4o-mini', 'openai/gpt-4.1', 'openai/gpt-4.1-mini', 'openai/gpt-4.1-nano', 'openai/gpt-5', 'openai/gpt-5-mini'];
    expect(await codeOf(update({ fallbacks: { 'openai/gpt-4o': six } }))).toEqual(['BAD_REQUEST', expect.stringContaining('at most 5 models')]);
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`openai/model-${i}`, ['openai/gpt-4o-mini']]));
    expect(await codeOf(update({ fallbacks: many }))).toEqual(['BAD_REQUEST', expect.stringContaining('at most 20 models')]);
    expect(await codeOf(update({ fallbacks: { 'openai/gpt-4o': ['nobody/knows-this'] } }))).toEqual(['BAD_REQUEST', expect.stringContaining('"nobody/knows-this" is not in the catalog')]);
    expect(await codeOf(update({ fallbacks: { 'openai/not-a-model': ['openai/gpt-4o-mini'] } }))).toEqual(['BAD_REQUEST', expect.stringContaining('"openai/not-a-model"')]);
    expect(await codeOf(update({ fallbacks: { 'openai/gpt-4o': ['openai/gpt-4o-mini', 'openai/gpt-4o-mini'] } }))).toEqual(['BAD_REQUEST', expect.stringContaining('named twice')]);
    expect(await codeOf(update({ fallbacks: { 'openai/gpt-4o': ['openai/gpt-4o'] } }))).toEqual(['BAD_REQUEST', expect.stringContaining('the model itself')]);
    expect(await codeOf(update({ unknown: true }))).toEqual(['BAD_REQUEST', expect.any(String)]);
    expect((await sql<{ routing: unknown }>(a, 'select routing from project where id = ?', [projectId]))[0]!.routing).toEqual({});

    // A custom provider's models route by its name (as the gateway routes them).
    await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'inhouse', key: 'sk-inhouse-0123456789', baseUrl: `${upstream.url}/v1` });
    const saved = await update({ strategy: 'latency', maxAttempts: 2, fallbacks: { 'openai/gpt-4o': ['anthropic/claude-haiku-4-5', 'inhouse/llama-3'], 'gpt-4o-mini': ['inhouse/llama-3'] } });
    expect(saved.routing).toMatchObject({ strategy: 'latency', maxAttempts: 2 });
    const fallbacks = (saved.routing as { fallbacks: Record<string, string[]> }).fallbacks;
    expect(Object.keys(fallbacks)).toEqual(['openai/gpt-4o', 'gpt-4o-mini']);
    // Left-out fields keep their value; fallbacks replaces the whole map.
    const again = await update({ maxAttempts: 4 });
    expect(again.routing).toEqual({ strategy: 'latency', maxAttempts: 4, fallbacks });
    const listed = (await owner.client.project.list.query({ orgId })).find((p) => p.id === projectId)!;
    expect(listed.routing).toEqual({ strategy: 'latency', maxAttempts: 4, fallbacks });
    const audit = await sql<{ after: Record<string, unknown> }>(a, `select after from audit_log where org_id = ? and action = 'project.updated' order by id desc limit 1`, [orgId]);
    expect(audit[0]!.after).toMatchObject({ routing: { maxAttempts: 4 } });

    for (const app of [a, b]) {
      await eventually(async () => (await app.services.gateway!.runtime.authenticate(`Bearer ${key}`)).project.routing.maxAttempts === 4, 5_000, 'the runtime to load the routing');
      expect((await app.services.gateway!.runtime.authenticate(`Bearer ${key}`)).project.routing).toEqual({ strategy: 'latency', maxAttempts: 4, fallbacks });
    }
    await update({ fallbacks: {} });
    for (const app of [a, b]) {
      await eventually(async () => Object.keys((await app.services.gateway!.runtime.authenticate(`Bearer ${key}`)).project.routing.fallbacks).length === 0, 5_000, 'the runtime to drop the fallbacks');
      expect((await app.services.gateway!.runtime.authenticate(`Bearer ${key}`)).project.routing).toEqual({ strategy: 'latency', maxAttempts: 4, fallbacks: {} });
    }
    // A project with nothing set routes with the defaults.
    const other = await gatewaySetup(a, owner);
    expect((await b.services.gateway!.runtime.authenticate(`Bearer ${other.key}`)).project.routing).toEqual({ strategy: 'balanced', maxAttempts: 3, fallbacks: {} });
  });
});
