/**
 * Anthropic's Messages API in front of OpenAI-compatible providers, both ways: a Messages request
 * becomes an OpenAI chat request (every field honoured, translated, or refused with a 400 naming it
 * and the model), a chat.completion becomes a Messages `message`, and a chat chunk stream becomes
 * Anthropic's event stream (message_start, content_block_start/delta/stop, message_delta with
 * stop_reason and usage, message_stop). Also the Anthropic error shape and the count_tokens estimate.
 * Claude models never come through here: their requests pass through natively (messages.ts).
 */
import { randomBytes } from 'node:crypto';
import type { RouteProvider, TokenUsage } from '../../../../shared/models.js';
import { badRequest, upstreamFailed } from '../errors.js';
import { toCount, type ChatChunk, type ChatMessage, type ChatRequest } from './types.js';

export interface MessagesRequest {
  model: string;
  messages: unknown[];
  max_tokens?: unknown;
  stream?: boolean;
  [key: string]: unknown;
}

/** Where a translated request goes: the provider (what it accepts) and the model (named in refusals). */
export interface TranslationTarget {
  provider: RouteProvider;
  /** The model as logged (catalog id or `<custom>/<model>`), named in refusals. */
  model: string;
  upstreamModel: string;
}

type Block = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Errors in Anthropic's shape
// ---------------------------------------------------------------------------------------------

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

/** Anthropic's error type for an HTTP status (the statuses are the gateway's, as on the OpenAI-shaped endpoints). */
export function anthropicErrorType(status: number): AnthropicErrorType {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function anthropicErrorBody(status: number, message: string) {
  return { type: 'error' as const, error: { type: anthropicErrorType(status), message } };
}

/** One server-sent event as Anthropic writes them. */
export function sseEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

// ---------------------------------------------------------------------------------------------
// Request: Messages -> chat completions
// ---------------------------------------------------------------------------------------------

const refuse = (param: string, target: TranslationTarget, why = '') =>
  badRequest(`${param} is not supported for ${target.model} on /v1/messages${why ? `: ${why}` : ''}`, 'unsupported_parameter');

const TOP_LEVEL = new Set(['model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k', 'metadata', 'tools', 'tool_choice', 'thinking', 'service_tier']);

/** Providers whose chat API takes a PDF as a `file` content part (base64 `file_data`). */
const TAKES_PDF = new Set<RouteProvider>(['openai', 'azure', 'custom']);
/** Providers whose OpenAI-compatible API takes `top_k`. */
const TAKES_TOP_K = new Set<RouteProvider>(['alibaba', 'custom']);

/** Whether the model reasons (takes `reasoning_effort`). A custom server is trusted to know its model. */
export function reasons(provider: RouteProvider, upstreamModel: string): boolean {
  const m = upstreamModel.toLowerCase();
  switch (provider) {
    case 'custom':
      return true;
    case 'openai':
    case 'azure':
      return /^(o\d|gpt-5)/.test(m);
    case 'google':
      return /gemini-(2\.5|[3-9])/.test(m);
    case 'bedrock':
      return m.includes('gpt-oss');
    default:
      return false;
  }
}

/** Anthropic's thinking budget as an OpenAI reasoning effort. */
export function effortOf(budget: number): 'low' | 'medium' | 'high' {
  return budget < 4096 ? 'low' : budget < 16_384 ? 'medium' : 'high';
}

function textOfBlocks(content: unknown, where: string, target: TranslationTarget): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${where} must be a string or an array of text blocks`);
  return content
    .map((b: Block, i) => {
      if (!b || typeof b !== 'object' || b.type !== 'text') throw refuse(`${where}[${i}] (type ${String(b?.type)})`, target, 'only text blocks can go there');
      return String(b.text ?? '');
    })
    .join('\n\n');
}

function imagePart(block: Block, where: string, target: TranslationTarget): Record<string, unknown> {
  const source = (block.source ?? {}) as Block;
  if (source.type === 'base64') return { type: 'image_url', image_url: { url: `data:${String(source.media_type)};base64,${String(source.data ?? '')}` } };
  if (source.type === 'url') return { type: 'image_url', image_url: { url: String(source.url ?? '') } };
  throw refuse(`${where}.source.type "${String(source.type)}"`, target, 'images must be base64 or url sources (Anthropic file ids serve Claude models only)');
}

function documentParts(block: Block, where: string, target: TranslationTarget): Record<string, unknown>[] {
  const citations = block.citations as { enabled?: unknown } | undefined;
  if (citations?.enabled) throw refuse(`${where}.citations`, target);
  const source = (block.source ?? {}) as Block;
  const parts: Record<string, unknown>[] = [];
  if (typeof block.context === 'string' && block.context) parts.push({ type: 'text', text: block.context });
  if (source.type === 'text') {
    parts.push({ type: 'text', text: String(source.data ?? '') });
  } else if (source.type === 'content') {
    const inner = source.content;
    parts.push({ type: 'text', text: textOfBlocks(inner, `${where}.source.content`, target) });
  } else if (source.type === 'base64') {
    if (source.media_type !== 'application/pdf') throw refuse(`${where}.source.media_type "${String(source.media_type)}"`, target);
    if (!TAKES_PDF.has(target.provider)) throw refuse(`${where} (a PDF document)`, target, `the provider's OpenAI-compatible API takes no PDF files`);
    const title = typeof block.title === 'string' && block.title ? block.title : 'document.pdf';
    parts.push({ type: 'file', file: { filename: title.toLowerCase().endsWith('.pdf') ? title : `${title}.pdf`, file_data: `data:application/pdf;base64,${String(source.data ?? '')}` } });
  } else {
    throw refuse(`${where}.source.type "${String(source.type)}"`, target, 'documents must be base64 PDFs or text (URLs and Anthropic file ids serve Claude models only)');
  }
  return parts;
}

