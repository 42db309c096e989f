/**
 * POST /v1/embeddings through the real `openai` client (float and base64) for OpenAI, Azure,
 * Google, Alibaba and a custom provider against local fakes: what the upstream receives, metering
 * exact (input tokens from usage.prompt_tokens, the catalog's price), the cache, refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { fakeVector } from '../helpers/fake-embeddings.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, openai, rawChat, type Owner } from '../helpers/gateway.js';
import { costNanos, findModel } from '../../shared/models.js';
import { sql } from '../helpers/db-state.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { AZURE_OPENAI_API_KEY: 'operator-azure', AZURE_OPENAI_BASE_URL: upstream.url }) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const lastUpstream = () => upstream.requests[upstream.requests.length - 1]!;

async function rawEmbeddings(key: string, body: unknown) {
  const res = await fetch(`${app.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

describe('POST /v1/embeddings', () => {
  it('embeds with the openai client, float and base64, metered and charged exactly', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const float = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: ['the quick brown fox', 'jumps'], encoding_format: 'float' });
    expect(float.data.map((d) => d.embedding)).toEqual([fakeVector('the quick brown fox', 4), fakeVector('jumps', 4)]);
    expect(float.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
    expect(lastUpstream().path).toBe('/v1/embeddings');
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-operator-openai');
    expect(lastUpstream().body).toEqual({ model: 'text-embedding-3-small', input: ['the quick brown fox', 'jumps'] });

    // The SDK's default asks for base64 and decodes it: the gateway encodes float32 itself.
    const decoded = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world', dimensions: 6 });
    expect(decoded.data[0]!.embedding).toEqual(fakeVector('hello world', 6));
    expect(lastUpstream().body).toEqual({ model: 'text-embedding-3-small', input: 'hello world', dimensions: 6 });
    const raw = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: 'hello world', encoding_format: 'base64' });
    expect(typeof raw.json.data[0].embedding).toBe('string');
    const bytes = Buffer.from(raw.json.data[0].embedding as string, 'base64');
    expect(Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))).toEqual(fakeVector('hello world', 4));

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const price = findModel('openai', 'text-embedding-3-small')!.nanosPerMTok;
    expect(costNanos(price, { inputTokens: 5, outputTokens: 0, cachedTokens: 0 })).toBe(100n); // 5 × $0.02/M
    expect(logs.map((l) => [l.provider, l.model, l.input_tokens, l.output_tokens, l.cost_nanos, l.paid_by, l.status])).toEqual([
      ['openai', 'text-embedding-3-small', 5, 0, '100', 'credits', 200],
      ['openai', 'text-embedding-3-small', 2, 0, '40', 'credits', 200],
      ['openai', 'text-embedding-3-small', 2, 0, '40', 'credits', 200],
    ]);
    const endpoints = await sql<{ endpoint: string }>(app, 'select endpoint from request_log where org_id = ?', [orgId]);
    expect(endpoints.every((r) => r.endpoint === 'embeddings')).toBe(true);
    const [rollup] = await sql<{ endpoint: string; requests: string; input_tokens: string }>(app, 'select endpoint, requests, input_tokens from usage_rollup where org_id = ?', [orgId]);
    expect(rollup).toMatchObject({ endpoint: 'embeddings', requests: 3 });
  });

  it('serves Azure (deployment URL), Google, Alibaba and a custom provider, token arrays where the provider takes them', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    await client.embeddings.create({ model: 'azure/text-embedding-3-large', input: [[1, 2, 3]], encoding_format: 'float' });
    expect(lastUpstream().path).toBe('/openai/deployments/text-embedding-3-large/embeddings');
    expect(lastUpstream().headers['api-key']).toBe('operator-azure');
    await client.embeddings.create({ model: 'google/gemini-embedding-001', input: 'one two three', encoding_format: 'float' });
    expect(lastUpstream()).toMatchObject({ path: '/v1/embeddings', body: { model: 'gemini-embedding-001', input: 'one two three' } });
    await client.embeddings.create({ model: 'qwen/text-embedding-v4', input: ['a b', 'c'], encoding_format: 'float' });
    expect(lastUpstream()).toMatchObject({ path: '/v1/embeddings', body: { model: 'text-embedding-v4' } });
    // Google and Alibaba embed text only: token ids are refused by name, before any upstream call.
    const before = upstream.requests.length;
    const tokens = await rawEmbeddings(key, { model: 'google/gemini-embedding-001', input: [5, 6, 7] });
    expect(tokens.status).toBe(400);
    expect(tokens.json.error.message).toContain('token ids');
    expect(tokens.json.error.message).toContain('gemini-embedding-001');
    expect(upstream.requests.length).toBe(before);

    await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'my-tei', baseUrl: `${upstream.url}/v1/`, key: 'custom-embed-key' });
    const custom = await client.embeddings.create({ model: 'my-tei/BAAI/bge-small-en', input: 'local text', encoding_format: 'base64' });
    expect(custom.data).toHaveLength(1);
    expect(lastUpstream()).toMatchObject({ path: '/v1/embeddings', body: { model: 'BAAI/bge-small-en', input: 'local text' } });
    expect(lastUpstream().headers.authorization).toBe('Bearer custom-embed-key');

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const cost = (provider: 'azure' | 'google' | 'alibaba', model: string, tokens: number) => String(costNanos(findModel(provider, model)!.nanosPerMTok, { inputTokens: tokens, outputTokens: 0, cachedTokens: 0 }));
    expect(logs.map((l) => [l.provider, l.model, l.input_tokens, l.cost_nanos, l.paid_by, l.status])).toEqual([
      ['azure', 'text-embedding-3-large', 3, cost('azure', 'text-embedding-3-large', 3), 'credits', 200],
      ['google', 'gemini-embedding-001', 3, cost('google', 'gemini-embedding-001', 3), 'credits', 200],
      ['alibaba', 'text-embedding-v4', 3, cost('alibaba', 'text-embedding-v4', 3), 'credits', 200],
      ['google', 'gemini-embedding-001', 0, '0', 'none', 400],
      ['custom', 'my-tei/BAAI/bge-small-en', 2, '0', 'provider_key', 200],
    ]);
    expect(cost('google', 'gemini-embedding-001', 3)).toBe('450'); // 3 × $0.15/M
  });

  it('answers a repeated call from the project cache (not charged), apart from chat entries', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner);
    await owner.client.project.update.mutate({ projectId, cachingEnabled: true, cacheTtlSeconds: 60 });
    const first = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: 'cache me please', encoding_format: 'float' });
    expect(first.headers.get('x-gateway-cache')).toBe('miss');
    const calls = upstream.requests.length;
    // Same input, other encoding: one cache entry serves both.
    const second = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: 'cache me please', encoding_format: 'base64' });
    expect(second.status).toBe(200);
    expect(second.headers.get('x-gateway-cache')).toBe('hit');
    expect(upstream.requests.length).toBe(calls);
    const bytes = Buffer.from(second.json.data[0].embedding as string, 'base64');
    expect(bytes.readFloatLE(0)).toBe(first.json.data[0].embedding[0]);
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.cached, l.paid_by, l.input_tokens, l.cost_nanos])).toEqual([
      [false, 'credits', 3, '60'],
      [true, 'cache', 3, '0'],
    ]);
  });

  it('refuses chat models on /v1/embeddings and embedding models on chat completions, naming the model', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = upstream.requests.length;
    const chat = await rawEmbeddings(key, { model: 'openai/gpt-4o-mini', input: 'x' });
    expect(chat.status).toBe(400);
    expect(chat.json.error).toMatchObject({ code: 'model_not_supported' });
    expect(chat.json.error.message).toContain('"gpt-4o-mini" is a chat model');
    const embed = await rawChat(app, key, { model: 'text-embedding-3-small', messages: [{ role: 'user', content: 'hi' }] });
    expect(embed.status).toBe(400);
    expect((embed.json as { error: { message: string } }).error.message).toContain('"text-embedding-3-small" is an embedding model');
    const unknown = await rawEmbeddings(key, { model: 'openai/text-embedding-9', input: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('model_not_found');
    const anthropic = await rawEmbeddings(key, { model: 'anthropic/claude-sonnet-4-5', input: 'x' });
    expect(anthropic.status).toBe(400);
    const bad = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: [] });
    expect(bad.status).toBe(400);
    const badFormat = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: 'x', encoding_format: 'int8' });
    expect(badFormat.json.error.message).toContain('encoding_format');
    expect(upstream.requests.length).toBe(before);
    await flushUsage(app);
    expect((await logsOf(app, orgId)).every((l) => l.cost_nanos === '0' && l.status >= 400)).toBe(true);
  });

  it('shows in analytics by endpoint (breakdown by: endpoint)', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one two' });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'three' });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await flushUsage(app);
    const from = new Date(Date.now() - 3_600_000);
    const to = new Date(Date.now() + 3_600_000);
    const rows = await owner.client.analytics.breakdown.query({ orgId, from, to, by: 'endpoint' });
    expect(rows.map((r) => [r.key, r.label, r.requests, r.inputTokens])).toEqual([
      ['chat.completions', 'chat.completions', 1, 11],
      ['embeddings', 'embeddings', 2, 3],
    ]);
  });

  it('passes the upstream retry-after on a 429', async () => {
    const { key } = await gatewaySetup(app, owner);
    const res = await rawEmbeddings(key, { model: 'text-embedding-3-small', input: 'too much [status:429]' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.json.error.code).toBe('upstream_rate_limited');
    const chat = await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'slow down [status:429]' }] });
    expect(chat.status).toBe(429);
    expect(chat.headers.get('retry-after')).toBe('7');
    const streamed = await rawChat(app, key, { model: 'anthropic/claude-haiku-4-5', stream: true, messages: [{ role: 'user', content: 'slow down [status:429]' }] });
    expect(streamed.status).toBe(429);
    expect(streamed.headers.get('retry-after')).toBe('7');
  });
});
