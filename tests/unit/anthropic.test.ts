/**
 * The Anthropic adapter both ways, without a network: OpenAI chat requests become Messages API
 * requests; Messages responses and stream events become OpenAI completions and chunks.
 */
import { describe, expect, it } from 'vitest';
import { anthropicAdapter, AnthropicStreamTranslator, fromAnthropicResponse, RESPONSE_FORMAT_TOOL, toAnthropicRequest } from '../../server/modules/gateway/upstream/anthropic.js';
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

  it('maps stop (string or list), temperature (0..1), top_p, user, stream', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    const one = toAnthropicRequest(req({ ...base, stop: 'END', temperature: 1, top_p: 0.9, user: 'u-42' }), 'm', true, null);
    expect(one).toMatchObject({ stop_sequences: ['END'], temperature: 1, top_p: 0.9, metadata: { user_id: 'u-42' }, stream: true });
    const two = toAnthropicRequest(req({ ...base, stop: ['a', 'b'], temperature: 0 }), 'm', false, null);
    expect(two).toMatchObject({ stop_sequences: ['a', 'b'], temperature: 0 });
    expect(two).not.toHaveProperty('metadata');
    expect(toAnthropicRequest(req({ ...base, temperature: 0.3 }), 'm', false, null).temperature).toBe(0.3);
  });

  it('refuses a temperature outside 0..1 naming the parameter, the model and the range (no clamping)', () => {
    for (const temperature of [1.7, -0.5]) {
      const err = refusal(() => toAnthropicRequest(req({ messages: [{ role: 'user', content: 'x' }], temperature }), 'claude-haiku-4-5', false, null));
      expect(err.status).toBe(400);
      expect(err.message).toContain(`temperature ${temperature}`);
      expect(err.message).toContain('claude-haiku-4-5');
      expect(err.message).toContain('0 to 1');
    }
  });

  it('takes max_completion_tokens, else max_tokens, else the model’s output limit from the catalog (4096 for a model it does not know)', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    const max = (extra: Record<string, unknown>, modelMax: number | null) => toAnthropicRequest(req({ ...base, ...extra }), 'm', false, modelMax).max_tokens;
    expect(max({ max_completion_tokens: 100, max_tokens: 200 }, 8192)).toBe(100);
    expect(max({ max_tokens: 200 }, 8192)).toBe(200);
    expect(max({ max_tokens: 12.9 }, null)).toBe(12);
    expect(max({}, 64_000)).toBe(64_000);
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
    // Each run stamps its own `created` second: compared without it.
    const unstamped = (chunks: Record<string, unknown>[]) => chunks.map(({ created: _created, ...rest }) => rest);
    expect(unstamped(bytewise)).toEqual(unstamped(whole));
    expect(whole).toHaveLength(8);
    expect(whole[7]!.usage).toMatchObject({ prompt_tokens: 46, completion_tokens: 25 });

    const truncated = Buffer.from(sse.slice(0, sse.indexOf('event: message_stop')));
    async function* once() {
      yield truncated;
    }
    await expect(collect(once())).rejects.toMatchObject({ status: 502, code: 'upstream_truncated' });
  });
});

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a refusal');
}