/** A chat message's content: a plain string when every part is text, else the parts. */
function contentOf(parts: Record<string, unknown>[]): string | Record<string, unknown>[] {
  return parts.every((p) => p.type === 'text') ? parts.map((p) => String(p.text)).join('\n\n') : parts;
}

function userMessages(content: unknown, at: string, target: TranslationTarget): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or an array of content blocks`);
  const tools: ChatMessage[] = [];
  const parts: Record<string, unknown>[] = [];
  for (const [i, raw] of content.entries()) {
    const block = raw as Block;
    const where = `${at}.content[${i}]`;
    if (!block || typeof block !== 'object') throw badRequest(`${where} must be a content block`);
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: String(block.text ?? '') });
        break;
      case 'image':
        parts.push(imagePart(block, where, target));
        break;
      case 'document':
        parts.push(...documentParts(block, where, target));
        break;
      case 'tool_result': {
        // A tool result is a `tool` message; images it returned follow in a user message (a tool message holds text only).
        const texts: string[] = [];
        const inner = block.content;
        if (typeof inner === 'string') texts.push(inner);
        else if (Array.isArray(inner)) {
          for (const [j, b] of (inner as Block[]).entries()) {
            if (b?.type === 'text') texts.push(String(b.text ?? ''));
            else if (b?.type === 'image') parts.push(imagePart(b, `${where}.content[${j}]`, target));
            else if (b?.type === 'document') parts.push(...documentParts(b, `${where}.content[${j}]`, target));
            else throw refuse(`${where}.content[${j}] (type ${String(b?.type)})`, target);
          }
        }
        const text = texts.join('\n\n');
        tools.push({ role: 'tool', tool_call_id: String(block.tool_use_id ?? ''), content: block.is_error === true ? `[tool error] ${text}` : text });
        break;
      }
      default:
        throw refuse(`${where} (type ${String(block.type)})`, target);
    }
  }
  return parts.length > 0 ? [...tools, { role: 'user', content: contentOf(parts) }] : tools;
}

function assistantMessage(content: unknown, at: string, target: TranslationTarget): ChatMessage | null {
  if (typeof content === 'string') return { role: 'assistant', content };
  if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or an array of content blocks`);
  const texts: string[] = [];
  const calls: NonNullable<ChatMessage['tool_calls']> = [];
  for (const [i, raw] of content.entries()) {
    const block = raw as Block;
    const where = `${at}.content[${i}]`;
    if (!block || typeof block !== 'object') throw badRequest(`${where} must be a content block`);
    if (block.type === 'text') texts.push(String(block.text ?? ''));
    else if (block.type === 'tool_use') calls.push({ id: String(block.id ?? ''), type: 'function', function: { name: String(block.name ?? ''), arguments: JSON.stringify(block.input ?? {}) } });
    // Earlier turns' thinking: Anthropic itself leaves it out of the model's context; no other provider can read it.
    else if (block.type === 'thinking' || block.type === 'redacted_thinking') continue;
    else throw refuse(`${where} (type ${String(block.type)})`, target);
  }
  if (texts.length === 0 && calls.length === 0) return null;
  return { role: 'assistant', content: texts.length ? texts.join('') : null, ...(calls.length ? { tool_calls: calls } : {}) };
}

