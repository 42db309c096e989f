/**
 * OpenAI's Responses API in front of a chat-completions upstream, both ways: a Responses request
 * becomes a chat request (input items, instructions, function tools and their outputs, text.format,
 * reasoning effort...), the chat completion becomes a Response object, and the chat chunk stream
 * becomes the Responses event stream (`response.created` ... `response.completed`, each event with
 * its `sequence_number`). Every request field is translated or refused with a 400 naming it and
 * the model; none is dropped silently (docs/gateway.md lists them).
 */
import { randomBytes } from 'node:crypto';
import type { TokenUsage } from '../../../../shared/models.js';
import { badRequest } from '../errors.js';
import type { ChatChunk, ChatMessage, ChatRequest } from './types.js';

type Obj = Record<string, unknown>;
/** A Responses input or output item (message, function_call, function_call_output, reasoning...). */
export type ResponseItem = Obj;

export const newId = (prefix: string) => `${prefix}_${randomBytes(24).toString('hex')}`;

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** Request fields the translation handles (the rest of a body is refused by name). */
const KNOWN = new Set([
  'model', 'input', 'instructions', 'tools', 'tool_choice', 'text', 'reasoning', 'max_output_tokens', 'temperature', 'top_p',
  'parallel_tool_calls', 'store', 'metadata', 'previous_response_id', 'stream', 'stream_options', 'user', 'safety_identifier',
  'truncation', 'include', 'service_tier', 'prompt_cache_key', 'background', 'top_logprobs', 'max_tool_calls', 'prompt', 'conversation',
  'prompt_cache_retention',
]);

const BUILT_IN_TOOLS = new Set(['web_search', 'web_search_preview', 'web_search_preview_2025_03_11', 'web_search_2025_08_26', 'file_search', 'code_interpreter', 'computer_use_preview', 'computer_use', 'image_generation', 'mcp', 'local_shell', 'shell', 'apply_patch', 'custom']);

/** The refusal of one field for a model the gateway translates to. */
function refuse(param: string, model: string, why = 'is not supported'): never {
  throw badRequest(`${param} ${why} for ${model} on /v1/responses (the gateway translates this model's calls to chat completions); remove it or use an OpenAI model`, 'unsupported_parameter');
}

export interface TranslatedRequest {
  chat: ChatRequest;
  /** The conversation's input items as sent (history from previous_response_id first), for storing. */
  items: ResponseItem[];
}

/** The input as items: a string is one user message. */
export function inputItems(input: unknown): ResponseItem[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (Array.isArray(input)) return input as ResponseItem[];
  throw badRequest('input must be a string or an array of input items');
}

