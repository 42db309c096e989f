/**
 * GET /v1/models (with each model's kind) and GET /v1/models/{id} (provider/id, bare names,
 * aliases; the openai client's models.retrieve), and 404 `model_not_found` for unknown models on
 * every endpoint that takes one, and for unknown /v1 paths the list of what the gateway serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import '../helpers/fake-embeddings.js';
import { gatewaySetup, newOwner, openai, rawChat, type Owner } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const get = async (path: string, key: string) => {
  const res = await fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
};

describe('models', () => {
  it('lists chat and embedding models with their kind', async () => {
    const { key } = await gatewaySetup(app, owner);
    const list = await openai(app, key).models.list();
    const byId = new Map(list.data.map((m) => [m.id, m as unknown as Record<string, unknown>]));
    expect(byId.get('openai/gpt-4o-mini')).toMatchObject({ object: 'model', owned_by: 'openai', kind: 'chat', max_output_tokens: 16_384 });
    expect(byId.get('openai/text-embedding-3-small')).toMatchObject({ kind: 'embedding', dimensions: 1536, pricing: { input_per_million: '0.02', currency: 'USD' } });
    expect(byId.get('google/gemini-embedding-001')).toMatchObject({ kind: 'embedding', pricing: { input_per_million: '0.15' } });
    expect(byId.get('alibaba/text-embedding-v4')).toMatchObject({ kind: 'embedding', pricing: { input_per_million: '0.07' } });
  });

  it('retrieves one model by provider/id, bare name or alias, with the openai client too', async () => {
    const { key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const retrieved = await client.models.retrieve('openai/gpt-4o-mini');
    expect(retrieved).toMatchObject({ id: 'openai/gpt-4o-mini', object: 'model', owned_by: 'openai' });
    expect((await get('/v1/models/gpt-4o-mini', key)).json.id).toBe('openai/gpt-4o-mini');
    const alias = await get('/v1/models/anthropic/claude-sonnet-4-5', key);
    expect(alias.json).toMatchObject({ id: 'anthropic/claude-sonnet-4-5-20250929', kind: 'chat', aliases: ['anthropic/claude-sonnet-4-5'] });
    expect((await get('/v1/models/bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0', key)).status).toBe(404); // no Bedrock key: not callable here
    expect((await get('/v1/models/text-embedding-3-large', key)).json).toMatchObject({ id: 'openai/text-embedding-3-large', kind: 'embedding' });
  });

  it('answers 404 model_not_found for unknown models, on every endpoint', async () => {
    const { key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const err = await client.models.retrieve('openai/gpt-99').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    for (const id of ['no-such-model', 'nope/whatever']) {
      const res = await get(`/v1/models/${id}`, key);
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe('model_not_found');
    }
    const chat = await rawChat(app, key, { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
    expect([chat.status, (chat.json as { error: { code: string } }).error.code]).toEqual([404, 'model_not_found']);
    const embed = await client.embeddings.create({ model: 'no-such-embedder', input: 'x' }).catch((e: unknown) => e);
    expect(embed).toBeInstanceOf(OpenAI.NotFoundError);
    // Without a key: 401 first.
    expect((await fetch(`${app.url}/v1/models/openai/gpt-4o-mini`)).status).toBe(401);
  });

  it('lists every endpoint in the /v1 not-found answer', async () => {
    const res = await fetch(`${app.url}/v1/nothing-here`, { method: 'POST' });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe('unknown_url');
    for (const endpoint of ['POST /v1/embeddings', 'GET /v1/models/{id}', 'POST /v1/messages', 'POST /v1/responses']) expect(body.error.message).toContain(endpoint);
  });
});