function toolsOf(tools: unknown, target: TranslationTarget): Record<string, unknown>[] {
  if (!Array.isArray(tools)) throw badRequest('tools must be an array');
  return tools.map((raw, i) => {
    const t = raw as Block;
    if (!t || typeof t !== 'object') throw badRequest(`tools[${i}] must be an object`);
    if (t.type !== undefined && t.type !== 'custom') throw refuse(`tools[${i}] (type ${String(t.type)})`, target, 'Anthropic server and client tools serve Claude models only');
    for (const key of Object.keys(t)) {
      if (!['name', 'description', 'input_schema', 'cache_control', 'type'].includes(key)) throw refuse(`tools[${i}].${key}`, target);
    }
    if (typeof t.name !== 'string' || !t.name) throw badRequest(`tools[${i}].name is required`);
    return { type: 'function', function: { name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object', properties: {} } } };
  });
}

/**
 * A Messages request as an OpenAI chat request for `target`. `cache_control` marks are left to the
 * provider's automatic prompt caching (OpenAI, Azure, Gemini and Qwen cache repeated prefixes
 * themselves; the cached tokens they report are billed as cache reads).
 */
export function toChatRequest(body: MessagesRequest, target: TranslationTarget): ChatRequest {
  for (const key of Object.keys(body)) if (!TOP_LEVEL.has(key)) throw refuse(key, target);
  const maxTokens = toCount(body.max_tokens);
  if (maxTokens === null || maxTokens < 1) throw badRequest('max_tokens is required: a positive integer', 'max_tokens_required');
  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) {
    const system = textOfBlocks(body.system, 'system', target);
    if (system) messages.push({ role: 'system', content: system });
  }
  for (const [i, raw] of body.messages.entries()) {
    const m = raw as { role?: unknown; content?: unknown };
    const at = `messages[${i}]`;
    if (m.role === 'user') messages.push(...userMessages(m.content, at, target));
    else if (m.role === 'assistant') {
      const msg = assistantMessage(m.content, at, target);
      if (msg) messages.push(msg);
    } else throw badRequest(`${at}.role must be "user" or "assistant"`);
  }
  const out: ChatRequest = { model: target.upstreamModel, messages };
  // OpenAI's reasoning models take only max_completion_tokens (every current OpenAI model takes it).
  if (target.provider === 'openai' || target.provider === 'azure') out.max_completion_tokens = maxTokens;
  else out.max_tokens = maxTokens;
  if (body.stop_sequences !== undefined) {
    if (!Array.isArray(body.stop_sequences) || body.stop_sequences.some((s) => typeof s !== 'string')) throw badRequest('stop_sequences must be an array of strings');
    if (body.stop_sequences.length > 0) out.stop = body.stop_sequences;
  }
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (body.top_k !== undefined) {
    if (!TAKES_TOP_K.has(target.provider)) throw refuse('top_k', target, `the provider's API has no top_k`);
    out.top_k = body.top_k;
  }
  if (body.metadata !== undefined && body.metadata !== null) {
    const metadata = body.metadata as Record<string, unknown>;
    for (const key of Object.keys(metadata)) if (key !== 'user_id') throw refuse(`metadata.${key}`, target);
    if (typeof metadata.user_id === 'string') out.user = metadata.user_id;
  }
  const tools = body.tools !== undefined ? toolsOf(body.tools, target) : [];
  const choice = body.tool_choice as { type?: unknown; name?: unknown; disable_parallel_tool_use?: unknown } | undefined;
  if (tools.length > 0) {
    out.tools = tools;
    if (choice && typeof choice === 'object') {
      if (choice.type === 'auto') out.tool_choice = 'auto';
      else if (choice.type === 'any') out.tool_choice = 'required';
      else if (choice.type === 'none') out.tool_choice = 'none';
      else if (choice.type === 'tool') out.tool_choice = { type: 'function', function: { name: String(choice.name ?? '') } };
      else throw badRequest(`tool_choice.type "${String(choice.type)}" is not one of auto, any, tool, none`);
      if (choice.disable_parallel_tool_use === true && choice.type !== 'none') out.parallel_tool_calls = false;
    }
  } else if (choice && typeof choice === 'object' && choice.type !== 'none' && choice.type !== 'auto') {
    throw badRequest(`tool_choice.type "${String(choice.type)}" needs tools`);
  }
  const thinking = body.thinking as { type?: unknown; budget_tokens?: unknown } | undefined | null;
  if (thinking && thinking.type === 'enabled') {
    if (!reasons(target.provider, target.upstreamModel)) throw refuse('thinking', target, 'the model does not reason');
    out.reasoning_effort = effortOf(toCount(thinking.budget_tokens) ?? 0);
  } else if (thinking && thinking.type !== 'disabled') {
    throw refuse(`thinking.type "${String(thinking.type)}"`, target);
  }
  if (body.service_tier !== undefined && body.service_tier !== 'auto') throw refuse(`service_tier "${String(body.service_tier)}"`, target);
  if (body.stream === true) out.stream = true;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Response: chat completion -> Messages message
// ---------------------------------------------------------------------------------------------

const STOP: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

export const stopReasonOf = (finish: unknown): string => STOP[String(finish)] ?? 'end_turn';

/** Usage as Anthropic reports it: input_tokens without the cache reads and writes. */
export function anthropicUsageObject(u: TokenUsage) {
  const read = u.cachedTokens;
  const written = u.cacheWriteTokens ?? 0;
  return { input_tokens: Math.max(0, u.inputTokens - read - written), cache_creation_input_tokens: written, cache_read_input_tokens: read, output_tokens: u.outputTokens };
}

export const newMessageId = () => `msg_${randomBytes(12).toString('base64url')}`;

function toolInput(args: unknown, provider: string): Record<string, unknown> {
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    const parsed = JSON.parse(args) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // falls through
  }
  throw upstreamFailed(`${provider} returned tool call arguments that are not a JSON object`, 'upstream_malformed');
}

/** A chat.completion as Anthropic's `message` (`model` is what the client asked for). */
export function toAnthropicMessage(completion: Record<string, unknown>, usage: TokenUsage, model: string, provider: string): Record<string, unknown> {
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : undefined) as { message?: Record<string, unknown>; finish_reason?: unknown } | undefined;
  const message = choice?.message ?? {};
  const content: Block[] = [];
  const text = typeof message.content === 'string' ? message.content : Array.isArray(message.content) ? (message.content as Block[]).map((p) => String(p?.text ?? '')).join('') : '';
  if (text) content.push({ type: 'text', text });
  const refusal = typeof message.refusal === 'string' && message.refusal ? message.refusal : null;
  if (refusal) content.push({ type: 'text', text: refusal });
  for (const call of Array.isArray(message.tool_calls) ? (message.tool_calls as { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[]) : []) {
    content.push({ type: 'tool_use', id: String(call.id ?? `toolu_${randomBytes(8).toString('hex')}`), name: String(call.function?.name ?? ''), input: toolInput(call.function?.arguments, provider) });
  }
  return {
    id: typeof completion.id === 'string' && completion.id ? `msg_${completion.id.replace(/^chatcmpl-/, '')}` : newMessageId(),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: refusal ? 'refusal' : stopReasonOf(choice?.finish_reason),
    stop_sequence: null,
    usage: anthropicUsageObject(usage),
  };
}

// ---------------------------------------------------------------------------------------------
// Stream: chat chunks -> Messages events
// ---------------------------------------------------------------------------------------------

type ToolDelta = { index?: number; id?: string; function?: { name?: string; arguments?: string } };

/**
 * Writes Anthropic's event stream for a chat chunk stream: `start()` first, `push(chunk)` per chunk,
 * `end(usage)` last (closes the open block, message_delta with stop_reason and usage, message_stop).
 * Each returns the SSE text to write. One content block is open at a time, as Anthropic streams them.
 */
export class MessagesStreamWriter {
  private next = 0;
  private open: { index: number; kind: 'text' | 'tool'; tool?: number } | null = null;
  private readonly tools = new Map<number, number>();
  private stop: string | null = null;
  /** Characters of text and tool arguments delivered (to estimate output when no usage came). */
  chars = 0;
  text = '';

  constructor(
    private readonly id: string,
    private readonly model: string,
    private readonly keepText: number,
  ) {}

  start(): string {
    return (
      sseEvent('message_start', {
        type: 'message_start',
        message: { id: this.id, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } },
      }) + sseEvent('ping', { type: 'ping' })
    );
  }

  private close(): string {
    if (!this.open) return '';
    const out = sseEvent('content_block_stop', { type: 'content_block_stop', index: this.open.index });
    this.open = null;
    return out;
  }

  private textDelta(text: string): string {
    let out = '';
    if (this.open?.kind !== 'text') {
      out += this.close();
      this.open = { index: this.next++, kind: 'text' };
      out += sseEvent('content_block_start', { type: 'content_block_start', index: this.open.index, content_block: { type: 'text', text: '' } });
    }
    this.chars += text.length;
    if (this.text.length < this.keepText) this.text += text;
    return out + sseEvent('content_block_delta', { type: 'content_block_delta', index: this.open!.index, delta: { type: 'text_delta', text } });
  }

  private toolDelta(call: ToolDelta, position: number): string {
    const key = typeof call.index === 'number' ? call.index : position;
    let out = '';
    let index = this.tools.get(key);
    if (index === undefined) {
      out += this.close();
      index = this.next++;
      this.tools.set(key, index);
      this.open = { index, kind: 'tool', tool: key };
      const name = call.function?.name ?? '';
      this.chars += name.length;
      out += sseEvent('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: call.id ?? `toolu_${randomBytes(8).toString('hex')}`, name, input: {} } });
    }
    const args = call.function?.arguments;
    if (args) {
      this.chars += args.length;
      out += sseEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: args } });
    }
    return out;
  }

  push(chunk: ChatChunk): string {
    let out = '';
    const choice = chunk.choices?.[0] as
      | { delta?: { content?: string | null; refusal?: string | null; tool_calls?: ToolDelta[] }; finish_reason?: string | null }
      | undefined;
    if (!choice) return out;
    const delta = choice.delta ?? {};
    if (typeof delta.content === 'string' && delta.content) out += this.textDelta(delta.content);
    if (typeof delta.refusal === 'string' && delta.refusal) {
      out += this.textDelta(delta.refusal);
      this.stop = 'refusal';
    }
    for (const [i, call] of (delta.tool_calls ?? []).entries()) out += this.toolDelta(call, i);
    if (choice.finish_reason && this.stop !== 'refusal') this.stop = stopReasonOf(choice.finish_reason);
    return out;
  }

  get stopReason(): string | null {
    return this.stop;
  }

  end(usage: TokenUsage): string {
    return (
      this.close() +
      sseEvent('message_delta', { type: 'message_delta', delta: { stop_reason: this.stop ?? 'end_turn', stop_sequence: null }, usage: anthropicUsageObject(usage) }) +
      sseEvent('message_stop', { type: 'message_stop' })
    );
  }
}

