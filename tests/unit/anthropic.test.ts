/**
 * The Anthropic adapter both ways, without a network: OpenAI chat requests become Messages API
 * requests; Messages responses and stream events become OpenAI completions and chunks.
 */
import { describe, expect, it } from 'vitest';
import { anthropicAdapter, AnthropicStreamTranslator, fromAnthropicResponse, toAnthropicRequest } from '../../server/modules/gateway/upstream/anthropic.js';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import { PARTIAL_USAGE, type ChatRequest } from '../../server/modules/gateway/upstream/types.js';

const req = (extra: Partial<ChatRequest> & { messages: ChatRequest['messages'] }): ChatRequest => ({ model: 'anthropic/claude', ...extra });

describe('OpenAI request → Anthropic request', () => {
  it('moves system and developer messages into `system`, joined by a blank line, and keeps turns in order', () => {
    const out = toAnthropicRequest(
      req({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Answer in ' }, { type: 'text', text: 'French.' }] },
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: 'Bonjour' },
          { role: 'user', content: 'Again' },
        ],
      }),
      'claude-sonnet-4-5',
      false,
      null,
    );
    expect(out).toEqual({
      model: 'claude-sonnet-4-5',
      system: 'Be brief.\n\nAnswer in French.',
      max_tokens: 4096,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Hello' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Bonjour' }] },
        { role: 'user', content: [{ type: 'text', text: 'Again' }] },
      ],
    });
    expect(out).not.toHaveProperty('stream');
  });

  it('merges consecutive turns of the same role (Anthropic requires alternation)', () => {
    const out = toAnthropicRequest(req({ messages: [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }] }), 'm', false, null);
    expect(out.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }]);
  });

  it('maps images: data URLs to base64 sources, other URLs to url sources (string or object form)', () => {
    const out = toAnthropicRequest(
      req({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: 'https://example.com/cat.jpg' },
              { type: 'input_audio', input_audio: {} },
            ],
          },
        ],
      }),
      'm',
      false,
      null,
    );
    expect(out.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('maps tools, tool choice, assistant tool calls (arguments parsed) and tool results (as user turns)', () => {
    const out = toAnthropicRequest(
      req({
        messages: [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
              { id: 'call_2', type: 'function', function: { name: 'weather', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '18°C' },
          { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '21°C' }] },
        ],
        tools: [
          { type: 'function', function: { name: 'weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
          { type: 'function', function: { name: 'noargs' } },
          { type: 'code_interpreter' },
        ],
        tool_choice: { type: 'function', function: { name: 'weather' } },
      }),
      'm',
      false,
      null,
    );
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'call_2', name: 'weather', input: {} },
        ],
      },
      // Both results land in one user turn.
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '18°C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: '21°C' },
        ],
      },
    ]);
    expect(out.tools).toEqual([
      { name: 'weather', description: 'Current weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
      { name: 'noargs', description: undefined, input_schema: { type: 'object', properties: {} } },
    ]);
    expect(out.tool_choice).toEqual({ type: 'tool', name: 'weather' });
  });

  it('maps each tool_choice string', () => {
    const choice = (tool_choice: unknown) => toAnthropicRequest(req({ messages: [{ role: 'user', content: 'x' }], tool_choice }), 'm', false, null).tool_choice;
    expect(choice('auto')).toEqual({ type: 'auto' });
    expect(choice('required')).toEqual({ type: 'any' });
    expect(choice('none')).toEqual({ type: 'none' });
    expect(choice(undefined)).toBeUndefined();
  });

  it('refuses tool call arguments that are not JSON, and unknown roles, as the client’s mistake (400)', () => {
    const badArgs = () =>
      toAnthropicRequest(req({ messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{oops' } }] }] }), 'm', false, null);
    expect(badArgs).toThrow(GatewayError);
    expect(badArgs).toThrow(/arguments must be a JSON object/);
    try {
      toAnthropicRequest(req({ messages: [{ role: 'function', content: 'x' }] }), 'm', false, null);
      expect.unreachable();
    } catch (err) {
      expect((err as GatewayError).status).toBe(400);
      expect((err as GatewayError).message).toContain('"function"');
    }
  });

  it('maps stop (string or list), temperature (clamped to 0..1), top_p, user, stream', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    const one = toAnthropicRequest(req({ ...base, stop: 'END', temperature: 1.7, top_p: 0.9, user: 'u-42' }), 'm', true, null);
    expect(one).toMatchObject({ stop_sequences: ['END'], temperature: 1, top_p: 0.9, metadata: { user_id: 'u-42' }, stream: true });
    const two = toAnthropicRequest(req({ ...base, stop: ['a', 'b'], temperature: -0.5 }), 'm', false, null);
    expect(two).toMatchObject({ stop_sequences: ['a', 'b'], temperature: 0 });
    expect(two).not.toHaveProperty('metadata');
    expect(toAnthropicRequest(req({ ...base, temperature: 0.3 }), 'm', false, null).temperature).toBe(0.3);
  });

  it('takes max_completion_tokens, else max_tokens, else the smaller of the model’s output limit and 4096', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    const max = (extra: Record<string, unknown>, modelMax: number | null) => toAnthropicRequest(req({ ...base, ...extra }), 'm', false, modelMax).max_tokens;
    expect(max({ max_completion_tokens: 100, max_tokens: 200 }, 8192)).toBe(100);
    expect(max({ max_tokens: 200 }, 8192)).toBe(200);
    expect(max({ max_tokens: 12.9 }, null)).toBe(12);
    expect(max({}, 8192)).toBe(4096);
    expect(max({}, 1024)).toBe(1024);
    expect(max({}, null)).toBe(4096);
    // Nonsense values fall through to the default rather than reaching Anthropic.
    expect(max({ max_tokens: -5 }, 2000)).toBe(2000);
    expect(max({ max_tokens: 'lots' }, null)).toBe(4096);
  });
});

