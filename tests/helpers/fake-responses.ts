/**
 * More of the fake upstream for /v1/responses tests, registered at import (see registerFakeRoute):
 *   POST .../v1/responses   OpenAI's Responses API, streaming and not. The answer is "w0 w1 ..."
 *     ([chunks:N] words, default 5); input_tokens = 10 + words of instructions and input texts
 *     (+ [cached:N], reported as cached); output_tokens = chunks + [reasoning:N] (reasoning tokens are
 *     part of the output, as OpenAI reports them). [tool:NAME] with tools: a function_call to NAME with
 *     {"city":"Paris"}; a forced tool_choice: a call to that function with arguments sampled from its
 *     schema; text.format json_schema / json_object: a JSON answer sampled from the schema.
 *     [status:N] fails with that status; [truncate] ends the stream after the first delta; [slow:MS]
 *     waits between deltas.
 *   POST .../v1/messages (Anthropic) and .../v1/chat/completions (OpenAI chat) when the request
 *     forces a tool (structured output through a forced tool, withStructuredOutput) or asks for
 *     response_format json, or has [tool:NAME] with tools: a tool call / JSON answer as above (else
 *     the built-in answer of fake-upstream.ts).
 * Every answer's usage is kept in `fakeUsage` (oldest first) so tests compare the request log with it.
 */
import type http from 'node:http';
import { promptTokensOf, registerFakeRoute } from './fake-upstream.js';

type Obj = Record<string, unknown>;
export const ARGS = '{"city":"Paris"}';

/** The usage each fake answer reported: input, cached, output (reasoning included). */
export const fakeUsage: { api: string; input: number; cached: number; output: number; reasoning: number }[] = [];

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (isObj(p) && typeof p.text === 'string' ? p.text : '')).join(' ');
  return '';
}

const directive = (text: string, name: string) => {
  const m = new RegExp(`\\[${name}(?::([A-Za-z0-9_-]+))?\\]`).exec(text);
  return m ? (m[1] ?? '1') : null;
};

/** A value that satisfies a (simple) JSON schema: objects with every property, strings, numbers, enums... */
export function sampleOf(schema: unknown): unknown {
  if (!isObj(schema)) return null;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if ('const' in schema) return schema.const;
  const anyOf = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(anyOf)) return sampleOf(anyOf.find((s) => isObj(s) && s.type !== 'null') ?? anyOf[0]);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const props = isObj(schema.properties) ? schema.properties : {};
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, sampleOf(v)]));
    }
    case 'array':
      return [sampleOf(schema.items)];
    case 'string':
      return 'Paris';
    case 'integer':
    case 'number':
      return 3;
    case 'boolean':
      return true;
    default:
      return isObj(schema.properties) ? sampleOf({ ...schema, type: 'object' }) : null;
  }
}

