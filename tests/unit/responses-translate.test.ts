import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import { chatToResponse, ResponsesStreamTranslator, responsesToChat, usageFromResponses, type ResponseEcho } from '../../server/modules/gateway/upstream/responses-chat.js';
import type { ChatChunk } from '../../server/modules/gateway/upstream/types.js';
import { nativeResponses } from '../../server/modules/gateway/responses.js';
import type { Target } from '../../server/modules/gateway/targets.js';

const MODEL = 'claude-sonnet-4-5';

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a refusal');
}

const echo = (body: Record<string, unknown> = {}): ResponseEcho => ({ id: 'resp_test', createdAt: 1, model: 'anthropic/claude-sonnet-4-5', body, store: false });

describe('Responses request -> chat request', () => {
  it('turns a string input and instructions into system and user messages', () => {
    const { chat, items } = responsesToChat({ model: 'x', input: 'hello', instructions: 'be brief', max_output_tokens: 50, temperature: 0.2, top_p: 0.9 }, MODEL);
    expect(chat).toEqual({ model: MODEL, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], max_tokens: 50, temperature: 0.2, top_p: 0.9 });
    expect(items).toEqual([{ type: 'message', role: 'user', content: 'hello' }]);
  });

  it('translates message parts, function calls and their outputs, in order', () => {
    const { chat } = responsesToChat(
      {
        model: 'x',
        input: [
          { role: 'developer', content: 'dev note' },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'look' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'low' }, { type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBE' }] },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'checking' }] },
          { type: 'function_call', call_id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
          { type: 'function_call', call_id: 'call_2', name: 'time', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
          { type: 'function_call_output', call_id: 'call_2', output: '12:00' },
          { type: 'reasoning', id: 'rs_1', summary: [] },
        ],
      },
      MODEL,
    );
    expect(chat.messages).toEqual([
      { role: 'system', content: 'dev note' },
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' } }] },
      {
        role: 'assistant',
        content: 'checking',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'time', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_2', content: '12:00' },
    ]);
  });

  it('translates function tools, tool_choice, text.format, reasoning effort, parallel_tool_calls and user', () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const { chat } = responsesToChat(
      {
        model: 'x',
        input: 'hi',
        tools: [{ type: 'function', name: 'weather', description: 'get weather', parameters: schema, strict: true }],
        tool_choice: { type: 'function', name: 'weather' },
        parallel_tool_calls: false,
        text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } },
        reasoning: { effort: 'low' },
        safety_identifier: 'user-1',
        store: true,
        metadata: { a: '1' },
        include: ['reasoning.encrypted_content'],
      },
      MODEL,
    );
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'weather', description: 'get weather', parameters: schema, strict: true } }]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'weather' } });
    expect(chat.parallel_tool_calls).toBe(false);
    expect(chat.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } });
    expect(chat.reasoning_effort).toBe('low');
    expect(chat.user).toBe('user-1');
    expect(chat).not.toHaveProperty('metadata');
    expect(chat).not.toHaveProperty('store');
    expect(responsesToChat({ model: 'x', input: 'hi', text: { format: { type: 'json_object' } } }, MODEL).chat.response_format).toEqual({ type: 'json_object' });
  });

  it('puts the stored history before the new input', () => {
    const history = [{ type: 'message', role: 'user', content: 'first' }, { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'answer' }] }];
    const { chat, items } = responsesToChat({ model: 'x', input: 'second', previous_response_id: 'resp_1' }, MODEL, history);
    expect(chat.messages).toEqual([{ role: 'user', content: 'first' }, { role: 'assistant', content: 'answer' }, { role: 'user', content: 'second' }]);
    expect(items).toHaveLength(3);
  });

  it('refuses built-in tools and untranslatable fields with a 400 naming them and the model', () => {
    for (const [body, param] of [
      [{ tools: [{ type: 'web_search' }] }, 'web_search'],
      [{ tools: [{ type: 'file_search', vector_store_ids: ['vs'] }] }, 'file_search'],
      [{ tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] }, 'code_interpreter'],
      [{ background: true }, 'background'],
      [{ truncation: 'auto' }, 'truncation'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
      [{ include: ['file_search_call.results'] }, 'file_search_call.results'],
      [{ text: { verbosity: 'low' } }, 'text.verbosity'],
      [{ something_new: 1 }, 'something_new'],
      [{ input: [{ type: 'item_reference', id: 'x' }] }, 'item_reference'],
      [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] }, 'file_id'],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] }, 'file_id'],
    ] as [Record<string, unknown>, string][]) {
      const err = refusal(() => responsesToChat({ model: 'x', input: 'hi', ...body }, MODEL));
      expect(err.status).toBe(400);
      expect(err.message).toContain(param);
      expect(err.message).toContain(MODEL);
    }
  });
});

