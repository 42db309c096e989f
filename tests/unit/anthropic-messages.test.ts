/**
 * The Messages API translators without a network: Anthropic requests -> OpenAI chat requests
 * (honoured, translated or refused), chat completions -> Anthropic messages, chat chunks ->
 * Anthropic's event stream, error types, the count_tokens estimate.
 */
import { describe, expect, it } from 'vitest';
import {
  anthropicErrorType,
  effortOf,
  estimateInputTokens,
  MessagesStreamWriter,
  reasons,
  toAnthropicMessage,
  toChatRequest,
  type MessagesRequest,
  type TranslationTarget,
} from '../../server/modules/gateway/upstream/anthropic-messages.js';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import type { ChatChunk } from '../../server/modules/gateway/upstream/types.js';

const openai: TranslationTarget = { provider: 'openai', model: 'gpt-4o-mini', upstreamModel: 'gpt-4o-mini' };
const google: TranslationTarget = { provider: 'google', model: 'gemini-2.5-flash', upstreamModel: 'gemini-2.5-flash' };
const qwen: TranslationTarget = { provider: 'alibaba', model: 'qwen-plus', upstreamModel: 'qwen-plus' };
const req = (extra: Partial<MessagesRequest>): MessagesRequest => ({ model: 'x', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }], ...extra });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).status).toBe(400);
    return (err as GatewayError).message;
  }
  throw new Error('expected a refusal');
}