function partsToChat(content: unknown, role: string, model: string, where: string): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or an array of content parts`);
  const out: Obj[] = [];
  for (const [i, part] of (content as unknown[]).entries()) {
    const at = `${where}.content[${i}]`;
    if (!isObj(part)) throw badRequest(`${at} must be an object`);
    switch (part.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        out.push({ type: 'text', text: String(part.text ?? '') });
        break;
      case 'refusal':
        out.push({ type: 'text', text: String(part.refusal ?? '') });
        break;
      case 'input_image': {
        if (role !== 'user') refuse(`${at} (input_image in a ${role} message)`, model);
        if (typeof part.image_url !== 'string') refuse(`${at}.file_id (uploaded files)`, model, 'is not supported: send image_url (a URL or a data: URL)');
        out.push({ type: 'image_url', image_url: { url: part.image_url, ...(typeof part.detail === 'string' ? { detail: part.detail } : {}) } });
        break;
      }
      case 'input_file': {
        if (role !== 'user') refuse(`${at} (input_file in a ${role} message)`, model);
        if (typeof part.file_data !== 'string') refuse(`${at}.${part.file_url !== undefined ? 'file_url' : 'file_id'}`, model, 'is not supported: send file_data (a data: URL)');
        out.push({ type: 'file', file: { file_data: part.file_data, ...(typeof part.filename === 'string' ? { filename: part.filename } : {}) } });
        break;
      }
      case 'input_audio':
        refuse(`${at} (input_audio)`, model);
        break;
      default:
        refuse(`${at}.type "${String(part.type)}"`, model);
    }
  }
  // A message of text parts only travels as a string (every chat provider takes that).
  if (out.every((p) => p.type === 'text')) return out.map((p) => p.text as string).join('');
  return out;
}

function outputText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return (content as Obj[]).map((p) => (isObj(p) ? String(p.text ?? p.refusal ?? '') : '')).join('');
}

/** Input items (history included) as chat messages: function calls join the assistant turn before them. */
export function itemsToMessages(items: ResponseItem[], model: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  let assistant: ChatMessage | null = null;
  const flush = () => {
    if (assistant) messages.push(assistant);
    assistant = null;
  };
  for (const [i, item] of items.entries()) {
    const where = `input[${i}]`;
    if (!isObj(item)) throw badRequest(`${where} must be an object`);
    const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = String(item.role ?? '');
        if (role === 'assistant') {
          flush();
          assistant = { role: 'assistant', content: outputText(item.content) };
          break;
        }
        flush();
        if (role !== 'user' && role !== 'system' && role !== 'developer') throw badRequest(`${where}.role must be user, assistant, system or developer`);
        messages.push({ role: role === 'developer' ? 'system' : role, content: partsToChat(item.content, role, model, where) });
        break;
      }
      case 'function_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw badRequest(`${where} (function_call) needs call_id and name`);
        if (!assistant) assistant = { role: 'assistant', content: null };
        const a = assistant as ChatMessage;
        (a.tool_calls ??= []).push({ id: item.call_id, type: 'function', function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : JSON.stringify(item.arguments ?? {}) } });
        break;
      }
      case 'function_call_output': {
        flush();
        if (typeof item.call_id !== 'string') throw badRequest(`${where} (function_call_output) needs call_id`);
        const output = typeof item.output === 'string' ? item.output : partsToChat(item.output, 'tool', model, where);
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: typeof output === 'string' ? output : JSON.stringify(output) });
        break;
      }
      case 'reasoning':
        // Reasoning of an earlier turn: chat providers take no such input; the turn's answer carries on.
        break;
      case 'item_reference':
        refuse(`${where} (item_reference)`, model, 'is not supported: send the item itself, or previous_response_id');
        break;
      default:
        refuse(`${where}.type "${String(type)}"`, model);
    }
  }
  flush();
  return messages;
}

function toolsToChat(tools: unknown, model: string): Obj[] {
  if (!Array.isArray(tools)) throw badRequest('tools must be an array');
  return (tools as unknown[]).map((t, i) => {
    if (!isObj(t)) throw badRequest(`tools[${i}] must be an object`);
    if (t.type !== 'function') {
      const kind = String(t.type);
      refuse(`tools[${i}] (built-in tool "${kind}")`, model, BUILT_IN_TOOLS.has(kind) ? 'is an OpenAI built-in tool and is not available' : 'is not supported');
    }
    if (typeof t.name !== 'string' || !t.name) throw badRequest(`tools[${i}].name is required`);
    const fn: Obj = { name: t.name, parameters: t.parameters ?? { type: 'object', properties: {} } };
    if (typeof t.description === 'string') fn.description = t.description;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoiceToChat(choice: unknown, model: string): unknown {
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  if (isObj(choice) && choice.type === 'function' && typeof choice.name === 'string') return { type: 'function', function: { name: choice.name } };
  if (isObj(choice) && choice.type === 'allowed_tools') refuse('tool_choice (allowed_tools)', model);
  return refuse(`tool_choice ${JSON.stringify(choice)}`, model);
}

function formatToChat(text: unknown, model: string): unknown {
  if (!isObj(text)) throw badRequest('text must be an object');
  for (const k of Object.keys(text)) if (k !== 'format' && k !== 'verbosity') refuse(`text.${k}`, model);
  if (text.verbosity !== undefined && text.verbosity !== null && text.verbosity !== 'medium') refuse('text.verbosity', model);
  const f = text.format;
  if (f === undefined || f === null) return undefined;
  if (!isObj(f)) throw badRequest('text.format must be an object');
  if (f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'json_object' };
  if (f.type === 'json_schema') {
    if (typeof f.name !== 'string' || !isObj(f.schema)) throw badRequest('text.format (json_schema) needs name and schema');
    const js: Obj = { name: f.name, schema: f.schema };
    if (typeof f.description === 'string') js.description = f.description;
    if (typeof f.strict === 'boolean') js.strict = f.strict;
    return { type: 'json_schema', json_schema: js };
  }
  return refuse(`text.format.type "${String(f.type)}"`, model);
}

/**
 * A Responses request as a chat request for `model` (the routed model, named in refusals), with
 * `history` (the stored conversation of previous_response_id) before this call's input.
 */
export function responsesToChat(body: Obj, model: string, history: ResponseItem[] = []): TranslatedRequest {
  for (const k of Object.keys(body)) if (!KNOWN.has(k) && body[k] !== undefined) refuse(k, model);
  const none = (k: string, ok: (v: unknown) => boolean) => {
    if (body[k] !== undefined && body[k] !== null && !ok(body[k])) refuse(k, model);
  };
  none('background', (v) => v === false);
  none('top_logprobs', (v) => v === 0);
  none('max_tool_calls', () => false);
  none('prompt', () => false);
  none('conversation', () => false);
  none('prompt_cache_retention', () => false);
  none('truncation', (v) => v === 'disabled');
  none('service_tier', (v) => v === 'auto' || v === 'default');
  // Encrypted reasoning is never produced for these models, so asking for it changes nothing.
  if (body.include !== undefined && body.include !== null) {
    if (!Array.isArray(body.include)) throw badRequest('include must be an array');
    for (const v of body.include as unknown[]) if (v !== 'reasoning.encrypted_content') refuse(`include "${String(v)}"`, model);
  }
  const items = [...history, ...inputItems(body.input)];
  const messages: ChatMessage[] = [];
  if (body.instructions !== undefined && body.instructions !== null) {
    if (typeof body.instructions !== 'string') throw badRequest('instructions must be a string');
    messages.push({ role: 'system', content: body.instructions });
  }
  messages.push(...itemsToMessages(items, model));
  if (messages.length === 0) throw badRequest('input is required');
  const chat: ChatRequest = { model, messages };
  if (Array.isArray(body.tools) && body.tools.length > 0) chat.tools = toolsToChat(body.tools, model);
  else if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) throw badRequest('tools must be an array');
  if (body.tool_choice !== undefined && body.tool_choice !== null) chat.tool_choice = toolChoiceToChat(body.tool_choice, model);
  if (body.text !== undefined && body.text !== null) {
    const rf = formatToChat(body.text, model);
    if (rf) chat.response_format = rf;
  }
  if (body.reasoning !== undefined && body.reasoning !== null) {
    if (!isObj(body.reasoning)) throw badRequest('reasoning must be an object');
    for (const k of Object.keys(body.reasoning)) if (k !== 'effort' && k !== 'summary' && k !== 'generate_summary') refuse(`reasoning.${k}`, model);
    if (typeof body.reasoning.effort === 'string') chat.reasoning_effort = body.reasoning.effort;
  }
  if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) {
    if (typeof body.max_output_tokens !== 'number' || !Number.isInteger(body.max_output_tokens) || body.max_output_tokens < 1) throw badRequest('max_output_tokens must be a positive integer');
    chat.max_tokens = body.max_output_tokens;
  }
  for (const k of ['temperature', 'top_p'] as const) {
    if (body[k] === undefined || body[k] === null) continue;
    if (typeof body[k] !== 'number') throw badRequest(`${k} must be a number`);
    chat[k] = body[k];
  }
  if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null) {
    if (typeof body.parallel_tool_calls !== 'boolean') throw badRequest('parallel_tool_calls must be a boolean');
    if (chat.tools) chat.parallel_tool_calls = body.parallel_tool_calls;
  }
  const user = typeof body.safety_identifier === 'string' ? body.safety_identifier : typeof body.user === 'string' ? body.user : undefined;
  if (user) chat.user = user;
  // A caching hint: the provider's chat adapter honours or refuses it (Anthropic refuses it).
  if (typeof body.prompt_cache_key === 'string') chat.prompt_cache_key = body.prompt_cache_key;
  return { chat, items };
}

/** The Responses usage object for metered usage (cached and reasoning tokens included in their totals). */
export function responsesUsage(u: TokenUsage, reasoningTokens = 0) {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

/** Usage from a Responses usage object (OpenAI's), or null when it has none. */
export function usageFromResponses(u: unknown): TokenUsage | null {
  if (!isObj(u)) return null;
  const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(Math.floor(v), 2_000_000_000) : null);
  const input = count(u.input_tokens);
  const output = count(u.output_tokens);
  if (input === null && output === null) return null;
  const details = isObj(u.input_tokens_details) ? u.input_tokens_details : {};
  // Reasoning tokens are part of output_tokens (output_tokens_details.reasoning_tokens): charged as output.
  return { inputTokens: input ?? 0, outputTokens: output ?? 0, cachedTokens: count(details.cached_tokens) ?? 0 };
}

/** What the Response object echoes of the request (OpenAI's shape). */
export interface ResponseEcho {
  id: string;
  createdAt: number;
  model: string;
  body: Obj;
  store: boolean;
}

function shell(echo: ResponseEcho, status: string): Obj {
  const b = echo.body;
  const reasoning = isObj(b.reasoning) ? b.reasoning : {};
  return {
    id: echo.id,
    object: 'response',
    created_at: echo.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: typeof b.instructions === 'string' ? b.instructions : null,
    max_output_tokens: typeof b.max_output_tokens === 'number' ? b.max_output_tokens : null,
    max_tool_calls: null,
    model: echo.model,
    output: [],
    parallel_tool_calls: b.parallel_tool_calls !== false,
    previous_response_id: typeof b.previous_response_id === 'string' ? b.previous_response_id : null,
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    service_tier: 'default',
    store: echo.store,
    temperature: typeof b.temperature === 'number' ? b.temperature : 1,
    text: { format: isObj(b.text) && isObj(b.text.format) ? b.text.format : { type: 'text' }, verbosity: 'medium' },
    tool_choice: b.tool_choice ?? 'auto',
    tools: Array.isArray(b.tools) ? b.tools : [],
    top_logprobs: 0,
    top_p: typeof b.top_p === 'number' ? b.top_p : 1,
    truncation: 'disabled',
    usage: null,
    user: typeof b.user === 'string' ? b.user : null,
    metadata: isObj(b.metadata) ? b.metadata : {},
  };
}

function ending(finishReason: string | null | undefined): { status: string; incomplete_details: Obj | null } {
  if (finishReason === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

const messageItem = (id: string, text: string, status: string, refusal?: string): Obj => ({
  id,
  type: 'message',
  status,
  role: 'assistant',
  content: refusal ? [{ type: 'refusal', refusal }] : [{ type: 'output_text', text, annotations: [], logprobs: [] }],
});

function reasoningTokensOf(completion: Obj): number {
  const usage = isObj(completion.usage) ? completion.usage : {};
  const details = isObj(usage.completion_tokens_details) ? usage.completion_tokens_details : {};
  return typeof details.reasoning_tokens === 'number' ? details.reasoning_tokens : 0;
}

/** A chat.completion (from the upstream's adapter) as a Response object. */
export function chatToResponse(completion: Obj, usage: TokenUsage, echo: ResponseEcho): Obj {
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : null) as Obj | null;
  const message = (isObj(choice?.message) ? choice.message : {}) as Obj;
  const output: Obj[] = [];
  const reasoningText = typeof message.reasoning_content === 'string' ? message.reasoning_content : '';
  if (reasoningText) output.push({ id: newId('rs'), type: 'reasoning', summary: [{ type: 'summary_text', text: reasoningText }] });
  const text = outputText(message.content);
  const refusal = typeof message.refusal === 'string' && message.refusal ? message.refusal : undefined;
  if (text || refusal) output.push(messageItem(newId('msg'), text, 'completed', refusal));
  for (const call of Array.isArray(message.tool_calls) ? (message.tool_calls as Obj[]) : []) {
    const fn = (isObj(call.function) ? call.function : {}) as Obj;
    output.push({ id: newId('fc'), type: 'function_call', status: 'completed', call_id: String(call.id ?? newId('call')), name: String(fn.name ?? ''), arguments: String(fn.arguments ?? '') });
  }
  if (output.length === 0) output.push(messageItem(newId('msg'), '', 'completed'));
  const end = ending(choice?.finish_reason as string | null | undefined);
  return { ...shell(echo, end.status), incomplete_details: end.incomplete_details, output, usage: responsesUsage(usage, reasoningTokensOf(completion)) };
}

/** One server-sent event of the Responses stream. */
export interface ResponsesEvent {
  type: string;
  sequence_number: number;
  [key: string]: unknown;
}

export const sseOf = (e: ResponsesEvent) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;

interface OpenItem {
  index: number;
  item: Obj;
  kind: 'message' | 'function_call';
  text: string;
}

/**
 * Chat chunks in, Responses events out. Text opens a message item; each tool call its own
 * function_call item (the open message closes first); `finish(usage)` closes what is open and
 * ends with response.completed (or response.incomplete after a length stop).
 */
export class ResponsesStreamTranslator {
  private seq = 0;
  private readonly output: Obj[] = [];
  private message: OpenItem | null = null;
  private readonly calls = new Map<number, OpenItem>();
  private finishReason: string | null = null;
  private reasoningTokens = 0;
  private chars = 0;

  constructor(private readonly echo: ResponseEcho) {}

  private event(type: string, fields: Obj): ResponsesEvent {
    return { type, sequence_number: this.seq++, ...fields };
  }

  start(): ResponsesEvent[] {
    const response = shell(this.echo, 'in_progress');
    return [this.event('response.created', { response }), this.event('response.in_progress', { response })];
  }

  private closeMessage(out: ResponsesEvent[]) {
    const m = this.message;
    if (!m) return;
    this.message = null;
    const id = m.item.id as string;
    out.push(this.event('response.output_text.done', { item_id: id, output_index: m.index, content_index: 0, text: m.text, logprobs: [] }));
    out.push(this.event('response.content_part.done', { item_id: id, output_index: m.index, content_index: 0, part: { type: 'output_text', text: m.text, annotations: [], logprobs: [] } }));
    const done = messageItem(id, m.text, 'completed');
    this.output[m.index] = done;
    out.push(this.event('response.output_item.done', { output_index: m.index, item: done }));
  }

  private closeCall(c: OpenItem, out: ResponsesEvent[]) {
    const done = { ...c.item, status: 'completed', arguments: c.text };
    this.output[c.index] = done;
    out.push(this.event('response.function_call_arguments.done', { item_id: c.item.id, output_index: c.index, name: c.item.name, arguments: c.text }));
    out.push(this.event('response.output_item.done', { output_index: c.index, item: done }));
  }

  /** Events for one chat chunk. */
  push(chunk: ChatChunk): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    const usage = isObj(chunk.usage) ? chunk.usage : null;
    if (usage && isObj(usage.completion_tokens_details) && typeof usage.completion_tokens_details.reasoning_tokens === 'number') this.reasoningTokens = usage.completion_tokens_details.reasoning_tokens;
    for (const choice of chunk.choices ?? []) {
      const delta = (choice.delta ?? {}) as Obj;
      if (typeof delta.content === 'string' && delta.content) {
        if (!this.message) {
          const index = this.output.length;
          const item = { id: newId('msg'), type: 'message', status: 'in_progress', role: 'assistant', content: [] };
          this.output.push(item);
          this.message = { index, item, kind: 'message', text: '' };
          out.push(this.event('response.output_item.added', { output_index: index, item }));
          out.push(this.event('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
        }
        this.message.text += delta.content;
        this.chars += delta.content.length;
        out.push(this.event('response.output_text.delta', { item_id: this.message.item.id, output_index: this.message.index, content_index: 0, delta: delta.content, logprobs: [] }));
      }
      for (const tc of Array.isArray(delta.tool_calls) ? (delta.tool_calls as Obj[]) : []) {
        const key = typeof tc.index === 'number' ? tc.index : 0;
        const fn = (isObj(tc.function) ? tc.function : {}) as Obj;
        let call = this.calls.get(key);
        if (!call) {
          this.closeMessage(out);
          const index = this.output.length;
          const item = { id: newId('fc'), type: 'function_call', status: 'in_progress', call_id: typeof tc.id === 'string' ? tc.id : newId('call'), name: typeof fn.name === 'string' ? fn.name : '', arguments: '' };
          this.output.push(item);
          call = { index, item, kind: 'function_call', text: '' };
          this.calls.set(key, call);
          out.push(this.event('response.output_item.added', { output_index: index, item }));
        }
        if (typeof fn.arguments === 'string' && fn.arguments) {
          call.text += fn.arguments;
          this.chars += fn.arguments.length;
          out.push(this.event('response.function_call_arguments.delta', { item_id: call.item.id, output_index: call.index, delta: fn.arguments }));
        }
      }
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
    return out;
  }

  /** The characters delivered so far (text and tool arguments), for estimates. */
  get deliveredChars(): number {
    return this.chars;
  }

  /** Closes the open items and ends the stream with the final response. */
  finish(usage: TokenUsage): { events: ResponsesEvent[]; response: Obj } {
    const out: ResponsesEvent[] = [];
    this.closeMessage(out);
    for (const c of [...this.calls.values()].sort((a, b) => a.index - b.index)) this.closeCall(c, out);
    this.calls.clear();
    const end = ending(this.finishReason);
    const response = { ...shell(this.echo, end.status), incomplete_details: end.incomplete_details, output: this.output, usage: responsesUsage(usage, this.reasoningTokens) };
    out.push(this.event(end.status === 'completed' ? 'response.completed' : 'response.incomplete', { response }));
    return { events: out, response };
  }

  /** A mid-stream failure, as the Responses stream reports one. */
  fail(code: string, message: string): ResponsesEvent {
    return this.event('error', { code, message, param: null });
  }
}
