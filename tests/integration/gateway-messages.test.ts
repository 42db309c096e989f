/**
 * POST /v1/messages and /v1/messages/count_tokens over raw HTTP: Claude requests pass through to
 * the fake Anthropic (and Bedrock) exactly as sent (cache_control, thinking, documents, tools,
 * anthropic-beta / anthropic-version, ?beta=true), answers come back unchanged; requests for an
 * OpenAI model are translated both ways, tools and the event stream included; refusals name the
 * parameter and the model; errors have Anthropic's shape; the request log holds exactly what the
 * fakes reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, promptTokensOf, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { fakeUrls } from '../helpers/fake-anthropic.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { costNanos, findModel, type TokenUsage } from '../../shared/models.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { GATEWAY_MAX_BODY_BYTES: String(256 * 1024) }) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const lastUpstream = () => upstream.requests[upstream.requests.length - 1]!;

async function post(path: string, key: string | null, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | null;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: res.status, json, text, headers: res.headers };
}
const messages = (key: string | null, body: unknown, headers: Record<string, string> = {}) => post('/v1/messages', key, body, headers);

function events(text: string): { event: string; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? '';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
      return { event, data };
    });
}

const PDF = Buffer.from('%PDF-1.4 fake pdf bytes').toString('base64');
const PNG = Buffer.from('fake png bytes').toString('base64');
const cost = (provider: 'anthropic' | 'openai' | 'bedrock', model: string, usage: TokenUsage) => costNanos(findModel(provider, model)!.nanosPerMTok, usage).toString();

describe('Claude models pass through natively', () => {
  it('sends the body and the Anthropic headers exactly as the client did (only model replaced) and answers the fake bytes unchanged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const body = {
      model: 'claude-sonnet-4-5',
      max_tokens: 2048,
      system: [
        { type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Answer in English.' },
      ],
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, cache_control: { type: 'ephemeral' } }],
      tool_choice: { type: 'auto' },
      metadata: { user_id: 'user-42' },
      messages: [
        {
          role: 'user',
          content: [
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF }, title: 'Report', cache_control: { type: 'ephemeral' } },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            { type: 'text', text: 'weather? [thinking] [tool:get_weather]' },
          ],
        },
      ],
    };
    const headers = { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31,pdfs-2024-09-25' };
    const res = await post('/v1/messages?beta=true', key, body, headers);
    expect(res.status).toBe(200);
    const sent = lastUpstream();
    expect(sent.path).toBe('/v1/messages');
    expect(fakeUrls[fakeUrls.length - 1]).toBe('/v1/messages?beta=true');
    expect(sent.body).toEqual({ ...body, model: 'claude-sonnet-4-5-20250929' });
    expect(sent.headers).toMatchObject({ 'x-api-key': 'sk-operator-anthropic', ...headers });
    expect(sent.headers.authorization).toBeUndefined();
    expect(res.headers.get('request-id')).toBe('req_fake');
    // The fake's bytes, as it serialized them.
    expect(res.text).toBe(
      JSON.stringify({
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [
          { type: 'thinking', thinking: 'Let me think.', signature: 'sig-fake' },
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_fake1', name: 'get_weather', input: { city: 'Paris' } },
        ],
        stop_reason: 'tool_use',
        stop_sequence: null,
        usage: { input_tokens: promptTokensOf(body.messages, body.system), output_tokens: 7, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
      }),
    );

    // No anthropic-version from the client: the default.
    const plain = await messages(key, { model: 'anthropic/claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi [cached:4] [cachewrite:3]' }] });
    expect(plain.status).toBe(200);
    expect(lastUpstream().headers['anthropic-version']).toBe('2023-06-01');
    expect(lastUpstream().headers['anthropic-beta']).toBeUndefined();
    expect(plain.json).toMatchObject({ content: [{ type: 'text', text: 'w0 w1 w2 w3 w4 ' }], usage: { input_tokens: 13, cache_read_input_tokens: 4, cache_creation_input_tokens: 3, output_tokens: 5 } });

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const input = promptTokensOf(body.messages, body.system);
    const u2 = { inputTokens: 20, outputTokens: 5, cachedTokens: 4, cacheWriteTokens: 3 };
    expect(logs.map((l) => [l.provider, l.model, l.status, l.input_tokens, l.output_tokens, l.cached_tokens, l.cache_write_tokens, l.cost_nanos, l.paid_by, l.streamed])).toEqual([
      ['anthropic', 'claude-sonnet-4-5-20250929', 200, input, 7, 0, 0, cost('anthropic', 'claude-sonnet-4-5-20250929', { inputTokens: input, outputTokens: 7, cachedTokens: 0 }), 'credits', false],
      ['anthropic', 'claude-haiku-4-5-20251001', 200, 20, 5, 4, 3, cost('anthropic', 'claude-haiku-4-5-20251001', u2), 'credits', false],
    ]);
    const [row] = await (await import('../helpers/db-state.js')).sql<{ endpoint: string }>(app, 'select endpoint from request_log where org_id = ? limit 1', [orgId]);
    expect(row!.endpoint).toBe('messages');
  });

  it('streams the fake events through unchanged (thinking, tool use) and meters cumulative usage with cache reads and writes', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const body = { model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'go [thinking] [tool:lookup]' }] };
    const res = await messages(key, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const got = events(res.text);
    expect(got.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(got.every((e) => e.data.type === e.event)).toBe(true);
    expect(got[3]!.data).toEqual({ type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig-fake' } });
    expect(lastUpstream().body).toEqual({ ...body, model: 'claude-sonnet-4-5-20250929' });

    const cachedStream = await messages(key, { model: 'claude-haiku-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'stream [chunks:6] [cached:5] [cachewrite:2]' }] });
    expect(events(cachedStream.text).map((e) => e.event).at(-1)).toBe('message_stop');
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const input1 = promptTokensOf(body.messages);
    const u2 = { inputTokens: 14 + 7, outputTokens: 6, cachedTokens: 5, cacheWriteTokens: 2 };
    expect(logs.map((l) => [l.model, l.status, l.streamed, l.input_tokens, l.output_tokens, l.cached_tokens, l.cache_write_tokens, l.cost_nanos])).toEqual([
      ['claude-sonnet-4-5-20250929', 200, true, input1, 7, 0, 0, cost('anthropic', 'claude-sonnet-4-5-20250929', { inputTokens: input1, outputTokens: 7, cachedTokens: 0 })],
      ['claude-haiku-4-5-20251001', 200, true, 21, 6, 5, 2, cost('anthropic', 'claude-haiku-4-5-20251001', u2)],
    ]);
    expect(logs.every((l) => l.ttft_ms !== null)).toBe(true);
  });

  it('goes to Bedrock InvokeModel with bedrock-2023-05-31 and the betas in the body; the event stream comes back as Anthropic SSE', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'bedrock', key: 'bedrock-api-key-msgs', options: { region: 'eu-west-1' } });
    const body = { model: 'bedrock/claude-haiku-4-5', max_tokens: 50, system: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi [cached:2]' }] };
    const plain = await messages(key, body, { 'anthropic-beta': 'context-1m-2025-08-07, token-efficient-tools-2025-02-19' });
    expect(plain.status).toBe(200);
    const sent = lastUpstream();
    expect(sent.path).toBe('/model/global.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke');
    expect(sent.headers.authorization).toBe('Bearer bedrock-api-key-msgs');
    const { model: _model, ...rest } = body;
    expect(sent.body).toEqual({ anthropic_version: 'bedrock-2023-05-31', ...rest, anthropic_beta: ['context-1m-2025-08-07', 'token-efficient-tools-2025-02-19'] });
    expect(plain.json).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'w0 w1 w2 w3 w4 ' }] });

    const stream = await messages(key, { ...body, stream: true, messages: [{ role: 'user', content: 'stream [chunks:3] [cachewrite:4]' }] });
    expect(lastUpstream().path).toBe('/model/global.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke-with-response-stream');
    expect(lastUpstream().body).not.toHaveProperty('stream');
    const got = events(stream.text);
    expect(got.map((e) => e.event)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(got.map((e) => (e.data.delta as { text?: string } | undefined)?.text ?? '').join('')).toBe('w0 w1 w2 ');
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.provider, l.status, l.streamed, l.input_tokens, l.output_tokens, l.cached_tokens, l.cache_write_tokens, l.paid_by])).toEqual([
      ['bedrock', 200, false, 16, 5, 2, 0, 'provider_key'],
      ['bedrock', 200, true, 19, 3, 0, 4, 'provider_key'],
    ]);
  });
});

describe('other providers are translated both ways', () => {
  const tools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } }];
  const conversation = [
    { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }, { type: 'text', text: 'Weather in Paris?' }] },
    { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'sunny' }] }, { type: 'text', text: 'And tomorrow? [oai-tool:get_weather]' }] },
  ];

  it('non-streaming: the OpenAI request carries every field; the answer is an Anthropic message with tool_use; metered as reported', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const res = await messages(key, {
      model: 'openai/gpt-4o-mini',
      max_tokens: 300,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Use tools.' }],
      messages: conversation,
      tools,
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      stop_sequences: ['END'],
      temperature: 0.3,
      top_p: 0.9,
      metadata: { user_id: 'u-7' },
    });
    expect(res.status).toBe(200);
    const sent = lastUpstream();
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.body).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.\n\nUse tools.' },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }, { type: 'text', text: 'Weather in Paris?' }] },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
        { role: 'user', content: 'And tomorrow? [oai-tool:get_weather]' },
      ],
      max_completion_tokens: 300,
      stop: ['END'],
      temperature: 0.3,
      top_p: 0.9,
      user: 'u-7',
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });
    const prompt = promptTokensOf(sent.body.messages as { content?: unknown }[]);
    expect(res.json).toEqual({
      id: 'msg_faketool',
      type: 'message',
      role: 'assistant',
      model: 'openai/gpt-4o-mini',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'call_fake1', name: 'get_weather', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 9 },
    });
    const text = await messages(key, { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'plain [cached:3]' }] });
    expect(text.json).toMatchObject({ content: [{ type: 'text', text: 'w0 w1 w2 w3 w4 ' }], stop_reason: 'end_turn', usage: { input_tokens: 12, cache_read_input_tokens: 3, output_tokens: 5 } });
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.provider, l.model, l.input_tokens, l.output_tokens, l.cached_tokens, l.cost_nanos])).toEqual([
      ['openai', 'gpt-4o-mini', prompt, 9, 0, cost('openai', 'gpt-4o-mini', { inputTokens: prompt, outputTokens: 9, cachedTokens: 0 })],
      ['openai', 'gpt-4o-mini', 15, 5, 3, cost('openai', 'gpt-4o-mini', { inputTokens: 15, outputTokens: 5, cachedTokens: 3 })],
    ]);
  });

  it('streaming: chunks become message_start, text and tool_use blocks with input_json_delta, message_delta with usage, message_stop', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const res = await messages(key, { model: 'gpt-4o-mini', max_tokens: 300, stream: true, messages: conversation, tools });
    expect(res.status).toBe(200);
    const sent = lastUpstream();
    expect(sent.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const got = events(res.text);
    expect(got.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(got[2]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    expect(got[3]!.data).toEqual({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me ' } });
    expect(got[6]!.data).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_fake1', name: 'get_weather', input: {} } });
    expect(got.slice(7, 9).map((e) => (e.data.delta as { partial_json: string }).partial_json).join('')).toBe('{"city":"Paris"}');
    const prompt = promptTokensOf(sent.body.messages as { content?: unknown }[]);
    expect(got[10]!.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 9 } });
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    expect(log).toMatchObject({ provider: 'openai', streamed: true, status: 200, input_tokens: prompt, output_tokens: 9, cost_nanos: cost('openai', 'gpt-4o-mini', { inputTokens: prompt, outputTokens: 9, cachedTokens: 0 }) });
  });

  it('translates PDFs for OpenAI, thinking for reasoning models, and refuses what a provider cannot take, naming the parameter and the model', async () => {
    const { key } = await gatewaySetup(app, owner);
    const pdfMessage = [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF }, title: 'Report' }, { type: 'text', text: 'summarize' }] }];
    expect((await messages(key, { model: 'gpt-4o-mini', max_tokens: 20, messages: pdfMessage })).status).toBe(200);
    expect(lastUpstream().body.messages).toEqual([{ role: 'user', content: [{ type: 'file', file: { filename: 'Report.pdf', file_data: `data:application/pdf;base64,${PDF}` } }, { type: 'text', text: 'summarize' }] }]);

    expect((await messages(key, { model: 'o4-mini', max_tokens: 5000, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [{ role: 'user', content: 'think' }] })).status).toBe(200);
    expect(lastUpstream().body).toMatchObject({ model: 'o4-mini', reasoning_effort: 'low', max_completion_tokens: 5000 });

    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ model: 'gpt-4o-mini', top_k: 5 }, /^top_k is not supported for gpt-4o-mini/],
      [{ model: 'gpt-4o-mini', thinking: { type: 'enabled', budget_tokens: 2048 } }, /^thinking is not supported for gpt-4o-mini.*does not reason/],
      [{ model: 'google/gemini-2.5-flash', messages: pdfMessage }, /^messages\[0\]\.content\[0\] \(a PDF document\) is not supported for gemini-2\.5-flash/],
      [{ model: 'gpt-4o-mini', tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, /^tools\[0\] \(type web_search_20250305\) is not supported for gpt-4o-mini/],
      [{ model: 'gpt-4o-mini', mcp_servers: [] }, /^mcp_servers is not supported for gpt-4o-mini/],
      [{ model: 'gpt-4o-mini', metadata: { session: 'x' } }, /^metadata\.session is not supported for gpt-4o-mini/],
    ];
    const before = upstream.requests.length;
    for (const [extra, message] of refusals) {
      const res = await messages(key, { max_tokens: 20, messages: [{ role: 'user', content: 'hi' }], ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect((res.json!.error as { message: string }).message).toMatch(message);
    }
    const noMax = await messages(key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(noMax.status).toBe(400);
    expect(upstream.requests.length).toBe(before);
  });
});

describe('errors in Anthropic shape', () => {
  it('answers auth, JSON, size, model, credits, rate limit, upstream and unknown-path errors as {type: error, error: {type, message}}', async () => {
    const { key } = await gatewaySetup(app, owner);
    const ok = { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const check = async (p: Promise<{ status: number; json: Record<string, unknown> | null }>, status: number, type: string) => {
      const res = await p;
      expect(res.status).toBe(status);
      expect(res.json).toMatchObject({ type: 'error', error: { type, message: expect.any(String) } });
      expect(Object.keys(res.json!)).toEqual(['type', 'error']);
    };
    await check(messages(null, ok), 401, 'authentication_error');
    await check(messages('sk-gw-not-a-key', ok), 401, 'authentication_error');
    expect((await messages(null, ok, { authorization: `Bearer ${key}` })).status).toBe(200);
    await check(messages(key, '{"model": '), 400, 'invalid_request_error');
    await check(messages(key, { ...ok, messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] }), 413, 'request_too_large');
    await check(messages(key, { ...ok, model: 'no-such-model' }), 404, 'not_found_error');
    await check(messages(key, { ...ok, messages: [{ role: 'user', content: 'boom [status:500]' }] }), 502, 'api_error');
    await check(messages(key, { ...ok, messages: [{ role: 'user', content: 'slow down [status:429]' }] }), 429, 'rate_limit_error');
    await check(post('/v1/messages/batches', key, ok), 404, 'not_found_error');
    await check(post('/v1/messages/count_tokens', null, ok), 401, 'authentication_error');

    const broke = await gatewaySetup(app, owner, { credits: '0' });
    await check(messages(broke.key, ok), 402, 'billing_error');
    const limited = await gatewaySetup(app, owner, { rpmLimit: 1 });
    expect((await messages(limited.key, ok)).status).toBe(200);
    const refused = await messages(limited.key, ok);
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('mid-stream: a Claude error event passes through as sent; a translated stream ends with an Anthropic error event; both logged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const native = await messages(key, { model: 'claude-haiku-4-5', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x [fail-mid]' }] });
    const a = events(native.text);
    expect(a.at(-1)).toEqual({ event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'fake overload' } } });
    const translated = await messages(key, { model: 'gpt-4o-mini', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x [fail-mid]' }] });
    const b = events(translated.text);
    expect(b[0]!.event).toBe('message_start');
    expect(b.at(-1)!.event).toBe('error');
    expect(b.at(-1)!.data).toMatchObject({ type: 'error', error: { type: 'api_error', message: expect.stringContaining('fake overload') } });
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.provider, l.status, l.streamed, l.output_tokens > 0, l.paid_by])).toEqual([
      ['anthropic', 502, true, true, 'credits'],
      ['openai', 502, true, true, 'credits'],
    ]);
  });
});

describe('cache, cancellation and count_tokens', () => {
  it('caches non-streaming answers per project under a key apart from chat completions', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner);
    await owner.client.project.update.mutate({ projectId, cachingEnabled: true, cacheTtlSeconds: 60 });
    const body = { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'cache me' }] };
    const first = await messages(key, body);
    const second = await messages(key, body);
    expect([first.headers.get('x-gateway-cache'), second.headers.get('x-gateway-cache')]).toEqual(['miss', 'hit']);
    // The same message (jsonb keeps the values, not the key order).
    expect(second.json).toEqual(first.json);
    // The same model and messages through chat completions do not hit the messages entry.
    const chat = await rawChat(app, key, { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'cache me' }] });
    expect(chat.headers.get('x-gateway-cache')).toBe('miss');
    expect(chat.json).toHaveProperty('choices');
    // Another anthropic-beta is another answer.
    const claude = { model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'cache me' }] };
    expect((await messages(key, claude)).headers.get('x-gateway-cache')).toBe('miss');
    expect((await messages(key, claude, { 'anthropic-beta': 'x-2025' })).headers.get('x-gateway-cache')).toBe('miss');
    expect((await messages(key, claude)).headers.get('x-gateway-cache')).toBe('hit');
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.cached, l.paid_by])).toEqual([
      [false, 'credits'],
      [true, 'cache'],
      [false, 'credits'],
      [false, 'credits'],
      [false, 'credits'],
      [true, 'cache'],
    ]);
  });

  it('a client that leaves mid-stream is logged canceled and charged for what was delivered', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const controller = new AbortController();
    const res = await fetch(`${app.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'long [chunks:50] [slow:40]' }] }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('text_delta')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const deadline = Date.now() + 5000;
    let logs = await logsOf(app, orgId);
    while (logs.length === 0 && Date.now() < deadline) {
      await flushUsage(app);
      logs = await logsOf(app, orgId);
    }
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ canceled: true, streamed: true, paid_by: 'credits', input_tokens: 13 });
    expect(logs[0]!.output_tokens).toBeGreaterThan(0);
    expect(BigInt(logs[0]!.cost_nanos)).toBeGreaterThan(0n);
  });

  it('count_tokens: forwarded to Anthropic with its headers, estimated for other providers, never logged', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const body = { model: 'claude-sonnet-4-5', system: 'be brief', messages: [{ role: 'user', content: 'count these four words' }], tools: [{ name: 't', input_schema: { type: 'object' } }] };
    const res = await post('/v1/messages/count_tokens?beta=true', null, body, { authorization: `Bearer ${key}`, 'anthropic-beta': 'token-counting-2024-11-01' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ input_tokens: promptTokensOf(body.messages, body.system) + 1 });
    const sent = lastUpstream();
    expect(sent.path).toBe('/v1/messages/count_tokens');
    expect(fakeUrls[fakeUrls.length - 1]).toBe('/v1/messages/count_tokens?beta=true');
    expect(sent.body).toEqual({ ...body, model: 'claude-sonnet-4-5-20250929' });
    expect(sent.headers).toMatchObject({ 'x-api-key': 'sk-operator-anthropic', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'token-counting-2024-11-01' });

    const before = upstream.requests.length;
    const estimate = await post('/v1/messages/count_tokens', key, { ...body, model: 'gpt-4o-mini' });
    expect(estimate.status).toBe(200);
    expect(estimate.headers.get('x-gateway-estimate')).toBe('true');
    expect((estimate.json as { input_tokens: number }).input_tokens).toBeGreaterThan(5);
    expect(upstream.requests.length).toBe(before);
    await flushUsage(app);
    expect(await logsOf(app, orgId)).toEqual([]);
  });
});
