/**
 * Routing that keeps calls alive (issue #11): fake upstreams failing in each way (a refused
 * connection, 500, 429 with retry-after, 401 from one key, a hang before headers, a cut mid-stream)
 * and the call succeeding through the fallback where it may, failing once where it may not (after
 * the first byte); `models`, project fallbacks, pinning, x-gateway-no-fallback, maxAttempts, key
 * pools, cooled-down keys, sticky sessions; chat completions, messages, responses and embeddings.
 * Every call: one request log row with its attempts, charged once (ledger == logs == balance).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import '../helpers/fake-responses.js';
import '../helpers/fake-embeddings.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, newOwner, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { eventually } from '../helpers/live.js';
import { decimalToNanos } from '../../shared/money.js';
import type { SharedProviderHealth } from '../../server/modules/gateway/health.js';

let primary: FakeUpstream;
let secondary: FakeUpstream;
let app: TestApp;
let owner: Owner;
let closedPort: number;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  [primary, secondary, closedPort] = await Promise.all([startFakeUpstream(), startFakeUpstream(), freePort()]);
  app = await startTestApp({
    env: fakeUpstreamEnv(secondary.url, {
      // OpenAI (two operator keys, one pool) on the primary; Azure and Anthropic on the secondary; Google on a closed port.
      OPENAI_API_KEY: 'sk-op-a,sk-op-b',
      OPENAI_BASE_URL: `${primary.url}/v1`,
      AZURE_OPENAI_API_KEY: 'az-op',
      AZURE_OPENAI_BASE_URL: secondary.url,
      GEMINI_BASE_URL: `http://127.0.0.1:${closedPort}/v1`,
      GATEWAY_UPSTREAM_TIMEOUT_MS: '600',
    }),
  });
  owner = await newOwner(app);
  // Circuits stay closed here: each test says which attempts it expects (the breaker has its own tests).
  (app.services.gateway!.health as SharedProviderHealth).settings.minCalls = 1_000_000;
});
afterAll(async () => {
  await app?.close();
  await Promise.all([primary?.close(), secondary?.close()]);
});

const hello = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: 'hello there' }], ...extra });
const via = (r: { headers: Headers }) => ({ provider: r.headers.get('x-gateway-provider'), attempts: r.headers.get('x-gateway-attempts') });
const authsOf = (up: FakeUpstream, since: number) => up.requests.slice(since).map((r) => String(r.headers.authorization ?? r.headers['api-key'] ?? r.headers['x-api-key']));

/** One row per call, the credit-paid ones charged exactly: ledger == logs == balance. */
async function exactCharges(orgId: string, calls: number) {
  await flushUsage(app);
  const logs = await logsOf(app, orgId);
  expect(logs).toHaveLength(calls);
  const charged = logs.filter((l) => l.paid_by === 'credits').reduce((n, l) => n + BigInt(l.cost_nanos), 0n);
  const ledger = await usageLedgerOf(app, orgId);
  expect(ledger.total).toBe(charged);
  expect(await balanceOf(app, orgId)).toBe(decimalToNanos('100') - charged);
  return logs;
}

type StoredAttempt = { provider: string; model: string; keyName: string; providerKeyId: string | null; status: number; latencyMs: number; error: string | null };
const attemptsOf = async (orgId: string) =>
  (await sql<{ attempts: StoredAttempt[] | null }>(app, 'select attempts from request_log where org_id = ? order by created_at, id', [orgId])).map((r) => r.attempts);

