/**
 * Chat completions to an Anthropic model, through the real `openai` client: what the fake Anthropic
 * receives for tools and tool results, parallel tool calls, structured output (zod through
 * `chat.completions.parse`), images, PDFs, cache_control, reasoning effort, streaming; the
 * request log against the tokens the fake reported; and the 400s for what Anthropic cannot do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import '../helpers/fake-anthropic.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, openai, type Owner } from '../helpers/gateway.js';
import { costNanos, findModel } from '../../shared/models.js';
import { RESPONSE_FORMAT_TOOL } from '../../server/modules/gateway/upstream/anthropic.js';

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

const MODEL = 'anthropic/claude-sonnet-4-5';
const lastUpstream = () => upstream.requests[upstream.requests.length - 1]!;
const weather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('chat completions -> Anthropic, faithfully', () => {
  it('tools, tool results and parallel_tool_calls: false reach Anthropic as tool_use / tool_result / disable_parallel_tool_use', async () => {
    const { key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const first = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris? [tool:weather]' }], tools: [weather], parallel_tool_calls: false });
    const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function).toEqual({ name: 'weather', arguments: '{"city":"Paris"}' });
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(lastUpstream().body).toMatchObject({
      tools: [{ name: 'weather', description: 'Current weather', input_schema: weather.function.parameters }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      // No silent 4096: the catalog's output limit for the model.
      max_tokens: 64_000,
    });

    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather in Paris?' }, first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '18°C and sunny' }],
      tools: [weather],
    });
    expect(lastUpstream().body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_fake1', name: 'weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_fake1', content: '18°C and sunny' }] },
    ]);
  });

  it('structured output with zod (chat.completions.parse): a forced tool with the schema, the answer parsed from the content', async () => {
    const { key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const Place = z.object({ city: z.string() });
    const parsed = await client.chat.completions.parse({ model: MODEL, messages: [{ role: 'user', content: 'Where? [tool:gateway_json_response]' }], response_format: zodResponseFormat(Place, 'place') });
    expect(parsed.choices[0]!.message.parsed).toEqual({ city: 'Paris' });
    expect(parsed.choices[0]!.message.tool_calls ?? []).toEqual([]);
    expect(parsed.choices[0]!.finish_reason).toBe('stop');
    const sent = lastUpstream().body as { tools: { name: string; input_schema: { properties: object } }[]; tool_choice: unknown };
    expect(sent.tools).toHaveLength(1);
    expect(sent.tools[0]!.name).toBe(RESPONSE_FORMAT_TOOL);
    expect(sent.tools[0]!.input_schema).toMatchObject({ type: 'object', properties: { city: { type: 'string' } } });
    expect(sent.tool_choice).toEqual({ type: 'tool', name: RESPONSE_FORMAT_TOOL });

    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'json please [tool:gateway_json_response]' }], response_format: { type: 'json_object' } });
    expect(lastUpstream().body).toMatchObject({ tools: [{ name: RESPONSE_FORMAT_TOOL, input_schema: { type: 'object' } }], tool_choice: { type: 'tool', name: RESPONSE_FORMAT_TOOL } });
  });

  it('images, PDFs and cache_control reach Anthropic as image / document blocks with their breakpoints; cache reads and writes metered exactly', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const ephemeral = { type: 'ephemeral' as const };
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You read documents.', cache_control: ephemeral } as OpenAI.ChatCompletionContentPartText] },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these [cached:100] [cachewrite:20]' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0xLjQ=', filename: 'report.pdf' }, cache_control: ephemeral } as OpenAI.ChatCompletionContentPart,
          ],
        },
      ],
    });
    expect(completion.choices[0]!.message.content).toBe('w0 w1 w2 w3 w4 ');
    const body = lastUpstream().body as { system: unknown; messages: { content: unknown[] }[] };
    expect(body.system).toEqual([{ type: 'text', text: 'You read documents.', cache_control: ephemeral }]);
    expect(body.messages[0]!.content).toEqual([
      { type: 'text', text: 'Compare these [cached:100] [cachewrite:20]' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQ=' }, title: 'report.pdf', cache_control: ephemeral },
    ]);
    // The fake: 10 + 7 words (system and user) + 100 cached + 20 written = 137 prompt tokens, 5 output.
    expect(completion.usage).toMatchObject({ prompt_tokens: 137, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 100, cache_write_tokens: 20 } });
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    const usage = { inputTokens: 137, outputTokens: 5, cachedTokens: 100, cacheWriteTokens: 20 };
    expect(log).toMatchObject({ provider: 'anthropic', input_tokens: 137, output_tokens: 5, cached_tokens: 100, cache_write_tokens: 20, cost_nanos: String(costNanos(findModel('anthropic', 'claude-sonnet-4-5')!.nanosPerMTok, usage)) });
  });

  it('streams tool calls and extended thinking (reasoning_effort) with reasoning_content, metered as the fake reported', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Think then look it up [thinking] [tool:lookup]' }], tools: [weather], reasoning_effort: 'low', stream: true, stream_options: { include_usage: true } });
    let reasoning = '';
    let text = '';
    let args = '';
    let name = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as (OpenAI.ChatCompletionChunk.Choice.Delta & { reasoning_content?: string }) | undefined;
      reasoning += delta?.reasoning_content ?? '';
      text += delta?.content ?? '';
      for (const t of delta?.tool_calls ?? []) {
        name += t.function?.name ?? '';
        args += t.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect([reasoning, text, name, args, finish]).toEqual(['Let me think.', 'Let me check.', 'lookup', '{"city":"Paris"}', 'tool_calls']);
    expect(lastUpstream().body).toMatchObject({ stream: true, thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 64_000 });
    expect(lastUpstream().body).not.toHaveProperty('temperature');
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    expect(log).toMatchObject({ streamed: true, input_tokens: usage!.prompt_tokens, output_tokens: 7, status: 200 });
  });

  it('refuses what Anthropic cannot do with a 400 naming the parameter and the model, before any upstream call', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = openai(app, key, { maxRetries: 0 });
    const before = upstream.requests.length;
    const cases: [Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>, string][] = [
      [{ n: 2 }, 'n is not supported'],
      [{ temperature: 1.5 }, 'temperature 1.5'],
      [{ logprobs: true, top_logprobs: 2 }, 'logprobs'],
      [{ seed: 42 }, 'seed'],
      [{ frequency_penalty: 0.4 }, 'frequency_penalty'],
      [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }] }] }, 'audio'],
    ];
    for (const [extra, message] of cases) {
      const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming).catch((e: unknown) => e);
      expect(err, message).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as Error).message, message).toContain(message);
      expect((err as Error).message, message).toContain('claude-sonnet-4-5');
    }
    expect(upstream.requests.length).toBe(before);
    await flushUsage(app);
    expect((await logsOf(app, orgId)).map((l) => [l.status, l.cost_nanos])).toEqual(cases.map(() => [400, '0']));
  });
});
