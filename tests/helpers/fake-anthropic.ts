/**
 * More of the fake upstream for /v1/messages tests, registered at import (see registerFakeRoute):
 *   POST .../v1/messages/count_tokens   {input_tokens}: the fake's prompt count (10 + words of
 *                                       system and messages) + 1 per tool
 *   POST .../v1/messages with directives in the last user message (else the built-in answer):
 *     [tool:NAME]   answer with a short text then a tool_use block calling NAME with {"city":"Paris"}
 *                   (stop_reason tool_use); streaming: text_delta, then input_json_delta in two pieces
 *     [thinking]    a thinking block (with a signature) before the text
 *   POST .../v1/chat/completions with [oai-tool:NAME] (else the built-in answer): "Let me check."
 *     then a tool call to NAME with {"city":"Paris"}, finish_reason tool_calls; streaming too
 * Every request's URL (query string included) is kept in `fakeUrls`.
 */
import type http from 'node:http';
import { promptTokensOf, registerFakeRoute } from './fake-upstream.js';

/** Request URLs as received (path and query), oldest first, across every fake upstream. */
export const fakeUrls: string[] = [];

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p && typeof p === 'object' && 'text' in p ? String((p as { text: unknown }).text) : '')).join(' ');
  return '';
}

function lastUserText(body: Record<string, unknown>): string {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as { role: string; content?: unknown }[];
  return textOf([...messages].reverse().find((m) => m.role === 'user')?.content);
}

const named = (text: string, name: string) => new RegExp(`\\[${name}:([A-Za-z0-9_-]+)\\]`).exec(text)?.[1] ?? null;

function sse(res: http.ServerResponse, event: string | null, data: unknown) {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

const ARGS = '{"city":"Paris"}';

registerFakeRoute('/messages/count_tokens', ({ res, req, body }) => {
  fakeUrls.push(req.url ?? '');
  const messages = (Array.isArray(body.messages) ? body.messages : []) as { content?: unknown }[];
  const tools = Array.isArray(body.tools) ? body.tools.length : 0;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens: promptTokensOf(messages, body.system) + tools }));
});

registerFakeRoute('/v1/messages', ({ req, res, body }) => {
  fakeUrls.push(req.url ?? '');
  const text = lastUserText(body);
  const tool = named(text, 'tool');
  const thinking = /\[thinking\]/.test(text);
  if (!tool && !thinking) return false;
  const messages = (Array.isArray(body.messages) ? body.messages : []) as { content?: unknown }[];
  const input = promptTokensOf(messages, body.system);
  const output = 7;
  const model = String(body.model);
  const blocks: Record<string, unknown>[] = [];
  if (thinking) blocks.push({ type: 'thinking', thinking: 'Let me think.', signature: 'sig-fake' });
  blocks.push({ type: 'text', text: tool ? 'Let me check.' : 'Thought about it.' });
  if (tool) blocks.push({ type: 'tool_use', id: 'toolu_fake1', name: tool, input: JSON.parse(ARGS) });
  const stopReason = tool ? 'tool_use' : 'end_turn';
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake' }).end(
      JSON.stringify({ id: 'msg_fake', type: 'message', role: 'assistant', model, content: blocks, stop_reason: stopReason, stop_sequence: null, usage: { input_tokens: input, output_tokens: output, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 } }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_fake' });
  sse(res, 'message_start', { type: 'message_start', message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } });
  for (const [index, block] of blocks.entries()) {
    if (block.type === 'thinking') {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: block.thinking } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: block.signature } });
    } else if (block.type === 'text') {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } });
    } else {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: ARGS.slice(0, 8) } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: ARGS.slice(8) } });
    }
    sse(res, 'content_block_stop', { type: 'content_block_stop', index });
  }
  sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: output } });
  sse(res, 'message_stop', { type: 'message_stop' });
  res.end();
});

registerFakeRoute('/v1/chat/completions', ({ req, res, body }) => {
  fakeUrls.push(req.url ?? '');
  const tool = named(lastUserText(body), 'oai-tool');
  if (!tool) return false;
  const messages = (Array.isArray(body.messages) ? body.messages : []) as { content?: unknown }[];
  const prompt = promptTokensOf(messages);
  const usage = { prompt_tokens: prompt, completion_tokens: 9, total_tokens: prompt + 9, prompt_tokens_details: { cached_tokens: 0 } };
  const model = String(body.model);
  const created = Math.floor(Date.now() / 1000);
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'chatcmpl-faketool',
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'Let me check.', refusal: null, tool_calls: [{ id: 'call_fake1', type: 'function', function: { name: tool, arguments: ARGS } }] }, logprobs: null, finish_reason: 'tool_calls' }],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: unknown, finish: string | null = null) => sse(res, null, { id: 'chatcmpl-faketool', object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  chunk({ role: 'assistant', content: 'Let me ' });
  chunk({ content: 'check.' });
  chunk({ tool_calls: [{ index: 0, id: 'call_fake1', type: 'function', function: { name: tool, arguments: '' } }] });
  chunk({ tool_calls: [{ index: 0, function: { arguments: ARGS.slice(0, 8) } }] });
  chunk({ tool_calls: [{ index: 0, function: { arguments: ARGS.slice(8) } }] });
  chunk({}, 'tool_calls');
  if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) sse(res, null, { id: 'chatcmpl-faketool', object: 'chat.completion.chunk', created, model, choices: [], usage });
  sse(res, null, '[DONE]');
  res.end();
});