async function post(path: string, key: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('failover', () => {
  it('a refused connection moves to the next model of `models`: one row, its attempts, charged once, provider in headers and body', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const r = await rawChat(app, key, hello('google/gemini-2.5-flash', { models: ['openai/gpt-4o-mini'] }));
    expect(r.status).toBe(200);
    expect(via(r)).toEqual({ provider: 'openai', attempts: '2' });
    expect(r.json).toMatchObject({ provider: 'openai', object: 'chat.completion' });
    // The gateway's `models` never reaches the upstream.
    expect(primary.requests.at(-1)!.body.models).toBeUndefined();
    const [log] = await exactCharges(orgId, 1);
    expect(log).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', status: 200, paid_by: 'credits' });
    expect(BigInt(log!.cost_nanos)).toBeGreaterThan(0n);
    const [attempts] = await attemptsOf(orgId);
    expect(attempts).toMatchObject([
      { provider: 'google', model: 'gemini-2.5-flash', keyName: 'operator', providerKeyId: null, status: 0 },
      { provider: 'openai', model: 'gpt-4o-mini', keyName: 'operator', status: 200, error: null },
    ]);
    expect(attempts![0]!.error).toMatch(/could not reach google/);
  });

  it('a 500 sends a bare model name to another provider listing it; the pool key at the same endpoint is passed over', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    primary.faults = [{ status: 500 }];
    try {
      const before = primary.requests.length;
      const r = await rawChat(app, key, hello('gpt-4o-mini'));
      expect(r.status).toBe(200);
      expect(via(r).provider).toBe('azure');
      // At most one OpenAI key was tried: the other one calls the same failing endpoint.
      expect(primary.requests.length - before).toBeLessThanOrEqual(1);
      const [log] = await exactCharges(orgId, 1);
      expect(log).toMatchObject({ provider: 'azure', status: 200 });
    } finally {
      primary.faults = [];
    }
  });

  it('a 429 cools the key down for its retry-after: the next calls skip it, then it takes calls again', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    primary.faults = [{ status: 429, retryAfter: '1' }];
    const body = hello('openai/gpt-4o-mini', { models: ['azure/gpt-4o-mini'] });
    try {
      const first = await rawChat(app, key, body);
      expect(first.status).toBe(200);
      // Both OpenAI keys rate limited (each cooled down), then Azure.
      expect(via(first)).toEqual({ provider: 'azure', attempts: '3' });
      const faulted = primary.faulted;
      const second = await rawChat(app, key, body);
      expect(via(second)).toEqual({ provider: 'azure', attempts: '1' });
      expect(primary.faulted).toBe(faulted);
    } finally {
      primary.faults = [];
    }
    await eventually(async () => via(await rawChat(app, key, body)).provider === 'openai', 5000, 'the cooled-down keys to take calls again');
    await flushUsage(app);
    const logs = await exactCharges(orgId, (await logsOf(app, orgId)).length);
    expect(logs.every((l) => l.status === 200)).toBe(true);
    const [attempts] = await attemptsOf(orgId);
    expect(attempts!.map((a) => [a.provider, a.status])).toEqual([['openai', 429], ['openai', 429], ['azure', 200]]);
  });

  it('a 401 from one key of the organization pool cools that key down; its other key answers, uncharged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner, { mode: 'provider-keys' });
    await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', name: 'good-key', key: 'sk-org-good-0001' });
    await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', name: 'bad-key', key: 'sk-org-bad-00001' });
    primary.faults = [{ status: 401, authorization: 'Bearer sk-org-bad-00001' }];
    const before = primary.requests.length;
    try {
      for (let i = 0; i < 12; i++) {
        const r = await rawChat(app, key, hello('openai/gpt-4o-mini'));
        expect(r.status).toBe(200);
        expect(via(r).provider).toBe('openai');
      }
    } finally {
      primary.faults = [];
    }
    const auths = authsOf(primary, before);
    expect(auths.filter((a) => a === 'Bearer sk-org-bad-00001').length).toBeLessThanOrEqual(1);
    expect(auths.filter((a) => a === 'Bearer sk-org-good-0001').length).toBe(12);
    const logs = await exactCharges(orgId, 12);
    expect(logs.every((l) => l.paid_by === 'provider_key' && l.status === 200)).toBe(true);
    const retried = (await attemptsOf(orgId)).filter((a) => a !== null);
    for (const a of retried) expect(a!.map((x) => [x.keyName, x.status])).toEqual([['bad-key', 401], ['good-key', 200]]);
  });

  it('a hang before headers times out and the stream is served by the fallback; headers on the stream', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    primary.faults = [{ hang: true }];
    try {
      const r = await post('/v1/chat/completions', key, hello('openai/gpt-4o-mini', { models: ['azure/gpt-4o-mini'], stream: true }));
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
      expect(via(r)).toEqual({ provider: 'azure', attempts: '2' });
      expect(r.text).toContain('data: [DONE]');
    } finally {
      primary.faults = [];
    }
    const [log] = await exactCharges(orgId, 1);
    expect(log).toMatchObject({ provider: 'azure', status: 200, streamed: true });
    const [attempts] = await attemptsOf(orgId);
    expect(attempts!.map((a) => [a.provider, a.status])).toEqual([['openai', 0], ['azure', 200]]);
    expect(attempts![0]!.error).toMatch(/did not answer within 600 ms/);
  });

  it('a stream cut after the first byte is not retried (the client saw it); a plain answer cut before reaching the client is', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    primary.faults = [{ cut: true }];
    const secondaryBefore = secondary.requests.length;
    try {
      const streamed = await post('/v1/chat/completions', key, hello('openai/gpt-4o-mini', { models: ['azure/gpt-4o-mini'], stream: true }));
      expect(streamed.status).toBe(200);
      expect(via(streamed)).toEqual({ provider: 'openai', attempts: '1' });
      expect(streamed.text).toContain('w0');
      expect(streamed.text).toContain('"error"');
      expect(secondary.requests.length).toBe(secondaryBefore);
      const plain = await rawChat(app, key, hello('openai/gpt-4o-mini', { models: ['azure/gpt-4o-mini'] }));
      expect(plain.status).toBe(200);
      expect(via(plain)).toEqual({ provider: 'azure', attempts: '2' });
    } finally {
      primary.faults = [];
    }
    const logs = await exactCharges(orgId, 2);
    expect(logs.map((l) => [l.provider, l.status])).toEqual([['openai', 502], ['azure', 200]]);
  });
});