describe('faithful or refused: every chat field to Anthropic', () => {
  const user = [{ role: 'user', content: 'x' }];
  const to = (extra: Record<string, unknown>, max: number | null = 64_000) => toAnthropicRequest(req({ messages: user, ...extra }), 'claude-sonnet-4-5', false, max);

  it('prompt_cache_key puts cache breakpoints on the last tool and the system prompt, unless the request has its own', () => {
    const tools = [{ type: 'function', function: { name: 'a', parameters: { type: 'object' } } }, { type: 'function', function: { name: 'b', parameters: { type: 'object' } } }];
    const out = toAnthropicRequest(req({ messages: [{ role: 'system', content: 'be brief' }, ...user], tools, prompt_cache_key: 'session-1' }), 'claude-sonnet-4-5', false, 64_000);
    expect(out.system).toEqual([{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }]);
    const outTools = out.tools as Record<string, unknown>[];
    expect(outTools[0]).not.toHaveProperty('cache_control');
    expect(outTools[1]).toMatchObject({ name: 'b', cache_control: { type: 'ephemeral' } });
    expect(JSON.stringify(out)).not.toContain('session-1');
    // Without the key nothing is marked; with the client's own breakpoints, those are kept as they are.
    expect(JSON.stringify(toAnthropicRequest(req({ messages: [{ role: 'system', content: 'be brief' }, ...user], tools }), 'claude-sonnet-4-5', false, 64_000))).not.toContain('cache_control');
    const own = toAnthropicRequest(
      req({ messages: [{ role: 'system', content: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }] }, ...user], tools, prompt_cache_key: 'session-1' }),
      'claude-sonnet-4-5',
      false,
      64_000,
    );
    expect((own.tools as Record<string, unknown>[]).some((t) => t.cache_control)).toBe(false);
  });

  it('refuses what Anthropic cannot do, naming the parameter and the model', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
      [{ seed: 7 }, 'seed'],
      [{ frequency_penalty: 0.5 }, 'frequency_penalty'],
      [{ presence_penalty: -1 }, 'presence_penalty'],
      [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
      [{ modalities: ['text', 'audio'] }, 'modalities'],
      [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
      [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
      [{ service_tier: 'flex' }, 'service_tier'],
      [{ web_search_options: {} }, 'web_search_options'],
      [{ store: true }, 'store'],
      [{ functions: [{ name: 'f' }] }, 'functions'],
      [{ prompt_cache_key: 7 }, 'prompt_cache_key'],
      [{ some_new_field: 1 }, 'some_new_field'],
      [{ tools: [{ type: 'code_interpreter' }] }, 'code_interpreter'],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array' } } } }, 'response_format'],
    ];
    for (const [extra, param] of cases) {
      const err = refusal(() => to(extra));
      expect(err.status, param).toBe(400);
      expect(err.message, param).toContain(param);
      expect(err.message, param).toContain('claude-sonnet-4-5');
    }
    // Neutral values ask for nothing and pass.
    expect(() => to({ n: 1, logprobs: false, frequency_penalty: 0, presence_penalty: 0, logit_bias: {}, modalities: ['text'], store: false, service_tier: 'auto', parallel_tool_calls: true })).not.toThrow();
    expect(to({ service_tier: 'default' }).service_tier).toBe('standard_only');
  });

  it('refuses audio parts and non-PDF files; sends PDFs as document blocks', () => {
    expect(refusal(() => to({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] })).message).toContain('audio');
    const csv = { type: 'file', file: { file_data: 'data:text/csv;base64,YSxi', filename: 'a.csv' } };
    expect(refusal(() => to({ messages: [{ role: 'user', content: [csv] }] })).message).toContain('text/csv');
    expect(refusal(() => to({ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }] })).message).toContain('file_id');
    const out = to({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarize' }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'report.pdf' } }] }] });
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Summarize' }, { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' }, title: 'report.pdf' }] },
    ]);
  });

  it('passes cache_control from parts, messages (onto their last block), system and tools', () => {
    const ephemeral = { type: 'ephemeral' };
    const out = to({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'long instructions', cache_control: ephemeral }] },
        { role: 'user', content: [{ type: 'text', text: 'doc' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' }, cache_control: ephemeral }] },
        { role: 'assistant', content: 'ok', cache_control: ephemeral },
        { role: 'user', content: 'question' },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } }, cache_control: ephemeral }],
    });
    expect(out.system).toEqual([{ type: 'text', text: 'long instructions', cache_control: ephemeral }]);
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'doc' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' }, cache_control: ephemeral }] },
      { role: 'assistant', content: [{ type: 'text', text: 'ok', cache_control: ephemeral }] },
      { role: 'user', content: [{ type: 'text', text: 'question' }] },
    ]);
    expect(out.tools).toEqual([{ name: 'f', input_schema: { type: 'object' }, cache_control: ephemeral }]);
    expect(refusal(() => to({ messages: [{ role: 'user', content: [{ type: 'text', text: 'x', cache_control: { type: 'forever' } }] }] })).status).toBe(400);
  });

  it('parallel_tool_calls: false disables parallel tool use on the tool choice', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    expect(to({ tools, parallel_tool_calls: false }).tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
    expect(to({ tools, parallel_tool_calls: false, tool_choice: 'required' }).tool_choice).toEqual({ type: 'any', disable_parallel_tool_use: true });
    expect(to({ tools, parallel_tool_calls: false, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(to({ tools }).tool_choice).toBeUndefined();
  });

  it('response_format becomes a forced tool whose input_schema is the schema', () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const out = to({ response_format: { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } } });
    expect(out.tools).toEqual([{ name: RESPONSE_FORMAT_TOOL, description: 'Answer with the "place" JSON object.', input_schema: schema }]);
    expect(out.tool_choice).toEqual({ type: 'tool', name: RESPONSE_FORMAT_TOOL });
    expect(to({ response_format: { type: 'json_object' } }).tools).toEqual([{ name: RESPONSE_FORMAT_TOOL, description: 'Answer with a JSON object.', input_schema: { type: 'object' } }]);
    expect(to({ response_format: { type: 'text' } })).not.toHaveProperty('tools');
    // With the client's tools: one of them, or the answer.
    const withTools = to({ response_format: { type: 'json_object' }, tools: [{ type: 'function', function: { name: 'f' } }] });
    expect(withTools.tool_choice).toEqual({ type: 'any' });
    expect((withTools.tools as { name: string }[]).map((t) => t.name)).toEqual(['f', RESPONSE_FORMAT_TOOL]);
    expect(refusal(() => to({ response_format: { type: 'json_object' }, reasoning_effort: 'low' })).message).toContain('response_format');

    // The answer: the tool's input as the message content, finish_reason stop.
    const { completion } = fromAnthropicResponse({ id: 'm', content: [{ type: 'tool_use', id: 't', name: RESPONSE_FORMAT_TOOL, input: { city: 'Paris' } }], stop_reason: 'tool_use', usage: {} });
    expect((completion.choices as Record<string, unknown>[])[0]).toMatchObject({ message: { role: 'assistant', content: '{"city":"Paris"}' }, finish_reason: 'stop' });
    expect((completion.choices as { message: object }[])[0]!.message).not.toHaveProperty('tool_calls');
    // Streamed: its JSON arrives as content deltas.
    const t = new AnthropicStreamTranslator();
    const chunks = [
      { type: 'message_start', message: { id: 's', model: 'c', usage: { input_tokens: 3 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 't', name: RESPONSE_FORMAT_TOOL, input: {} } },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"Rome"}' } },
      { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 4 } },
    ].flatMap((e) => t.translate(e));
    expect(chunks.map((c) => c.choices![0]!.delta)).toEqual([{ role: 'assistant', content: '' }, { content: '{"city":' }, { content: '"Rome"}' }, {}]);
    expect(chunks[3]!.choices![0]!.finish_reason).toBe('stop');
  });

  it('reasoning_effort becomes extended thinking, with Anthropic’s temperature rules; thinking text returns as reasoning_content', () => {
    expect(to({ reasoning_effort: 'medium' })).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 8192 }, max_tokens: 64_000 });
    expect(to({ reasoning_effort: 'high', max_tokens: 5000 }).thinking).toEqual({ type: 'enabled', budget_tokens: 4999 });
    expect(to({ reasoning_effort: 'low', temperature: 1 })).not.toHaveProperty('temperature');
    expect(to({ reasoning_effort: 'none' })).not.toHaveProperty('thinking');
    expect(refusal(() => to({ reasoning_effort: 'low', temperature: 0.2 })).message).toContain('temperature');
    expect(refusal(() => to({ reasoning_effort: 'low', max_tokens: 500 })).message).toContain('max_tokens');
    expect(refusal(() => to({ reasoning_effort: 'low', tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f' } }] })).message).toContain('tool_choice');
    expect(refusal(() => to({ reasoning_effort: 'extreme' })).status).toBe(400);

    const { completion } = fromAnthropicResponse({ id: 'm', content: [{ type: 'thinking', thinking: 'Let me think.', signature: 'sig' }, { type: 'text', text: '42' }], stop_reason: 'end_turn', usage: { input_tokens: 5, output_tokens: 30 } });
    expect((completion.choices as Record<string, unknown>[])[0]).toMatchObject({ message: { content: '42', reasoning_content: 'Let me think.' } });
    expect(completion.usage).toMatchObject({ completion_tokens: 30 });
    const t = new AnthropicStreamTranslator();
    const deltas = [
      { type: 'message_start', message: { id: 's', model: 'c', usage: { input_tokens: 3 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hmm.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'x' } },
      { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Yes' } },
    ]
      .flatMap((e) => t.translate(e))
      .map((c) => c.choices![0]!.delta);
    expect(deltas).toEqual([{ role: 'assistant', content: '' }, { reasoning_content: 'Hmm.' }, { content: 'Yes' }]);
  });
});
