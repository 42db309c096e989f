/**
 * POST /v1/responses and GET /v1/responses/{id} with raw fetch: OpenAI models pass through to the
 * fake's /v1/responses (body and bytes unchanged), Anthropic models are translated both ways
 * (function tools and their outputs, text.format, reasoning effort, the event stream),
 * previous_response_id with and without retention, and the request log against the fake's tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeUsage } from '../helpers/fake-responses.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, newOwner, type Owner } from '../helpers/gateway.js';
import { sql } from '../helpers/db-state.js';
import { costNanos, findModel } from '../../shared/models.js';
import { purgeExpiredLogs } from '../../server/modules/usage/retention.js';

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

const SONNET = 'anthropic/claude-sonnet-4-5';
const lastUpstream = () => upstream.requests[upstream.requests.length - 1]!;

async function post(key: string, body: unknown) {
  const res = await fetch(`${app.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: Record<string, any> | null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, text, json: json as Record<string, any>, headers: res.headers };
}

/** The SSE events of a streamed answer: [event name, parsed data]. */
async function stream(key: string, body: Record<string, unknown>) {
  const res = await post(key, { ...body, stream: true });
  expect(res.status).toBe(200);
  const events = res.text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? null;
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
      return { event, data: JSON.parse(data) as Record<string, any> };
    });
  return { raw: res.text, events };
}

async function setRetention(orgId: string, level: 'none' | 'retain') {
  const org = await owner.client.organization.get.query({ orgId });
  await owner.client.organization.update.mutate({ orgId, version: org.version, retentionLevel: level });
}

const price = (provider: 'openai' | 'anthropic', model: string, u: { inputTokens: number; outputTokens: number; cachedTokens: number; cacheWriteTokens?: number }) =>
  costNanos(findModel(provider, model)!.nanosPerMTok, u).toString();

describe('OpenAI models pass through', () => {
  it('sends exactly the body to the upstream /v1/responses and the answer back unchanged, metered exactly', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const body = {
      model: 'gpt-5-mini',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello there [cached:4] [reasoning:6]' }] }],
      instructions: 'be brief',
      tools: [{ type: 'web_search' }],
      reasoning: { effort: 'low', summary: 'auto' },
      include: ['reasoning.encrypted_content'],
      store: false,
      metadata: { run: '1' },
    };
    const res = await post(key, body);
    expect(res.status).toBe(200);
    expect(lastUpstream().path).toBe('/v1/responses');
    expect(lastUpstream().headers.authorization).toBe('Bearer sk-operator-openai');
    expect(lastUpstream().body).toEqual(body);
    expect(res.json.output[0].content[0].text).toBe('w0 w1 w2 w3 w4 ');
    const reported = fakeUsage.at(-1)!;
    // 10 + 2 instruction words + 4 input words + 4 cached; 5 words + 6 reasoning tokens.
    expect(reported).toMatchObject({ input: 20, cached: 4, output: 11, reasoning: 6 });
    expect(res.json.usage).toMatchObject({ input_tokens: 20, output_tokens: 11, output_tokens_details: { reasoning_tokens: 6 } });
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    const cost = price('openai', 'gpt-5-mini', { inputTokens: 20, outputTokens: 11, cachedTokens: 4 });
    expect(log).toMatchObject({ endpoint: 'responses', provider: 'openai', model: 'gpt-5-mini', input_tokens: 20, cached_tokens: 4, output_tokens: 11, cost_nanos: cost, paid_by: 'credits', status: 200, streamed: false });
    expect(before - (await balanceOf(app, orgId))).toBe(BigInt(cost));
  });

  it('streams the upstream bytes unchanged and meters response.completed usage; refuses upstream errors', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const { raw, events } = await stream(key, { model: 'openai/gpt-4o-mini', input: 'stream it [chunks:3]' });
    expect(lastUpstream().body).toEqual({ model: 'gpt-4o-mini', input: 'stream it [chunks:3]', stream: true });
    expect(events.map((e) => e.event)).toEqual([
      'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
      'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
    ]);
    expect(raw).toContain('"delta":"w1 "');
    const failed = await post(key, { model: 'gpt-4o-mini', input: 'fail [status:429]' });
    expect(failed.status).toBe(429);
    // The upstream's retry-after reaches the client.
    expect(failed.headers.get('retry-after')).toBe('7');
    const failedStream = await post(key, { model: 'gpt-4o-mini', input: 'fail [status:429]', stream: true });
    expect([failedStream.status, failedStream.headers.get('retry-after')]).toEqual([429, '7']);
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.streamed, l.input_tokens, l.output_tokens, l.status, l.cost_nanos])).toEqual([
      [true, 13, 3, 200, price('openai', 'gpt-4o-mini', { inputTokens: 13, outputTokens: 3, cachedTokens: 0 })],
      [false, 0, 0, 429, '0'],
      [true, 0, 0, 429, '0'],
    ]);
    expect(logs[0]!.ttft_ms).not.toBeNull();
  });

  it('answers from the project cache, apart from chat completions', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner);
    await owner.client.project.update.mutate({ projectId, cachingEnabled: true });
    const body = { model: 'gpt-4o-mini', input: 'cache me' };
    const first = await post(key, body);
    const second = await post(key, body);
    expect([first.headers.get('x-gateway-cache'), second.headers.get('x-gateway-cache')]).toEqual(['miss', 'hit']);
    expect(second.json).toEqual(first.json);
    const chat = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ model: 'gpt-4o-mini', input: 'cache me', messages: [{ role: 'user', content: 'cache me' }] }) });
    expect(chat.headers.get('x-gateway-cache')).toBe('miss');
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => [l.cached, l.paid_by])).toEqual([[false, 'credits'], [true, 'cache'], [false, 'credits']]);
  });
});