describe('what is never retried', () => {
  it('a 4xx the request caused, a call with x-gateway-no-fallback, and past the project maxAttempts: one attempt, uncharged', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner);
    const body = hello('openai/gpt-4o-mini', { models: ['azure/gpt-4o-mini'] });
    const secondaryBefore = secondary.requests.length;
    try {
      primary.faults = [{ status: 400 }];
      const bad = await rawChat(app, key, body);
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ error: { code: 'upstream_bad_request' } });
      expect(via(bad)).toEqual({ provider: 'openai', attempts: '1' });

      primary.faults = [{ status: 500 }];
      const pinned = await rawChat(app, key, body, { 'x-gateway-no-fallback': 'true' });
      expect(pinned.status).toBe(502);
      expect(via(pinned)).toEqual({ provider: 'openai', attempts: '1' });

      await owner.client.project.update.mutate({ projectId, routing: { maxAttempts: 1 } });
      const capped = await rawChat(app, key, body);
      expect(capped.status).toBe(502);
      expect(via(capped).attempts).toBe('1');
    } finally {
      primary.faults = [];
    }
    expect(secondary.requests.length).toBe(secondaryBefore);
    const logs = await exactCharges(orgId, 3);
    expect(logs.map((l) => [l.status, l.cost_nanos])).toEqual([[400, '0'], [502, '0'], [502, '0']]);
  });

  it('refuses a malformed models list with a clear 400', async () => {
    const { key } = await gatewaySetup(app, owner);
    for (const models of [[], 'azure/gpt-4o-mini', ['a', 'b', 'c', 'd', 'e', 'f'], [''], [42]]) {
      const r = await rawChat(app, key, hello('openai/gpt-4o-mini', { models }));
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ error: { code: 'invalid_models' } });
    }
  });
});

