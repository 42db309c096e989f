/** The request log's conversation view reads the three request shapes the gateway serves, and embeddings. */
import { describe, expect, it } from 'vitest';
import { readConversation } from '../../client/src/pages/log-conversation.js';

describe('readConversation', () => {
  it('reads chat completions: roles, images, tool calls and tool results', () => {
    const c = readConversation(
      'chat.completions',
      {
        model: 'gpt-4o',
        tools: [{ type: 'function', function: { name: 'get_weather' } }],
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'Weather here?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' },
        ],
      },
      { choices: [{ index: 0, message: { role: 'assistant', content: 'Sunny in Paris.' }, finish_reason: 'stop' }] },
    )!;
    expect(c.format).toBe('chat.completions');
    expect(c.tools).toEqual(['get_weather']);
    expect(c.request.map((m) => [m.role, m.parts.map((p) => p.kind)])).toEqual([
      ['system', ['text']],
      ['user', ['text', 'image']],
      ['assistant', ['toolCall']],
      ['tool', ['toolResult']],
    ]);
    expect(c.request[2]!.parts[0]).toEqual({ kind: 'toolCall', id: 'call_1', name: 'get_weather', args: '{\n  "city": "Paris"\n}' });
    expect(c.request[1]!.parts[1]).toEqual({ kind: 'image', url: 'data:image/png;base64,AAAA', inline: true });
    expect(c.response).toEqual([{ role: 'assistant', parts: [{ kind: 'text', text: 'Sunny in Paris.' }] }]);
    expect(c.notes).toEqual(['Stopped: stop']);
  });

  it('reads a streamed answer as the gateway keeps it', () => {
    const c = readConversation(undefined, { messages: [{ role: 'user', content: 'hi' }] }, { content: 'Hello!', finish_reason: 'stop' })!;
    expect(c.response[0]!.parts).toEqual([{ kind: 'text', text: 'Hello!' }]);
    expect(c.notes).toContain('Streamed');
  });

  it('reads Anthropic messages: system, content blocks, tool_use and tool_result', () => {
    const c = readConversation(
      'messages',
      {
        system: [{ type: 'text', text: 'You are terse.' }],
        tools: [{ name: 'lookup' }],
        messages: [
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: 'BBBB' } }, { type: 'text', text: 'What is it?' }] },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'lookup', input: { q: 'cat' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'a cat' }], is_error: false }] },
        ],
      },
      { type: 'message', role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm' }, { type: 'text', text: 'A cat.' }], stop_reason: 'end_turn' },
    )!;
    expect(c.request.map((m) => [m.role, m.parts.map((p) => p.kind)])).toEqual([
      ['system', ['text']],
      ['user', ['image', 'text']],
      ['assistant', ['toolCall']],
      ['user', ['toolResult']],
    ]);
    expect(c.request[1]!.parts[0]).toEqual({ kind: 'image', url: 'data:image/jpeg;base64,BBBB', inline: true });
    expect(c.request[3]!.parts[0]).toEqual({ kind: 'toolResult', id: 'tu_1', text: 'a cat', isError: false });
    expect(c.response[0]!.parts.map((p) => p.kind)).toEqual(['thinking', 'text']);
    expect(c.notes).toEqual(['Stopped: end_turn']);
  });

  it('reads Responses input items and output items', () => {
    const c = readConversation(
      'responses',
      {
        instructions: 'Be kind.',
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'Add 2+2' }, { type: 'input_image', image_url: 'https://example.com/a.png' }] },
          { type: 'function_call', call_id: 'c1', name: 'add', arguments: '{"a":2,"b":2}' },
          { type: 'function_call_output', call_id: 'c1', output: '4' },
        ],
      },
      { status: 'completed', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is 4.' }] }] },
    )!;
    expect(c.request.map((m) => [m.role, m.parts.map((p) => p.kind)])).toEqual([
      ['system', ['text']],
      ['user', ['text', 'image']],
      ['assistant', ['toolCall']],
      ['tool', ['toolResult']],
    ]);
    expect(c.request[1]!.parts[1]).toEqual({ kind: 'image', url: 'https://example.com/a.png', inline: false });
    expect(c.response[0]!.parts).toEqual([{ kind: 'text', text: 'It is 4.' }]);
    expect(readConversation('responses', { input: 'Hello' }, null)!.request).toEqual([{ role: 'user', parts: [{ kind: 'text', text: 'Hello' }] }]);
  });

  it('reads embeddings, and leaves unknown or truncated bodies to the raw view', () => {
    const e = readConversation('embeddings', { input: ['a', 'b'] }, { object: 'list', data: [{ embedding: [0, 1, 2] }, { embedding: [3, 4, 5] }] })!;
    expect(e.request).toHaveLength(2);
    expect(e.notes).toEqual(['2 vectors of 3 dimensions']);
    expect(readConversation(undefined, { foo: 1 }, { bar: 2 })).toBeNull();
    expect(readConversation(undefined, null, null)).toBeNull();
    expect(readConversation('chat.completions', { truncated: true, preview: '{"messages":[' }, null)).toBeNull();
  });
});