// ---------------------------------------------------------------------------------------------
// count_tokens estimate (providers without a counting endpoint)
// ---------------------------------------------------------------------------------------------

/** Tokens an image is counted as (Anthropic: width × height / 750, at most about 1,600 after resizing). */
const IMAGE_TOKENS = 1600;

/**
 * An estimate of a Messages request's input tokens for models whose provider has no counting
 * endpoint: about 4 characters a token over the text of the system prompt, messages, tool calls
 * and results and the tool definitions, 1,600 tokens per image, a PDF one token per 5 characters
 * of its base64 data, and 4 tokens of framing per message.
 */
export function estimateInputTokens(body: { system?: unknown; messages?: unknown; tools?: unknown }): number {
  let chars = 0;
  let tokens = 0;
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      chars += value.length;
      return;
    }
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const block = value as Block;
    if (block.type === 'image') {
      tokens += IMAGE_TOKENS;
      return;
    }
    if (block.type === 'document') {
      const source = (block.source ?? {}) as Block;
      if (source.type === 'base64') tokens += Math.ceil(String(source.data ?? '').length / 5);
      else visit(source.data ?? source.content);
      return;
    }
    if (block.type === 'text') return visit(block.text);
    if (block.type === 'tool_use') {
      chars += String(block.name ?? '').length + JSON.stringify(block.input ?? {}).length;
      return;
    }
    if (block.type === 'tool_result') return visit(block.content);
    if (block.type === 'thinking' || block.type === 'redacted_thinking') return;
    if ('content' in block) visit(block.content);
  };
  visit(body.system);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    tokens += 4;
    visit((m as { content?: unknown })?.content);
  }
  if (Array.isArray(body.tools)) chars += JSON.stringify(body.tools).length;
  return tokens + Math.ceil(chars / 4);
}
