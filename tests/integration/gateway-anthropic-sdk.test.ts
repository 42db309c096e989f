/**
 * The gateway through the official `@anthropic-ai/sdk` (unchanged but for baseURL and key): a
 * Claude model (native passthrough) and an OpenAI model (translated), messages.create, a stream
 * with tools (text and input_json deltas, the final message), countTokens, typed errors; the
 * request log holds exactly the tokens the fakes reported.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import '../helpers/fake-anthropic.js';
import { fakeUpstreamEnv, promptTokensOf, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, type Owner } from '../helpers/gateway.js';
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
const sdk = (key: string, opts: { bearer?: boolean } = {}) =>
  new Anthropic({ baseURL: app.url, ...(opts.bearer ? { authToken: key, apiKey: null } : { apiKey: key }), maxRetries: 0 });

const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

describe.each([
  { label: 'a Claude model (native)', model: 'claude-haiku-4-5', provider: 'anthropic' as const, logged: 'claude-haiku-4-5-20251001', tool: '[tool:get_weather]' },
  { label: 'an OpenAI model (translated)', model: 'openai/gpt-4o-mini', provider: 'openai' as const, logged: 'gpt-4o-mini', tool: '[oai-tool:get_weather]' },
])('@anthropic-ai/sdk with $label', ({ model, provider, logged, tool }) => {
  it('messages.create, a stream with tools, countTokens; metered exactly', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const client = sdk(key, { bearer: provider === 'openai' });

    const message = await client.messages.create({ model, max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'hello there [chunks:4]' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'w0 w1 w2 w3 ' }]);
    expect(message.stop_reason).toBe('end_turn');
    const firstSent = lastUpstream();
    // Anthropic: system is passed as sent; OpenAI: a system message.
    const firstPrompt = provider === 'anthropic' ? promptTokensOf(firstSent.body.messages as never[], firstSent.body.system) : promptTokensOf(firstSent.body.messages as never[]);
    expect(message.usage.input_tokens).toBe(firstPrompt);
    expect(message.usage.output_tokens).toBe(4);

    const stream = client.messages.stream({ model, max_tokens: 200, tools, messages: [{ role: 'user', content: `weather in Paris? ${tool}` }] });
    let text = '';
    let json = '';
    stream.on('text', (delta) => (text += delta));
    stream.on('inputJson', (delta) => (json += delta));
    const final = await stream.finalMessage();
    const streamSent = lastUpstream();
    expect(text).toBe('Let me check.');
    expect(json).toBe('{"city":"Paris"}');
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: provider === 'anthropic' ? 'toolu_fake1' : 'call_fake1', name: 'get_weather', input: { city: 'Paris' } },
    ]);
    const streamPrompt = promptTokensOf(streamSent.body.messages as never[], streamSent.body.system);
    const streamOutput = provider === 'anthropic' ? 7 : 9;
    expect(final.usage).toMatchObject({ input_tokens: streamPrompt, output_tokens: streamOutput });
    if (provider === 'openai') {
      expect(streamSent.body.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: tools[0]!.input_schema } }]);
    } else {
      expect(streamSent.body.tools).toEqual(tools);
    }

    // The tool's result goes back; the model answers.
    const followUp = await client.messages.create({
      model,
      max_tokens: 64,
      tools,
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: final.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: (final.content[1] as Anthropic.ToolUseBlock).id, content: 'sunny, 21°C' }] },
      ],
    });
    expect(followUp.content[0]).toMatchObject({ type: 'text' });
    const followSent = lastUpstream();
    if (provider === 'openai') {
      expect((followSent.body.messages as unknown[]).slice(-1)).toEqual([{ role: 'tool', tool_call_id: 'call_fake1', content: 'sunny, 21°C' }]);
    }
    const followPrompt = promptTokensOf(followSent.body.messages as never[], followSent.body.system);

    const count = await client.messages.countTokens({ model, system: 'Be brief.', messages: [{ role: 'user', content: 'count these words please' }] });
    expect(count.input_tokens).toBeGreaterThan(0);
    if (provider === 'anthropic') expect(count.input_tokens).toBe(promptTokensOf([{ content: 'count these words please' }], 'Be brief.'));

    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const entry = findModel(provider, logged)!;
    const usages = [
      { inputTokens: firstPrompt, outputTokens: 4, cachedTokens: 0 },
      { inputTokens: streamPrompt, outputTokens: streamOutput, cachedTokens: 0 },
      { inputTokens: followPrompt, outputTokens: 5, cachedTokens: 0 },
    ];
    expect(logs.map((l) => [l.provider, l.model, l.streamed, l.input_tokens, l.output_tokens, l.cost_nanos, l.paid_by])).toEqual(
      usages.map((u, i) => [provider, logged, i === 1, u.inputTokens, u.outputTokens, costNanos(entry.nanosPerMTok, u).toString(), 'credits']),
    );
  });
});

describe('@anthropic-ai/sdk errors', () => {
  it('raises the typed errors the SDK knows from the gateway’s Anthropic-shaped answers', async () => {
    const { key } = await gatewaySetup(app, owner);
    const bad = await sdk('sk-gw-nope').messages.create({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(Anthropic.AuthenticationError);
    const missing = await sdk(key).messages.create({ model: 'claude-nonexistent', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect((missing as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    const refused = await sdk(key).messages.create({ model: 'gpt-4o-mini', max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as Error).message).toContain('thinking is not supported for gpt-4o-mini');
    // Mid-stream: the error event is raised by the stream.
    const midStream = await sdk(key).messages.stream({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x [fail-mid]' }] }).finalMessage().catch((e: unknown) => e);
    expect(midStream).toBeInstanceOf(Anthropic.APIError);
    expect((midStream as Error).message).toContain('fake overload');
  });
});