describe('Anthropic response → OpenAI completion', () => {
  it('joins text blocks, maps the stop reason and counts cached and cache-written prompt tokens as prompt tokens', () => {
    const { completion, usage } = fromAnthropicResponse({
      id: 'msg_01',
      model: 'claude-sonnet-4-5',
      content: [
        { type: 'text', text: 'Hello, ' },
        { type: 'text', text: 'world' },
      ],
      stop_reason: 'max_tokens',
      usage: { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
    });
    // 10 fresh + 100 read + 20 written = 130 prompt tokens, of which 100 cached.
    expect(usage).toEqual({ inputTokens: 130, outputTokens: 7, cachedTokens: 100, cacheWriteTokens: 20 });
    expect(completion).toMatchObject({
      id: 'chatcmpl-msg_01',
      object: 'chat.completion',
      model: 'claude-sonnet-4-5',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello, world', refusal: null }, logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 130, completion_tokens: 7, total_tokens: 137, prompt_tokens_details: { cached_tokens: 100, cache_write_tokens: 20 } },
    });
    expect((completion.choices as { message: object }[])[0]!.message).not.toHaveProperty('tool_calls');
  });

  it('maps tool_use blocks to tool_calls with JSON arguments and a null content', () => {
    const { completion, usage } = fromAnthropicResponse({
      id: 'msg_02',
      content: [{ type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } }],
      stop_reason: 'tool_use',
      usage: { input_tokens: 5, output_tokens: 3 },
    });
    expect(usage).toEqual({ inputTokens: 5, outputTokens: 3, cachedTokens: 0, cacheWriteTokens: 0 });
    const choice = (completion.choices as Record<string, unknown>[])[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message).toEqual({
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
    });
  });

  it('maps every stop reason Anthropic documents', () => {
    const finish = (stop_reason: string) => ((fromAnthropicResponse({ content: [], stop_reason }).completion.choices as { finish_reason: string }[])[0]!.finish_reason);
    expect(finish('end_turn')).toBe('stop');
    expect(finish('stop_sequence')).toBe('stop');
    expect(finish('max_tokens')).toBe('length');
    expect(finish('tool_use')).toBe('tool_calls');
    expect(finish('refusal')).toBe('content_filter');
    expect(finish('pause_turn')).toBe('stop');
    expect(finish('something_new')).toBe('stop');
  });

  it('parseResponse refuses text that is not a Messages response (502, upstream_malformed)', () => {
    for (const text of ['not json', '{"type":"message"}']) {
      try {
        anthropicAdapter.parseResponse(text);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(GatewayError);
        expect((err as GatewayError).status).toBe(502);
        expect((err as GatewayError).code).toBe('upstream_malformed');
      }
    }
  });
});

