/**
 * The Vercel AI SDK (`ai` + `@ai-sdk/openai`, unchanged but for baseURL and key) against the
 * gateway: the default `openai(id)` (the Responses API) and `openai.chat(id)` (chat completions),
 * generateText, streamText, a tool call, generateObject with a zod schema, for an OpenAI model and
 * an Anthropic model; the request log matches the tokens the fakes reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateObject, generateText, streamText, tool, type LanguageModel } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import { fakeUsage } from '../helpers/fake-responses.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, type Owner } from '../helpers/gateway.js';

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

const cases: { name: string; model: string; upstreamPath: string; api: 'responses' | 'chat' }[] = [
  { name: 'an OpenAI model through openai(id) (Responses API)', model: 'gpt-4o-mini', upstreamPath: '/v1/responses', api: 'responses' },
  { name: 'an Anthropic model through openai(id) (Responses API, translated)', model: 'anthropic/claude-sonnet-4-5', upstreamPath: '/v1/messages', api: 'responses' },
  { name: 'an OpenAI model through openai.chat(id)', model: 'gpt-4o-mini', upstreamPath: '/v1/chat/completions', api: 'chat' },
  { name: 'an Anthropic model through openai.chat(id)', model: 'anthropic/claude-sonnet-4-5', upstreamPath: '/v1/messages', api: 'chat' },
];

describe.each(cases)('the AI SDK with $name', ({ model, upstreamPath, api }) => {
  let setup: Awaited<ReturnType<typeof gatewaySetup>>;
  let llm: LanguageModel;
  const modelFor = (key: string) => {
    const provider = createOpenAI({ baseURL: `${app.url}/v1`, apiKey: key });
    return api === 'responses' ? provider(model) : provider.chat(model);
  };
  beforeAll(async () => {
    setup = await gatewaySetup(app, owner);
    // The AI SDK's default (store: true) refers to earlier output items by id: the gateway keeps
    // translated responses for that while the organization retains bodies.
    const org = await owner.client.organization.get.query({ orgId: setup.orgId });
    await owner.client.organization.update.mutate({ orgId: setup.orgId, version: org.version, retentionLevel: 'retain' });
    llm = modelFor(setup.key);
  });

  it('generateText and streamText, metered as the fake reported', async () => {
    const reportedBefore = fakeUsage.length;
    const { text, usage } = await generateText({ model: llm, prompt: 'hello there' });
    expect(text).toBe('w0 w1 w2 w3 w4 ');
    expect(lastUpstream().path).toBe(upstreamPath);
    const streamed = streamText({ model: llm, prompt: 'stream please [chunks:3]' });
    let out = '';
    for await (const delta of streamed.textStream) out += delta;
    expect(out).toBe('w0 w1 w2 ');
    const streamedUsage = await streamed.usage;
    await flushUsage(app);
    const logs = (await logsOf(app, setup.orgId)).slice(-2);
    const endpoint = api === 'responses' ? 'responses' : 'chat.completions';
    expect(logs.map((l) => [(l as unknown as { endpoint: string }).endpoint, l.streamed, l.status, l.input_tokens, l.output_tokens])).toEqual([
      [endpoint, false, 200, usage.inputTokens, 5],
      [endpoint, true, 200, streamedUsage.inputTokens, 3],
    ]);
    // The built-in fake answers (no fakeUsage entry for plain text): prompt 10 + words.
    if (upstreamPath !== '/v1/responses') expect(fakeUsage.length).toBe(reportedBefore);
    else expect(fakeUsage.slice(reportedBefore).map((u) => [u.input, u.output])).toEqual(logs.map((l) => [l.input_tokens, l.output_tokens]));
  });

  it('calls a tool and sends its result back', async () => {
    const seen: string[] = [];
    const result = await generateText({
      model: llm,
      prompt: 'weather in Paris? [tool:weather]',
      tools: {
        weather: tool({
          description: 'the weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            seen.push(city);
            return `sunny in ${city}`;
          },
        }),
      },
      stopWhen: ({ steps }) => steps.length >= 2,
    });
    expect(seen).toEqual(['Paris']);
    expect(result.steps[0]!.toolCalls[0]).toMatchObject({ toolName: 'weather', input: { city: 'Paris' } });
    expect(result.text).toBe('w0 w1 w2 w3 w4 ');
    // The second call carried the tool's result to the upstream.
    expect(JSON.stringify(lastUpstream().body)).toContain('sunny in Paris');
  });

  it('runs the tool loop with store: false (every item sent again) without retention', async () => {
    const other = await gatewaySetup(app, owner);
    const result = await generateText({
      model: modelFor(other.key),
      prompt: 'weather in Paris? [tool:weather]',
      tools: { weather: tool({ inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => `rainy in ${city}` }) },
      stopWhen: ({ steps }) => steps.length >= 2,
      providerOptions: { openai: { store: false } },
    });
    expect(result.text).toBe('w0 w1 w2 w3 w4 ');
    expect(JSON.stringify(lastUpstream().body)).toContain('rainy in Paris');
  });

  it('generateObject with a zod schema', async () => {
    const { object } = await generateObject({ model: llm, schema: z.object({ city: z.string(), days: z.number().int() }), prompt: 'plan a trip' });
    expect(object).toEqual({ city: 'Paris', days: 3 });
  });
});