function sse(res: http.ServerResponse, event: string | null, data: unknown) {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

// ---------------------------------------------------------------- OpenAI Responses

function responsesInputText(body: Obj): { all: string; last: string } {
  const parts: string[] = [];
  let last = '';
  const items = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : Array.isArray(body.input) ? (body.input as Obj[]) : [];
  for (const item of items) {
    if (!isObj(item)) continue;
    if (item.type === 'function_call_output') parts.push(String(item.output ?? ''));
    const text = textOf(item.content);
    if (text) parts.push(text);
    if ((item.type === 'message' || item.type === undefined) && item.role === 'user') last = text;
  }
  return { all: [typeof body.instructions === 'string' ? body.instructions : '', ...parts].join(' '), last };
}

registerFakeRoute('/v1/responses', async ({ res, body }) => {
  const { all, last } = responsesInputText(body);
  const status = directive(last, 'status');
  if (status) {
    res.writeHead(Number(status), { 'content-type': 'application/json', 'retry-after': '7' }).end(JSON.stringify({ error: { message: `fake upstream failure ${status}`, type: 'server_error' } }));
    return;
  }
  const chunks = Number(directive(last, 'chunks') ?? 5);
  const cached = Number(directive(last, 'cached') ?? 0);
  const reasoning = Number(directive(last, 'reasoning') ?? 0);
  const input = 10 + words(all) + cached;
  const model = String(body.model);
  const tools = Array.isArray(body.tools) ? (body.tools as Obj[]) : [];
  const choice = body.tool_choice;
  const forced = isObj(choice) && choice.type === 'function' ? String(choice.name) : null;
  const inputs = Array.isArray(body.input) ? (body.input as Obj[]) : [];
  const answered = inputs.at(-1)?.type === 'function_call_output';
  const toolName = forced ?? (tools.length > 0 && !answered ? directive(last, 'tool') : null);
  const format = isObj(body.text) && isObj(body.text.format) ? body.text.format : null;
  let text = Array.from({ length: chunks }, (_, i) => `w${i} `).join('');
  let output = chunks;
  if (format?.type === 'json_schema') text = JSON.stringify(sampleOf(format.schema));
  else if (format?.type === 'json_object') text = '{"answer":"Paris"}';
  const id = `resp_fake${Math.random().toString(36).slice(2, 10)}`;
  const items: Obj[] = [];
  let args = '';
  if (toolName) {
    const tool = tools.find((t) => t.name === toolName);
    args = forced ? JSON.stringify(sampleOf(tool?.parameters)) : ARGS;
    items.push({ id: 'fc_fake1', type: 'function_call', status: 'completed', call_id: 'call_fake1', name: toolName, arguments: args });
    output = 9;
  } else {
    items.push({ id: 'msg_fake1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] });
  }
  const usage = { input_tokens: input, input_tokens_details: { cached_tokens: cached }, output_tokens: output + reasoning, output_tokens_details: { reasoning_tokens: reasoning }, total_tokens: input + output + reasoning };
  fakeUsage.push({ api: 'responses', input, cached, output: output + reasoning, reasoning });
  const response = (status: string, out: Obj[], u: Obj | null) => ({
    id, object: 'response', created_at: Math.floor(Date.now() / 1000), status, error: null, incomplete_details: null, instructions: body.instructions ?? null,
    model, output: out, parallel_tool_calls: true, previous_response_id: body.previous_response_id ?? null, store: body.store ?? true, tools, usage: u, metadata: {},
    text: { format: format ?? { type: 'text' } }, tool_choice: choice ?? 'auto', temperature: 1, top_p: 1, truncation: 'disabled', reasoning: { effort: null, summary: null },
  });
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response('completed', items, usage)));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let seq = 0;
  const send = (type: string, data: Obj) => sse(res, type, { type, sequence_number: seq++, ...data });
  send('response.created', { response: response('in_progress', [], null) });
  send('response.in_progress', { response: response('in_progress', [], null) });
  const item = items[0]!;
  if (item.type === 'function_call') {
    send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', arguments: '' } });
    send('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta: args.slice(0, 8) });
    send('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta: args.slice(8) });
    send('response.function_call_arguments.done', { item_id: item.id, output_index: 0, arguments: args });
  } else {
    send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
    send('response.content_part.added', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    const pieces = format ? [text] : text.match(/w\d+ /g) ?? [text];
    const slow = Number(directive(last, 'slow') ?? 0);
    for (const [i, delta] of pieces.entries()) {
      if (slow) await new Promise((r) => setTimeout(r, slow));
      if (res.destroyed) return;
      send('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta, logprobs: [] });
      if (i === 0 && directive(last, 'truncate')) {
        res.end();
        return;
      }
    }
    send('response.output_text.done', { item_id: item.id, output_index: 0, content_index: 0, text, logprobs: [] });
    send('response.content_part.done', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
  }
  send('response.output_item.done', { output_index: 0, item });
  send('response.completed', { response: response('completed', items, usage) });
  res.end();
});

// ---------------------------------------------------------------- Anthropic Messages

function lastUserText(messages: Obj[]): string {
  return textOf([...messages].reverse().find((m) => m.role === 'user')?.content);
}

registerFakeRoute('/v1/messages', ({ res, body }) => {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Obj[];
  const tools = Array.isArray(body.tools) ? (body.tools as Obj[]) : [];
  const choice = isObj(body.tool_choice) ? body.tool_choice : null;
  const forced = choice?.type === 'tool' ? String(choice.name) : null;
  const name = forced ?? (tools.length > 0 ? directive(lastUserText(messages), 'tool') : null);
  if (!name) return false;
  const tool = tools.find((t) => t.name === name);
  const args = forced ? JSON.stringify(sampleOf(tool?.input_schema)) : ARGS;
  const input = promptTokensOf(messages as { content?: unknown }[], body.system);
  const output = 9;
  fakeUsage.push({ api: 'messages', input, cached: 0, output, reasoning: 0 });
  const model = String(body.model);
  const blocks: Obj[] = [...(forced ? [] : [{ type: 'text', text: 'Let me check.' }]), { type: 'tool_use', id: 'toolu_fake1', name, input: JSON.parse(args) }];
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'msg_fake', type: 'message', role: 'assistant', model, content: blocks, stop_reason: 'tool_use', stop_sequence: null, usage: { input_tokens: input, output_tokens: output } }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  sse(res, 'message_start', { type: 'message_start', message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], usage: { input_tokens: input, output_tokens: 1 } } });
  for (const [index, block] of blocks.entries()) {
    if (block.type === 'text') {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } });
    } else {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: args.slice(0, 5) } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: args.slice(5) } });
    }
    sse(res, 'content_block_stop', { type: 'content_block_stop', index });
  }
  sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: output } });
  sse(res, 'message_stop', { type: 'message_stop' });
  res.end();
});