describe('Anthropic models are translated', () => {
  it('translates a call with function tools both ways, and the function_call_output round trip', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const tools = [{ type: 'function', name: 'weather', description: 'the weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const res = await post(key, { model: SONNET, instructions: 'be brief', input: 'weather in Paris? [tool:weather]', tools, tool_choice: 'auto', max_output_tokens: 300, temperature: 0.5 });
    expect(res.status).toBe(200);
    const sent = lastUpstream();
    expect(sent.path).toBe('/v1/messages');
    expect(sent.body).toMatchObject({ model: 'claude-sonnet-4-5-20250929', max_tokens: 300, temperature: 0.5, tool_choice: { type: 'auto' }, messages: [{ role: 'user', content: [{ type: 'text', text: 'weather in Paris? [tool:weather]' }] }] });
    expect(JSON.stringify(sent.body.system)).toContain('be brief');
    expect(sent.body.tools).toMatchObject([{ name: 'weather', description: 'the weather', input_schema: tools[0]!.parameters }]);
    expect(res.json).toMatchObject({ object: 'response', status: 'completed', model: SONNET });
    expect(res.json.id).toMatch(/^resp_/);
    const call = res.json.output.find((o: any) => o.type === 'function_call');
    expect(call).toMatchObject({ call_id: 'toolu_fake1', name: 'weather', arguments: '{"city":"Paris"}' });
    const reported = fakeUsage.at(-1)!;
    expect(res.json.usage).toMatchObject({ input_tokens: reported.input, output_tokens: reported.output });

    const round = await post(key, {
      model: SONNET,
      input: [
        { role: 'user', content: 'weather in Paris? [tool:weather]' },
        { type: 'function_call', call_id: call.call_id, name: 'weather', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' },
      ],
      tools,
    });
    expect(round.status).toBe(200);
    expect(lastUpstream().body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'weather in Paris? [tool:weather]' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_fake1', name: 'weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_fake1', content: 'sunny, 21 C' }] },
    ]);
    expect(round.json.output).toMatchObject([{ type: 'message', content: [{ type: 'output_text', text: 'w0 w1 w2 w3 w4 ' }] }]);
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs[0]).toMatchObject({ endpoint: 'responses', provider: 'anthropic', input_tokens: reported.input, output_tokens: reported.output, status: 200 });
    expect(logs[0]!.cost_nanos).toBe(price('anthropic', 'claude-sonnet-4-5-20250929', { inputTokens: reported.input, outputTokens: reported.output, cachedTokens: 0 }));
    expect(logs[1]).toMatchObject({ input_tokens: round.json.usage.input_tokens, output_tokens: 5 });
  });

  it('translates text.format json_schema (structured output) and reasoning effort', async () => {
    const { key } = await gatewaySetup(app, owner);
    const schema = { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'], additionalProperties: false };
    const res = await post(key, { model: SONNET, input: 'plan a trip', text: { format: { type: 'json_schema', name: 'trip', schema, strict: true } } });
    expect(res.status).toBe(200);
    expect(lastUpstream().body.tool_choice).toMatchObject({ type: 'tool' });
    expect(JSON.parse(res.json.output[0].content[0].text)).toEqual({ city: 'Paris', days: 3 });
    const thinking = await post(key, { model: SONNET, input: 'think', reasoning: { effort: 'low' }, max_output_tokens: 4000 });
    expect(thinking.status).toBe(200);
    expect(lastUpstream().body.thinking).toMatchObject({ type: 'enabled' });
  });

  it('refuses built-in tools and untranslatable fields with a 400 naming them, before any upstream call', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const calls = upstream.requests.length;
    for (const [extra, name] of [
      [{ tools: [{ type: 'web_search' }] }, 'web_search'],
      [{ tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'file_search'],
      [{ tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] }, 'code_interpreter'],
      [{ background: true }, 'background'],
    ] as [Record<string, unknown>, string][]) {
      const res = await post(key, { model: SONNET, input: 'hi', ...extra });
      expect(res.status).toBe(400);
      expect(res.json.error.message).toContain(name);
      expect(res.json.error.message).toContain('claude-sonnet-4-5');
    }
    expect(upstream.requests.length).toBe(calls);
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => [l.status, l.cost_nanos])).toEqual(Array.from({ length: 4 }, () => [400, '0']));
  });

  it('streams Responses events in order with sequence numbers, usage from the fake', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const tools = [{ type: 'function', name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
    const { events } = await stream(key, { model: SONNET, input: 'weather? [tool:weather]', tools });
    expect(events.map((e) => e.event)).toEqual([
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      'response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
      'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
    ]);
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    const done = events.at(-1)!.data.response;
    const reported = fakeUsage.at(-1)!;
    expect(done.usage).toMatchObject({ input_tokens: reported.input, output_tokens: reported.output });
    expect(done.output[1]).toMatchObject({ type: 'function_call', name: 'weather', arguments: '{"city":"Paris"}' });

    const text = await stream(key, { model: SONNET, input: 'plain stream [chunks:4]' });
    const deltas = text.events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta);
    expect(deltas.join('')).toBe('w0 w1 w2 w3 ');
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    expect(logs.map((l) => [l.streamed, l.input_tokens, l.output_tokens, l.status])).toEqual([
      [true, reported.input, reported.output, 200],
      [true, text.events.at(-1)!.data.response.usage.input_tokens, 4, 200],
    ]);
  });
});