describe('project fallbacks, pools and sessions', () => {
  it('project fallback chains apply when the body names none; the body`s models win', async () => {
    const { projectId, key } = await gatewaySetup(app, owner);
    await owner.client.project.update.mutate({ projectId, routing: { fallbacks: { 'openai/gpt-4o-mini': ['azure/gpt-4o-mini'] } } });
    primary.faults = [{ status: 503 }];
    try {
      expect(via(await rawChat(app, key, hello('openai/gpt-4o-mini')))).toEqual({ provider: 'azure', attempts: '2' });
      expect(via(await rawChat(app, key, hello('openai/gpt-4o-mini', { models: ['anthropic/claude-haiku-4-5'] })))).toEqual({ provider: 'anthropic', attempts: '2' });
    } finally {
      primary.faults = [];
    }
  });

  it('the operator key pool spreads calls; a session stays on one key', async () => {
    const { key } = await gatewaySetup(app, owner);
    let before = primary.requests.length;
    for (let i = 0; i < 30; i++) expect((await rawChat(app, key, hello('openai/gpt-4o-mini'))).status).toBe(200);
    let auths = authsOf(primary, before);
    expect(auths.filter((a) => a === 'Bearer sk-op-a').length).toBeGreaterThanOrEqual(5);
    expect(auths.filter((a) => a === 'Bearer sk-op-b').length).toBeGreaterThanOrEqual(5);
    for (const session of ['session-one', 'session-two', 'session-three']) {
      before = primary.requests.length;
      for (let i = 0; i < 8; i++) expect((await rawChat(app, key, hello('openai/gpt-4o-mini'), { 'x-session-id': session })).status).toBe(200);
      // prompt_cache_key is a session id too (and still goes upstream).
      for (let i = 0; i < 4; i++) expect((await rawChat(app, key, hello('openai/gpt-4o-mini', { prompt_cache_key: session }))).status).toBe(200);
      auths = authsOf(primary, before);
      expect(new Set(auths.slice(0, 8)).size).toBe(1);
      expect(new Set(auths.slice(8)).size).toBe(1);
    }
  });
});

describe('every endpoint', () => {
  it('messages and responses fall back (streaming too); embeddings retry within the key pool', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    primary.faults = [{ status: 500 }];
    try {
      const message = await post('/v1/messages', key, { model: 'openai/gpt-4o-mini', models: ['azure/gpt-4o-mini'], max_tokens: 50, messages: [{ role: 'user', content: 'hello there' }] });
      expect(message.status).toBe(200);
      expect(JSON.parse(message.text)).toMatchObject({ type: 'message', role: 'assistant' });
      expect(via(message)).toEqual({ provider: 'azure', attempts: '2' });
      const streamed = await post('/v1/messages', key, { model: 'openai/gpt-4o-mini', models: ['anthropic/claude-haiku-4-5'], max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'hello there' }] });
      expect(streamed.status).toBe(200);
      expect(via(streamed)).toEqual({ provider: 'anthropic', attempts: '2' });
      expect(streamed.text).toContain('message_stop');

      const response = await post('/v1/responses', key, { model: 'openai/gpt-4o-mini', models: ['azure/gpt-4o-mini'], input: 'hello there' });
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toMatchObject({ object: 'response', status: 'completed' });
      expect(via(response)).toEqual({ provider: 'azure', attempts: '2' });
      const responseStream = await post('/v1/responses', key, { model: 'openai/gpt-4o-mini', models: ['azure/gpt-4o-mini'], input: 'hello there', stream: true });
      expect(responseStream.status).toBe(200);
      expect(via(responseStream)).toEqual({ provider: 'azure', attempts: '2' });
      expect(responseStream.text).toContain('response.completed');
    } finally {
      primary.faults = [];
    }
    // Embeddings: one operator key refused (401), the other answers; the refused one is cooled down.
    primary.faults = [{ status: 401, authorization: 'Bearer sk-op-a' }];
    const before = primary.requests.length;
    try {
      for (let i = 0; i < 6; i++) {
        const r = await post('/v1/embeddings', key, { model: 'openai/text-embedding-3-small', input: 'the quick brown fox' });
        expect(r.status).toBe(200);
        expect(via(r).provider).toBe('openai');
      }
    } finally {
      primary.faults = [];
    }
    expect(authsOf(primary, before).filter((a) => a === 'Bearer sk-op-a').length).toBeLessThanOrEqual(1);
    const logs = await exactCharges(orgId, 10);
    expect(logs.every((l) => l.status === 200)).toBe(true);
  });
});
