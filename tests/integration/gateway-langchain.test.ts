/**
 * LangChain's ChatOpenAI (`@langchain/openai`, unchanged but for configuration.baseURL and the key)
 * against the gateway, chat completions and `useResponsesApi: true`, for an OpenAI model and an
 * Anthropic model: plain, streaming, tools through bindTools, withStructuredOutput; the request log
 * shows each call on its endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';
import '../helpers/fake-responses.js';
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
/** A message's text: a string (chat completions) or text blocks (the Responses API). */
const textOf = (content: unknown): string =>
  typeof content === 'string' ? content : Array.isArray(content) ? content.map((c: { text?: unknown }) => (typeof c.text === 'string' ? c.text : '')).join('') : '';

const cases = [
  { name: 'an OpenAI model, chat completions', model: 'gpt-4o-mini', responses: false, upstreamPath: '/v1/chat/completions' },
  { name: 'an OpenAI model, useResponsesApi', model: 'gpt-4o-mini', responses: true, upstreamPath: '/v1/responses' },
  { name: 'an Anthropic model, chat completions', model: 'anthropic/claude-sonnet-4-5', responses: false, upstreamPath: '/v1/messages' },
  { name: 'an Anthropic model, useResponsesApi', model: 'anthropic/claude-sonnet-4-5', responses: true, upstreamPath: '/v1/messages' },
];

describe.each(cases)('ChatOpenAI with $name', ({ model, responses, upstreamPath }) => {
  let setup: Awaited<ReturnType<typeof gatewaySetup>>;
  let llm: ChatOpenAI;
  beforeAll(async () => {
    setup = await gatewaySetup(app, owner);
    llm = new ChatOpenAI({ model, apiKey: setup.key, configuration: { baseURL: `${app.url}/v1` }, useResponsesApi: responses, maxRetries: 0 });
  });

  it('answers plainly and streaming, logged on its endpoint', async () => {
    const answer = await llm.invoke('hello there');
    expect(textOf(answer.content)).toBe('w0 w1 w2 w3 w4 ');
    expect(lastUpstream().path).toBe(upstreamPath);
    let text = '';
    for await (const chunk of await llm.stream('stream please [chunks:3]')) text += textOf(chunk.content);
    expect(text).toBe('w0 w1 w2 ');
    await flushUsage(app);
    const logs = await logsOf(app, setup.orgId);
    expect(logs.map((l) => [(l as unknown as { endpoint: string }).endpoint, l.streamed, l.status, l.output_tokens])).toEqual([
      [responses ? 'responses' : 'chat.completions', false, 200, 5],
      [responses ? 'responses' : 'chat.completions', true, 200, 3],
    ]);
    expect(answer.usage_metadata).toMatchObject({ input_tokens: logs[0]!.input_tokens, output_tokens: 5 });
  });

  it('calls a tool bound with bindTools', async () => {
    const withTools = llm.bindTools([{ type: 'function', function: { name: 'weather', description: 'the weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]);
    const msg = await withTools.invoke('weather in Paris? [tool:weather]');
    expect(msg.tool_calls).toMatchObject([{ name: 'weather', args: { city: 'Paris' } }]);
  });

  it('returns structured output (withStructuredOutput and a zod schema)', async () => {
    const structured = llm.withStructuredOutput(z.object({ city: z.string(), days: z.number() }));
    expect(await structured.invoke('plan a trip')).toEqual({ city: 'Paris', days: 3 });
  });
});