const STREAM = [
  { type: 'message_start', message: { id: 'msg_s', model: 'claude-x', usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 30, cache_creation_input_tokens: 4 } } },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'ping' },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' there' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_9', name: 'lookup', input: {} } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"q":' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"x"}' } },
  { type: 'content_block_stop', index: 1 },
  // Cumulative usage: output restated, input counts absent (kept from message_start).
  { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 25 } },
  { type: 'message_stop' },
];

describe('Anthropic stream → OpenAI chunks', () => {
  it('translates each event, numbering tool calls from 0 and ending with a usage chunk', () => {
    const t = new AnthropicStreamTranslator();
    const chunks = STREAM.flatMap((e) => t.translate(e));
    const deltas = chunks.map((c) => (c.choices?.[0] ? { delta: c.choices[0].delta, finish: c.choices[0].finish_reason } : { usage: c.usage }));
    expect(deltas).toEqual([
      { delta: { role: 'assistant', content: '' }, finish: null },
      { delta: { content: 'Hi' }, finish: null },
      { delta: { content: ' there' }, finish: null },
      { delta: { tool_calls: [{ index: 0, id: 'toolu_9', type: 'function', function: { name: 'lookup', arguments: '' } }] }, finish: null },
      { delta: { tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] }, finish: null },
      { delta: { tool_calls: [{ index: 0, function: { arguments: '"x"}' } }] }, finish: null },
      { delta: {}, finish: 'tool_calls' },
      // 12 + 30 + 4 = 46 prompt tokens; output from message_delta.
      { usage: { prompt_tokens: 46, completion_tokens: 25, total_tokens: 71, prompt_tokens_details: { cached_tokens: 30, cache_write_tokens: 4 } } },
    ]);
    for (const c of chunks) expect(c).toMatchObject({ id: 'chatcmpl-msg_s', object: 'chat.completion.chunk', model: 'claude-x' });
    expect(chunks[chunks.length - 1]!.choices).toEqual([]);
    expect(t.finished).toBe(true);
  });

  it('knows the prompt tokens from message_start on, before the stream ends (for a canceled stream)', () => {
    const t = new AnthropicStreamTranslator();
    const [first] = t.translate(STREAM[0]!);
    expect(t.usageSoFar()).toEqual({ inputTokens: 46, outputTokens: 1, cachedTokens: 30, cacheWriteTokens: 4 });
    // Carried on the first chunk under a symbol, so JSON never shows it to the client.
    expect((first as Record<symbol, unknown>)[PARTIAL_USAGE]).toEqual({ inputTokens: 46, outputTokens: 1, cachedTokens: 30, cacheWriteTokens: 4 });
    expect(JSON.stringify(first)).not.toMatch(/inputTokens|usage/);
    t.translate({ type: 'message_delta', delta: {}, usage: { output_tokens: 9, input_tokens: null } });
    expect(t.usageSoFar()).toEqual({ inputTokens: 46, outputTokens: 9, cachedTokens: 30, cacheWriteTokens: 4 });
    expect(t.finished).toBe(false);
  });

  it('turns an error event into an upstream failure naming Anthropic’s message', () => {
    const t = new AnthropicStreamTranslator();
    expect(() => t.translate({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })).toThrow('anthropic failed mid-stream: Overloaded');
  });

  it('streamChunks parses SSE bytes cut anywhere, and refuses a stream without message_stop', async () => {
    const sse = STREAM.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('');
    const bytes = Buffer.from(sse);
    async function* pieces(size: number) {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    }
    const collect = async (source: AsyncIterable<Buffer>) => {
      const out = [];
      for await (const c of anthropicAdapter.streamChunks(source)) out.push(c);
      return out;
    };
    const whole = await collect(pieces(bytes.length));
    const bytewise = await collect(pieces(7));
    expect(bytewise).toEqual(whole);
    expect(whole).toHaveLength(8);
    expect(whole[7]!.usage).toMatchObject({ prompt_tokens: 46, completion_tokens: 25 });

    const truncated = Buffer.from(sse.slice(0, sse.indexOf('event: message_stop')));
    async function* once() {
      yield truncated;
    }
    await expect(collect(once())).rejects.toMatchObject({ status: 502, code: 'upstream_truncated' });
  });
});