// ---------------------------------------------------------------- OpenAI chat completions

registerFakeRoute('/v1/chat/completions', ({ res, body }) => {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Obj[];
  const tools = Array.isArray(body.tools) ? (body.tools as Obj[]) : [];
  const choice = isObj(body.tool_choice) ? body.tool_choice : null;
  const forced = choice?.type === 'function' && isObj(choice.function) ? String(choice.function.name) : null;
  const answered = messages.at(-1)?.role === 'tool';
  const name = forced ?? (tools.length > 0 && !answered ? directive(lastUserText(messages), 'tool') : null);
  const rf = isObj(body.response_format) ? body.response_format : null;
  const json = rf?.type === 'json_schema' ? JSON.stringify(sampleOf(isObj(rf.json_schema) ? rf.json_schema.schema : null)) : rf?.type === 'json_object' ? '{"answer":"Paris"}' : null;
  if (!name && json === null) return false;
  const fn = tools.map((t) => (isObj(t.function) ? t.function : {})).find((f) => f.name === name);
  const args = forced ? JSON.stringify(sampleOf(fn?.parameters)) : ARGS;
  const prompt = promptTokensOf(messages as { content?: unknown }[]);
  const usage = { prompt_tokens: prompt, completion_tokens: 9, total_tokens: prompt + 9, prompt_tokens_details: { cached_tokens: 0 } };
  fakeUsage.push({ api: 'chat', input: prompt, cached: 0, output: 9, reasoning: 0 });
  const model = String(body.model);
  const created = Math.floor(Date.now() / 1000);
  const calls = name ? [{ id: 'call_fake1', type: 'function', function: { name, arguments: args } }] : undefined;
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'chatcmpl-fakejson', object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: calls ? null : json, refusal: null, ...(calls ? { tool_calls: calls } : {}) }, logprobs: null, finish_reason: calls ? 'tool_calls' : 'stop' }],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: unknown, finish: string | null = null) => sse(res, null, { id: 'chatcmpl-fakejson', object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  chunk({ role: 'assistant', content: calls ? null : json });
  if (calls) {
    chunk({ tool_calls: [{ index: 0, id: 'call_fake1', type: 'function', function: { name, arguments: '' } }] });
    chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(0, 5) } }] });
    chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(5) } }] });
  }
  chunk({}, calls ? 'tool_calls' : 'stop');
  if (isObj(body.stream_options) && body.stream_options.include_usage) sse(res, null, { id: 'chatcmpl-fakejson', object: 'chat.completion.chunk', created, model, choices: [], usage });
  sse(res, null, '[DONE]');
  res.end();
});