describe('Messages request -> chat request', () => {
  it('maps system blocks, tool results (images after them, errors marked), tool_use, and drops earlier thinking', () => {
    const out = toChatRequest(
      req({
        system: [{ type: 'text', text: 'A', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'B' }],
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'tool_use', id: 't1', name: 'shot', input: {} }, { type: 'tool_use', id: 't2', name: 'ls', input: { p: '/' } }] },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'here' }, { type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] },
              { type: 'tool_result', tool_use_id: 't2', content: 'no such dir', is_error: true },
              { type: 'text', text: 'next?', cache_control: { type: 'ephemeral' } },
            ],
          },
        ],
      }),
      openai,
    );
    expect(out.messages).toEqual([
      { role: 'system', content: 'A\n\nB' },
      { role: 'user', content: 'q' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'shot', arguments: '{}' } }, { id: 't2', type: 'function', function: { name: 'ls', arguments: '{"p":"/"}' } }] },
      { role: 'tool', tool_call_id: 't1', content: 'here' },
      { role: 'tool', tool_call_id: 't2', content: '[tool error] no such dir' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }, { type: 'text', text: 'next?' }] },
    ]);
    expect(out.max_completion_tokens).toBe(100);
    expect(out.max_tokens).toBeUndefined();
  });

  it('uses max_tokens for providers other than OpenAI and Azure; top_k where the provider takes it', () => {
    expect(toChatRequest(req({ top_k: 20 }), qwen)).toMatchObject({ max_tokens: 100, top_k: 20 });
    expect(refusal(() => toChatRequest(req({ top_k: 20 }), openai))).toMatch(/^top_k is not supported for gpt-4o-mini/);
    expect(refusal(() => toChatRequest(req({ top_k: 20 }), google))).toMatch(/^top_k is not supported for gemini-2\.5-flash/);
  });

  it('tool_choice: auto, any, tool, none; disable_parallel_tool_use; no tools means no tool fields', () => {
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    expect(toChatRequest(req({ tools, tool_choice: { type: 'auto' } }), openai)).toMatchObject({ tool_choice: 'auto' });
    expect(toChatRequest(req({ tools, tool_choice: { type: 'any', disable_parallel_tool_use: true } }), openai)).toMatchObject({ tool_choice: 'required', parallel_tool_calls: false });
    expect(toChatRequest(req({ tools, tool_choice: { type: 'tool', name: 'f' } }), openai)).toMatchObject({ tool_choice: { type: 'function', function: { name: 'f' } } });
    expect(toChatRequest(req({ tools, tool_choice: { type: 'none' } }), openai)).toMatchObject({ tool_choice: 'none' });
    const none = toChatRequest(req({ tools: [], tool_choice: { type: 'auto' } }), openai);
    expect(none).not.toHaveProperty('tools');
    expect(none).not.toHaveProperty('tool_choice');
    expect(refusal(() => toChatRequest(req({ tools, tool_choice: { type: 'sometimes' } }), openai))).toMatch(/tool_choice\.type "sometimes"/);
  });

  it('thinking becomes reasoning_effort for reasoning models and is refused elsewhere', () => {
    const o4: TranslationTarget = { provider: 'openai', model: 'o4-mini', upstreamModel: 'o4-mini' };
    expect(toChatRequest(req({ thinking: { type: 'enabled', budget_tokens: 10_000 } }), o4)).toMatchObject({ reasoning_effort: 'medium' });
    expect(toChatRequest(req({ thinking: { type: 'disabled' } }), openai)).not.toHaveProperty('reasoning_effort');
    expect(refusal(() => toChatRequest(req({ thinking: { type: 'enabled', budget_tokens: 2000 } }), openai))).toMatch(/^thinking is not supported for gpt-4o-mini/);
    expect(refusal(() => toChatRequest(req({ thinking: { type: 'enabled', budget_tokens: 2000 } }), qwen))).toMatch(/^thinking is not supported for qwen-plus/);
    expect([effortOf(1024), effortOf(8000), effortOf(32_000)]).toEqual(['low', 'medium', 'high']);
    expect([reasons('openai', 'gpt-5-mini'), reasons('google', 'gemini-2.5-pro'), reasons('bedrock', 'openai.gpt-oss-120b-1:0'), reasons('google', 'gemini-2.0-flash'), reasons('openai', 'gpt-4.1')]).toEqual([true, true, true, false, false]);
  });

  it('documents: PDFs as file parts where the provider takes them, text documents as text, the rest refused', () => {
    const pdf = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'QUJD' }, context: 'Q3 numbers' };
    expect(toChatRequest(req({ messages: [{ role: 'user', content: [pdf] }] }), openai).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Q3 numbers' }, { type: 'file', file: { filename: 'document.pdf', file_data: 'data:application/pdf;base64,QUJD' } }] },
    ]);
    const text = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain words' } };
    expect(toChatRequest(req({ messages: [{ role: 'user', content: [text] }] }), google).messages).toEqual([{ role: 'user', content: 'plain words' }]);
    expect(refusal(() => toChatRequest(req({ messages: [{ role: 'user', content: [pdf] }] }), qwen))).toMatch(/a PDF document\) is not supported for qwen-plus/);
    expect(refusal(() => toChatRequest(req({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x/a.pdf' } }] }] }), openai))).toMatch(/source\.type "url"/);
    expect(refusal(() => toChatRequest(req({ messages: [{ role: 'user', content: [{ ...pdf, citations: { enabled: true } }] }] }), openai))).toMatch(/citations is not supported/);
    expect(refusal(() => toChatRequest(req({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }), openai))).toMatch(/source\.type "file"/);
  });

  it('refuses unknown fields, server tools, unknown blocks and metadata keys; requires max_tokens', () => {
    expect(refusal(() => toChatRequest(req({ container: 'c' }), openai))).toMatch(/^container is not supported for gpt-4o-mini/);
    expect(refusal(() => toChatRequest(req({ tools: [{ type: 'bash_20250124', name: 'bash' }] }), openai))).toMatch(/tools\[0\] \(type bash_20250124\)/);
    expect(refusal(() => toChatRequest(req({ messages: [{ role: 'user', content: [{ type: 'search_result', source: 'x' }] }] }), openai))).toMatch(/messages\[0\]\.content\[0\] \(type search_result\)/);
    expect(refusal(() => toChatRequest(req({ metadata: { user_id: 'u', other: 1 } }), openai))).toMatch(/metadata\.other/);
    expect(refusal(() => toChatRequest(req({ service_tier: 'standard_only' }), openai))).toMatch(/service_tier/);
    expect(refusal(() => toChatRequest(req({ max_tokens: undefined }), openai))).toMatch(/max_tokens is required/);
    expect(toChatRequest(req({ metadata: { user_id: 'u' }, service_tier: 'auto', stop_sequences: ['x'], stream: true }), openai)).toMatchObject({ user: 'u', stop: ['x'], stream: true });
  });
});

describe('chat completion -> Messages message', () => {
  const completion = (message: Record<string, unknown>, finish: string) => ({ id: 'chatcmpl-abc', choices: [{ index: 0, message, finish_reason: finish }] });
  const usage = { inputTokens: 20, outputTokens: 5, cachedTokens: 8 };

  it('text, tool calls, stop reasons and usage without the cache reads in input_tokens', () => {
    const msg = toAnthropicMessage(completion({ role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, 'tool_calls'), usage, 'gpt-4o-mini', 'openai');
    expect(msg).toEqual({
      id: 'msg_abc',
      type: 'message',
      role: 'assistant',
      model: 'gpt-4o-mini',
      content: [{ type: 'text', text: 'ok' }, { type: 'tool_use', id: 'c1', name: 'f', input: { a: 1 } }],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 8, output_tokens: 5 },
    });
    expect(toAnthropicMessage(completion({ content: 'cut' }, 'length'), usage, 'm', 'openai').stop_reason).toBe('max_tokens');
    expect(toAnthropicMessage(completion({ content: null, refusal: 'no' }, 'stop'), usage, 'm', 'openai')).toMatchObject({ content: [{ type: 'text', text: 'no' }], stop_reason: 'refusal' });
  });

  it('tool arguments that are not a JSON object are an upstream failure, not a silent {}', () => {
    expect(() => toAnthropicMessage(completion({ tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{oops' } }] }, 'tool_calls'), usage, 'm', 'openai')).toThrow(/not a JSON object/);
  });
});

describe('chat chunks -> Messages events', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): ChatChunk => ({ choices: [{ index: 0, delta, finish_reason: finish }] }) as ChatChunk;
  const parse = (text: string) =>
    text
      .split('\n\n')
      .filter(Boolean)
      .map((b) => JSON.parse(b.split('\n')[1]!.slice(6)) as Record<string, unknown>);

  it('opens one block at a time: text, then each tool call with input_json_delta, then text again; ends with stop reason and usage', () => {
    const w = new MessagesStreamWriter('msg_1', 'gpt-4o-mini', 1000);
    let out = w.start();
    out += w.push(chunk({ role: 'assistant', content: '' }));
    out += w.push(chunk({ content: 'Hi' }));
    out += w.push(chunk({ tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '{"x"' } }] }));
    out += w.push(chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }));
    out += w.push(chunk({ tool_calls: [{ index: 1, id: 'b', function: { name: 'g', arguments: '{}' } }] }));
    out += w.push(chunk({}, 'tool_calls'));
    out += w.end({ inputTokens: 10, outputTokens: 4, cachedTokens: 2 });
    const events = parse(out);
    expect(events.map((e) => [e.type, e.index ?? null])).toEqual([
      ['message_start', null],
      ['ping', null],
      ['content_block_start', 0],
      ['content_block_delta', 0],
      ['content_block_stop', 0],
      ['content_block_start', 1],
      ['content_block_delta', 1],
      ['content_block_delta', 1],
      ['content_block_stop', 1],
      ['content_block_start', 2],
      ['content_block_delta', 2],
      ['content_block_stop', 2],
      ['message_delta', null],
      ['message_stop', null],
    ]);
    expect(events[5]).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'a', name: 'f', input: {} } });
    expect(events[12]).toEqual({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 2, output_tokens: 4 } });
    expect(w.text).toBe('Hi');
    expect(w.chars).toBe('Hi'.length + 'f'.length + '{"x":1}'.length + 'g'.length + '{}'.length);
  });

  it('an empty answer still closes properly', () => {
    const w = new MessagesStreamWriter('msg_2', 'm', 0);
    const events = parse(w.start() + w.push(chunk({}, 'length')) + w.end({ inputTokens: 1, outputTokens: 0, cachedTokens: 0 }));
    expect(events.map((e) => e.type)).toEqual(['message_start', 'ping', 'message_delta', 'message_stop']);
    expect(events[2]).toMatchObject({ delta: { stop_reason: 'max_tokens' } });
  });
});

describe('errors and estimates', () => {
  it('maps the gateway statuses to Anthropic error types', () => {
    expect([400, 401, 402, 403, 404, 413, 429, 500, 502, 503, 504].map(anthropicErrorType)).toEqual([
      'invalid_request_error',
      'authentication_error',
      'billing_error',
      'permission_error',
      'not_found_error',
      'request_too_large',
      'rate_limit_error',
      'api_error',
      'api_error',
      'overloaded_error',
      'timeout_error',
    ]);
  });

  it('estimates input tokens from text, tool calls, tools, images and PDFs', () => {
    const text = estimateInputTokens({ system: 'x'.repeat(40), messages: [{ role: 'user', content: 'y'.repeat(40) }] });
    expect(text).toBe(4 + 20);
    const rich = estimateInputTokens({ messages: [{ role: 'user', content: [{ type: 'image', source: {} }, { type: 'document', source: { type: 'base64', data: 'a'.repeat(500) } }] }] });
    expect(rich).toBe(4 + 1600 + 100);
    expect(estimateInputTokens({ messages: [], tools: [{ name: 'abcd' }] })).toBe(Math.ceil(JSON.stringify([{ name: 'abcd' }]).length / 4));
  });
});