describe('chat completion -> Response', () => {
  it('maps text, tool calls, usage (cached and reasoning tokens) and the stop reason', () => {
    const completion = {
      choices: [{ index: 0, message: { role: 'assistant', content: 'Let me check.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 20, completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 4 } },
    };
    const r = chatToResponse(completion, { inputTokens: 20, outputTokens: 9, cachedTokens: 5 }, echo({ metadata: { a: '1' } }));
    expect(r).toMatchObject({ id: 'resp_test', object: 'response', status: 'completed', model: 'anthropic/claude-sonnet-4-5', metadata: { a: '1' } });
    expect(r.output).toMatchObject([
      { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Let me check.', annotations: [] }] },
      { type: 'function_call', call_id: 'toolu_1', name: 'weather', arguments: '{"city":"Paris"}', status: 'completed' },
    ]);
    expect(r.usage).toEqual({ input_tokens: 20, input_tokens_details: { cached_tokens: 5 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 4 }, total_tokens: 29 });
    const cut = chatToResponse({ choices: [{ message: { content: 'w0' }, finish_reason: 'length' }] }, { inputTokens: 1, outputTokens: 1, cachedTokens: 0 }, echo());
    expect(cut).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
  });

  it('reads OpenAI Responses usage, reasoning tokens counted in the output', () => {
    expect(usageFromResponses({ input_tokens: 30, input_tokens_details: { cached_tokens: 10 }, output_tokens: 12, output_tokens_details: { reasoning_tokens: 8 } })).toEqual({ inputTokens: 30, outputTokens: 12, cachedTokens: 10 });
    expect(usageFromResponses(null)).toBeNull();
  });
});

describe('chat chunks -> Responses events', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): ChatChunk => ({ choices: [{ index: 0, delta, finish_reason: finish }] }) as ChatChunk;

  it('emits the events in order with increasing sequence numbers', () => {
    const t = new ResponsesStreamTranslator(echo());
    const events = [
      ...t.start(),
      ...t.push(chunk({ role: 'assistant', content: '' })),
      ...t.push(chunk({ content: 'Let me ' })),
      ...t.push(chunk({ content: 'check.' })),
      ...t.push(chunk({ tool_calls: [{ index: 0, id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '' } }] })),
      ...t.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] })),
      ...t.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] })),
      ...t.push(chunk({}, 'tool_calls')),
    ];
    const { events: last, response } = t.finish({ inputTokens: 12, outputTokens: 7, cachedTokens: 0 });
    const all = [...events, ...last];
    expect(all.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(all.map((e) => e.sequence_number)).toEqual(all.map((_, i) => i));
    expect(all.find((e) => e.type === 'response.output_text.done')).toMatchObject({ text: 'Let me check.', output_index: 0 });
    expect(all.find((e) => e.type === 'response.function_call_arguments.done')).toMatchObject({ arguments: '{"city":"Paris"}', output_index: 1, name: 'weather' });
    expect(response.output).toMatchObject([{ type: 'message', content: [{ text: 'Let me check.' }] }, { type: 'function_call', call_id: 'toolu_1', arguments: '{"city":"Paris"}' }]);
    expect(response.usage).toMatchObject({ input_tokens: 12, output_tokens: 7 });
    expect(t.deliveredChars).toBe('Let me check.'.length + '{"city":"Paris"}'.length);
  });

  it('ends with response.incomplete after a length stop', () => {
    const t = new ResponsesStreamTranslator(echo());
    t.start();
    t.push(chunk({ content: 'w0' }, 'length'));
    const { events } = t.finish({ inputTokens: 1, outputTokens: 1, cachedTokens: 0 });
    expect(events.at(-1)).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } });
  });
});

describe('where OpenAI-served targets answer the Responses API', () => {
  const target = (provider: string, url: string, upstreamModel = 'gpt-4o-mini') => ({ provider, url, upstreamModel }) as unknown as Target;
  it('derives the upstream /responses URL for OpenAI and Azure, and none for translated providers', () => {
    expect(nativeResponses(target('openai', 'https://api.openai.com/v1/chat/completions'))).toEqual({ url: 'https://api.openai.com/v1/responses', model: 'gpt-4o-mini' });
    expect(nativeResponses(target('azure', 'https://res.openai.azure.com/openai/deployments/my%20dep/chat/completions?api-version=2024-10-21'))).toEqual({
      url: 'https://res.openai.azure.com/openai/v1/responses?api-version=preview',
      model: 'my dep',
    });
    expect(nativeResponses(target('anthropic', 'https://api.anthropic.com/v1/messages'))).toBeNull();
    expect(nativeResponses(target('custom', 'https://llm.example.com/v1/chat/completions'))).toBeNull();
  });
});
