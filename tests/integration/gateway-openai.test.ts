/**
 * The gateway through the official `openai` npm client (unchanged but for baseURL and key), against
 * a local fake upstream speaking OpenAI's and Anthropic's formats: streaming and not, routing, who
 * pays, /v1/models and the error statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { FAKE_AWS_CREDENTIALS, fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, newOwner, openai, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { costNanos, findModel } from '../../shared/models.js';

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

const lastUpstream = () => upstream.requests[upstream.requests.length - 1]!;

describe('the openai client', () => {
  it('gets a completion (non-streaming), metered and charged exactly', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const client = openai(app, key);
    const completion = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
    expect(completion.choices[0]!.message.content).toBe('w0 w1 w2 w3 w4 ');
    expect(completion.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 5 });
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-operator-openai');
    expect(lastUpstream().body.model).toBe('gpt-4o-mini');
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    const expected = costNanos(findModel('openai', 'gpt-4o-mini')!.nanosPerMTok, { inputTokens: 12, outputTokens: 5, cachedTokens: 0 });
    // 12 × $0.15/M + 5 × $0.60/M = 1,800 + 3,000 nano-dollars
    expect(expected).toBe(4800n);
    expect(log).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', input_tokens: 12, output_tokens: 5, cost_nanos: '4800', paid_by: 'credits', status: 200, streamed: false, cached: false, canceled: false });
    expect(before - (await balanceOf(app, orgId))).toBe(4800n);
  });

  it('streams, with usage only when stream_options.include_usage asks for it', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream please [chunks:7]' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('w0 w1 w2 w3 w4 w5 w6 ');
    expect(usage).toMatchObject({ prompt_tokens: 13, completion_tokens: 7 });
    // The gateway always asks upstream for usage (metering needs it).
    expect(lastUpstream().body.stream_options).toEqual({ include_usage: true });

    const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'no usage please' }], stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of plain) chunks.push(chunk);
    expect(chunks.every((c) => !c.usage)).toBe(true);
    expect(chunks.some((c) => c.choices[0]?.finish_reason === 'stop')).toBe(true);

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.streamed, l.input_tokens, l.output_tokens, l.status])).toEqual([
      [true, 13, 7, 200],
      [true, 13, 5, 200],
    ]);
    expect(logs.every((l) => l.ttft_ms !== null && l.ttft_ms <= l.latency_ms)).toBe(true);
  });

  it('translates Anthropic both ways, streaming included', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key);
    const completion = await client.chat.completions.create({
      model: 'anthropic/claude-sonnet-4-5',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi [cached:4]' },
      ],
      max_tokens: 100,
    });
    const sent = lastUpstream();
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe('sk-operator-anthropic');
    expect(sent.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent.body).toMatchObject({ model: 'claude-sonnet-4-5-20250929', system: 'be brief', max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi [cached:4]' }] }] });
    expect(completion.choices[0]!.message.content).toBe('w0 w1 w2 w3 w4 ');
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    // prompt = 10 + 4 words (system and user) + 4 cached
    expect(completion.usage).toMatchObject({ prompt_tokens: 18, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 4 } });

    const stream = await client.chat.completions.create({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'stream [chunks:3]' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('w0 w1 w2 ');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 3 });
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.provider, l.model, l.input_tokens, l.cached_tokens, l.output_tokens])).toEqual([
      ['anthropic', 'claude-sonnet-4-5-20250929', 18, 4, 5],
      ['anthropic', 'claude-haiku-4-5-20251001', 12, 0, 3],
    ]);
    const sonnet = findModel('anthropic', 'claude-sonnet-4-5-20250929')!.nanosPerMTok;
    // 14 uncached × $3/M + 4 cached × $0.30/M + 5 × $15/M
    expect(BigInt(logs[0]!.cost_nanos)).toBe(costNanos(sonnet, { inputTokens: 18, cachedTokens: 4, outputTokens: 5 }));
    expect(logs[0]!.cost_nanos).toBe(String(14n * 3000n + 4n * 300n + 5n * 15000n));
  });

  it('bills Anthropic prompt-cache writes at the cache-write price, streaming or not, and shows them', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key);
    const plain = await client.chat.completions.create({ model: 'anthropic/claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi [cached:4] [cachewrite:6]' }] });
    // 10 + 3 words fresh, 4 read, 6 written; the writes are reported next to the reads.
    expect(plain.usage).toMatchObject({ prompt_tokens: 23, prompt_tokens_details: { cached_tokens: 4, cache_write_tokens: 6 } });
    const stream = await client.chat.completions.create({ model: 'anthropic/claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi [cachewrite:20] [chunks:2]' }], stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) void chunk;
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.input_tokens, l.cached_tokens, l.cache_write_tokens])).toEqual([
      [23, 4, 6],
      [33, 0, 20],
    ]);
    // 13 fresh × $3 + 4 read × $0.30 + 6 written × $3.75 + 5 out × $15 (per million, in nano-dollars)
    expect(logs[0]!.cost_nanos).toBe(String(13n * 3000n + 4n * 300n + 6n * 3750n + 5n * 15000n));
    expect(logs[1]!.cost_nanos).toBe(String(13n * 3000n + 20n * 3750n + 2n * 15000n));
    const listed = await owner.client.logs.list.query({ orgId });
    expect(listed.items.map((l) => l.cacheWriteTokens).sort((a, b) => a - b)).toEqual([6, 20]);
  });

  it('lists the models this project can call', async () => {
    const { key } = await gatewaySetup(app, owner);
    const models = await openai(app, key).models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toContain('openai/gpt-4o-mini');
    expect(ids).toContain('anthropic/claude-sonnet-4-5-20250929');
    // No operator key for Bedrock or Azure in this environment, and the org has none either.
    expect(ids.some((id) => id.startsWith('bedrock/'))).toBe(false);
  });
});

describe('who pays', () => {
  it("uses the organization's own provider key without charging credits (cost still computed)", async () => {
    const { orgId, key } = await gatewaySetup(app, owner, { credits: '0' });
    // With no credits and only operator keys, credits calls are refused ...
    const refused = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(402);
    expect(refused.json).toMatchObject({ error: { type: 'insufficient_quota', code: 'insufficient_credits' } });
    // ... until the organization brings its own OpenAI key (hybrid mode, the default).
    await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-org-own-openai-1234' });
    const completion = await openai(app, key).chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'own key' }] });
    expect(completion.choices[0]!.message.content).toContain('w0');
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-org-own-openai-1234');
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.status, l.paid_by])).toEqual([
      [402, 'none'],
      [200, 'provider_key'],
    ]);
    expect(BigInt(logs[1]!.cost_nanos)).toBeGreaterThan(0n);
    expect(await balanceOf(app, orgId)).toBe(0n);
    // Anthropic has no organization key: hybrid falls back to credits, which are empty.
    const anthropic = await rawChat(app, key, { model: 'anthropic/claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] });
    expect(anthropic.status).toBe(402);
  });

  it('provider-keys mode never spends credits; credits mode never uses the organization key', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner, { credits: '5', mode: 'provider-keys' });
    const missing = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error: { code: 'provider_key_missing' } });
    await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-org-key-for-mode-test' });
    expect((await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-org-key-for-mode-test');

    await owner.client.project.update.mutate({ projectId, mode: 'credits' });
    expect((await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-operator-openai');
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => l.paid_by)).toEqual(['none', 'provider_key', 'credits']);
  });

  it('routes <custom name>/<model> to a custom OpenAI-compatible server, model unchanged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'my-vllm', baseUrl: `${upstream.url}/v1/`, key: 'custom-secret-key' });
    const res = await rawChat(app, key, { model: 'my-vllm/meta-llama/Llama-3.1-8B', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
    expect(lastUpstream().body.model).toBe('meta-llama/Llama-3.1-8B');
    expect(lastUpstream().headers.authorization).toBe('Bearer custom-secret-key');
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    expect(log).toMatchObject({ provider: 'custom', model: 'my-vllm/meta-llama/Llama-3.1-8B', paid_by: 'provider_key', cost_nanos: '0' });
  });
});

describe('errors in OpenAI shape', () => {
  it('401 for a missing, malformed or unknown key', async () => {
    for (const key of [null, 'nope', 'sk-gw-' + 'A'.repeat(40)]) {
      const res = await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key' } });
    }
    const err = await openai(app, 'sk-gw-' + 'B'.repeat(40), { maxRetries: 0 })
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('400 for bad bodies, 404 model_not_found for unknown models; nothing charged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const cases: unknown[] = ['{not json', { messages: [] }, { model: 'gpt-4o-mini', messages: [] }, { model: 'gpt-4o-mini', messages: 'hi' }];
    for (const body of cases) {
      const res = await rawChat(app, key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json).toMatchObject({ error: { type: 'invalid_request_error' } });
    }
    // OpenAI answers an unknown model with 404 model_not_found, and so do we (a bare name and a provider's unknown id).
    for (const model of ['no-such-model', 'openai/gpt-99']) {
      const res = await rawChat(app, key, { model, messages: [{ role: 'user', content: 'x' }] });
      expect(res.status, model).toBe(404);
      expect(res.json).toMatchObject({ error: { type: 'invalid_request_error', code: 'model_not_found' } });
    }
    const wrongType = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' }, body: 'hi' });
    expect([400, 415]).toContain(wrongType.status);
    expect(await wrongType.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    const unknownPath = await fetch(`${app.url}/v1/audio/speech`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
    expect(unknownPath.status).toBe(404);
    expect(await unknownPath.json()).toMatchObject({ error: { code: 'unknown_url' } });
    await flushUsage(app);
    expect(await balanceOf(app, orgId)).toBe(before);
  });

  it('429 past the per-key requests-per-minute limit', async () => {
    const { orgId, key } = await gatewaySetup(app, owner, { rpmLimit: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `n${i}` }] })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }] });
    expect(limited.json).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.filter((l) => l.status === 429).every((l) => l.cost_nanos === '0')).toBe(true);
  });
});

describe('AWS Bedrock: Claude through InvokeModel', () => {
  it('calls Claude through the inference profile, streaming (AWS event stream) or not, and prices it', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: 'bedrock-api-key-0001', options: { region: 'eu-west-1' } });
    const client = openai(app, key);

    const plain = await client.chat.completions.create({ model: 'bedrock/claude-sonnet-4-5', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi [cached:2]' }], max_tokens: 50 });
    expect(plain.choices[0]!.message.content).toBe('w0 w1 w2 w3 w4 ');
    expect(plain.usage).toMatchObject({ prompt_tokens: 16, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 2 } });
    let sent = lastUpstream();
    // global. is the default inference profile; the model id is URL-encoded in the path.
    expect(sent.path).toBe('/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke');
    expect(sent.headers.authorization).toBe('Bearer bedrock-api-key-0001');
    expect(sent.headers.accept).toBe('application/json');
    expect(sent.body).toMatchObject({ anthropic_version: 'bedrock-2023-05-31', system: 'be brief', max_tokens: 50 });
    expect(sent.body).not.toHaveProperty('model');
    expect(sent.body).not.toHaveProperty('stream');

    const stream = await client.chat.completions.create({ model: 'bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0', messages: [{ role: 'user', content: 'stream [chunks:4] [cachewrite:3]' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('w0 w1 w2 w3 ');
    expect(usage).toMatchObject({ prompt_tokens: 16, completion_tokens: 4 });
    sent = lastUpstream();
    // An explicit profile is kept as asked.
    expect(sent.path).toBe('/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke-with-response-stream');
    expect(sent.headers).toMatchObject({ accept: 'application/vnd.amazon.eventstream', 'x-amzn-bedrock-accept': 'application/json', authorization: 'Bearer bedrock-api-key-0001' });

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.provider, l.model, l.status, l.paid_by, l.input_tokens, l.cached_tokens, l.cache_write_tokens, l.output_tokens])).toEqual([
      ['bedrock', 'anthropic.claude-sonnet-4-5-20250929-v1:0', 200, 'provider_key', 16, 2, 0, 5],
      ['bedrock', 'us.anthropic.claude-haiku-4-5-20251001-v1:0', 200, 'provider_key', 16, 0, 3, 4],
    ]);
    // Own key: not charged, but the cost is computed at the catalog's prices.
    expect(logs[0]!.cost_nanos).toBe(String(14n * 3000n + 2n * 300n + 5n * 15000n));
    expect(logs[1]!.cost_nanos).toBe(String(13n * 1000n + 3n * 1250n + 4n * 5000n));
  });

  it('calls the bare model id when the key says no inference profile', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: 'bedrock-api-key-0002', options: { region: 'us-east-1', inferenceProfile: 'none' } });
    expect((await rawChat(app, key, { model: 'bedrock/claude-sonnet-4-0', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    expect(lastUpstream().path).toBe('/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke');
    // Other Bedrock models still go to its OpenAI-compatible endpoint.
    expect((await rawChat(app, key, { model: 'bedrock/openai.gpt-oss-20b-1:0', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    expect(lastUpstream().path).toBe('/v1/chat/completions');
    expect(lastUpstream().body).toMatchObject({ model: 'openai.gpt-oss-20b-1:0' });
    const bad = await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: 'bedrock-api-key-0003', options: { region: 'us-east-1', inferenceProfile: 'mars' as never } }).catch((e: unknown) => e);
    expect(String(bad)).toMatch(/inference profile is one of/);
  });

  it('signs every call with SigV4 when the key is an IAM access key (Claude models only)', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const iamKey = `${FAKE_AWS_CREDENTIALS.accessKeyId}:${FAKE_AWS_CREDENTIALS.secretAccessKey}`;
    await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: iamKey, options: { region: 'us-west-2' } });
    const client = openai(app, key, { maxRetries: 0 });
    // The fake Bedrock checks the signature the way AWS does (method, path, headers, body hash, date).
    const plain = await client.chat.completions.create({ model: 'bedrock/claude-haiku-4-5', messages: [{ role: 'user', content: 'signed [chunks:2]' }] });
    expect(plain.choices[0]!.message.content).toBe('w0 w1 ');
    expect(lastUpstream().headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${FAKE_AWS_CREDENTIALS.accessKeyId}/\\d{8}/us-west-2/bedrock/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`));
    const stream = await client.chat.completions.create({ model: 'bedrock/claude-haiku-4-5', messages: [{ role: 'user', content: 'signed stream [chunks:3]' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('w0 w1 w2 ');

    // A wrong secret is refused by Bedrock: a 502 that names the credentials, not charged.
    const other = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId: other.orgId, provider: 'bedrock', key: `${FAKE_AWS_CREDENTIALS.accessKeyId}:not-the-secret` });
    const refused = await rawChat(app, other.key, { model: 'bedrock/claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(502);
    expect(refused.json).toMatchObject({ error: { code: 'upstream_auth_failed', message: expect.stringContaining('signature we calculated does not match') } });
    // Other Bedrock models go to the OpenAI-compatible endpoint, which takes API keys only: said plainly.
    const unsupported = await rawChat(app, key, { model: 'bedrock/openai.gpt-oss-20b-1:0', messages: [{ role: 'user', content: 'hi' }] });
    expect(unsupported.status).toBe(400);
    expect(unsupported.json).toMatchObject({ error: { code: 'provider_key_unsupported' } });
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => [l.status, l.paid_by])).toEqual([
      [200, 'provider_key'],
      [200, 'provider_key'],
      [400, 'none'],
    ]);
  });

  it('turns upstream errors, broken frames and mid-stream exceptions into errors, logged; no credits spent', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: 'bedrock-api-key-0004' });
    const client = openai(app, key, { maxRetries: 0 });
    const failed = await rawChat(app, key, { model: 'bedrock/claude-haiku-4-5', messages: [{ role: 'user', content: '[status:429]' }] });
    expect(failed.status).toBe(429);
    for (const directive of ['[malformed]', '[fail-mid]', '[truncate]']) {
      const err = await client.chat.completions
        .create({ model: 'bedrock/claude-haiku-4-5', messages: [{ role: 'user', content: `${directive} [chunks:3]` }], stream: true })
        .then(async (s) => {
          for await (const c of s) void c;
        })
        .catch((e: unknown) => e);
      expect(err, directive).toBeInstanceOf(Error);
    }
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => l.status)).toEqual([429, 502, 502, 502]);
    expect(logs[1]!.error).toMatch(/broken event stream/);
    expect(logs[2]!.error).toMatch(/throttlingException: fake throttling/);
    expect(logs[3]!.error).toMatch(/ended the stream early/);
    expect(logs[0]).toMatchObject({ paid_by: 'none', cost_nanos: '0' });
    // A stream that failed after delivering output is priced for that output, paid by the organization's own key.
    for (const l of logs.slice(1)) expect(l.paid_by === 'provider_key' || (l.paid_by === 'none' && l.cost_nanos === '0'), JSON.stringify(l)).toBe(true);
    expect(logs.slice(1).some((l) => l.paid_by === 'provider_key' && l.output_tokens > 0)).toBe(true);
    expect((await usageLedgerOf(app, orgId)).total).toBe(0n);
  });
});