describe('other OpenAI-compatible providers are translated too', () => {
  it('sends a Google model chat completions, answers a Response, streaming and not', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const res = await post(key, { model: 'google/gemini-2.5-flash', instructions: 'short', input: 'hi there', text: { format: { type: 'json_object' } }, reasoning: { effort: 'low' } });
    expect(res.status).toBe(200);
    expect(lastUpstream().path).toBe('/v1/chat/completions');
    expect(lastUpstream().body).toEqual({ model: 'gemini-2.5-flash', messages: [{ role: 'system', content: 'short' }, { role: 'user', content: 'hi there' }], response_format: { type: 'json_object' }, reasoning_effort: 'low' });
    expect(res.json.output[0].content[0].text).toBe('{"answer":"Paris"}');
    const { events } = await stream(key, { model: 'google/gemini-2.5-flash', input: 'stream [chunks:2]' });
    expect(lastUpstream().body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(events.at(-1)!.data.response.usage).toMatchObject({ input_tokens: 12, output_tokens: 2 });
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => [l.provider, l.input_tokens, l.output_tokens])).toEqual([
      ['google', fakeUsage.at(-1)!.input, 9],
      ['google', 12, 2],
    ]);
  });
});

describe('canceled streams', () => {
  for (const [name, model] of [['an OpenAI model (passthrough)', 'gpt-4o-mini'], ['an Anthropic model (translated)', SONNET]] as const) {
    it(`logs a stream the client leaves as canceled, charged for what was delivered: ${name}`, async () => {
      const { orgId, key } = await gatewaySetup(app, owner);
      const controller = new AbortController();
      const res = await fetch(`${app.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model, input: 'long answer [chunks:40] [slow:50]', stream: true }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      let seen = '';
      while (!seen.includes('output_text.delta')) seen += new TextDecoder().decode((await reader.read()).value);
      controller.abort();
      await expect.poll(async () => { await flushUsage(app); return (await logsOf(app, orgId)).length; }, { timeout: 10_000 }).toBe(1);
      const [log] = await logsOf(app, orgId);
      expect(log).toMatchObject({ canceled: true, streamed: true, paid_by: 'credits' });
      expect(log!.output_tokens).toBeGreaterThan(0);
      expect(log!.output_tokens).toBeLessThan(40);
      expect(BigInt(log!.cost_nanos)).toBeGreaterThan(0n);
    });
  }
});

describe('previous_response_id and GET /v1/responses/{id}', () => {
  it('refuses previous_response_id for a translated model unless the organization retains bodies, then rebuilds the conversation', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const first = await post(key, { model: SONNET, input: 'my name is Ada' });
    expect(first.status).toBe(200);
    expect(first.json.store).toBe(false);
    const refused = await post(key, { model: SONNET, input: 'what is my name?', previous_response_id: first.json.id });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('retention level');
    expect((await fetch(`${app.url}/v1/responses/${first.json.id}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);

    await setRetention(orgId, 'retain');
    const kept = await post(key, { model: SONNET, instructions: 'answer briefly', input: 'my name is Ada' });
    expect(kept.json.store).toBe(true);
    const next = await post(key, { model: SONNET, input: 'what is my name?', previous_response_id: kept.json.id });
    expect(next.status).toBe(200);
    expect(lastUpstream().body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'my name is Ada' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'w0 w1 w2 w3 w4 ' }] },
      { role: 'user', content: [{ type: 'text', text: 'what is my name?' }] },
    ]);
    // Instructions are not carried over (as OpenAI does): only the items.
    expect(lastUpstream().body.system).toBeUndefined();
    const third = await stream(key, { model: SONNET, input: 'and again?', previous_response_id: next.json.id });
    expect(lastUpstream().body.messages).toHaveLength(5);
    const streamedId = third.events.at(-1)!.data.response.id;

    const got = await fetch(`${app.url}/v1/responses/${streamedId}`, { headers: { authorization: `Bearer ${key}` } });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(third.events.at(-1)!.data.response);
    const other = await gatewaySetup(app, owner);
    expect((await fetch(`${app.url}/v1/responses/${streamedId}`, { headers: { authorization: `Bearer ${other.key}` } })).status).toBe(404);
    const unknown = await post(key, { model: SONNET, input: 'x', previous_response_id: 'resp_nope' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.code).toBe('previous_response_not_found');

    // Retention back to none: no more lookups, and the retention job clears what was stored.
    await setRetention(orgId, 'none');
    expect((await post(key, { model: SONNET, input: 'x', previous_response_id: next.json.id })).status).toBe(400);
    expect((await fetch(`${app.url}/v1/responses/${streamedId}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    const result = await purgeExpiredLogs(app.orm.em.fork());
    expect(result.storedResponses).toBeGreaterThanOrEqual(3);
    expect(await sql(app, 'select id from stored_response where org_id = ?', [orgId])).toEqual([]);
  });

  it('resolves item_reference inputs from stored responses, and refuses them with a reason without retention', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const tools = [{ type: 'function', name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
    const first = await post(key, { model: SONNET, input: 'weather? [tool:weather]', tools });
    const call = first.json.output.find((o: any) => o.type === 'function_call');
    const input = [{ role: 'user', content: 'weather? [tool:weather]' }, { type: 'item_reference', id: call.id }, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }];
    const refused = await post(key, { model: SONNET, input, tools });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('item_reference');
    expect(refused.json.error.message).toContain('retention level');

    await setRetention(orgId, 'retain');
    const stored = await post(key, { model: SONNET, input: 'weather? [tool:weather]', tools });
    const storedCall = stored.json.output.find((o: any) => o.type === 'function_call');
    const resolved = await post(key, { model: SONNET, input: [input[0], { type: 'item_reference', id: storedCall.id }, { ...input[2], call_id: storedCall.call_id }], tools });
    expect(resolved.status).toBe(200);
    expect(lastUpstream().body.messages).toMatchObject([{ role: 'user' }, { role: 'assistant', content: [{ type: 'tool_use', name: 'weather', input: { city: 'Paris' } }] }, { role: 'user', content: [{ type: 'tool_result', content: 'sunny' }] }]);
  });

  it('passes previous_response_id through for OpenAI models', async () => {
    const { key } = await gatewaySetup(app, owner);
    const res = await post(key, { model: 'gpt-4o-mini', input: 'next', previous_response_id: 'resp_at_openai' });
    expect(res.status).toBe(200);
    expect(lastUpstream().body).toEqual({ model: 'gpt-4o-mini', input: 'next', previous_response_id: 'resp_at_openai' });
  });
});
