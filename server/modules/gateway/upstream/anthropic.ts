/**
 * Anthropic's Messages API behind the OpenAI chat API, both ways: requests (system prompt, images,
 * tools and tool results), responses, and the event stream translated chunk by chunk.
 */
import type { TokenUsage } from '../../../../shared/models.js';
import { badRequest, upstreamFailed } from '../errors.js';
import { SseParser } from '../sse.js';
import { PARTIAL_USAGE, toCount, type ChatChunk, type ChatMessage, type ChatRequest, type ProtocolAdapter } from './types.js';

export const ANTHROPIC_VERSION = '2023-06-01';
const DEFAULT_MAX_TOKENS = 4096;

type Block = Record<string, unknown>;
type AnthropicMessage = { role: 'user' | 'assistant'; content: Block[] };

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && (p as { type?: unknown }).type === 'text' ? String((p as { text?: unknown }).text ?? '') : ''))
      .join('');
  }
  return content == null ? '' : String(content);
}

function imageBlock(url: string): Block {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] } };
  return { type: 'image', source: { type: 'url', url } };
}

function userBlocks(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [{ type: 'text', text: textOf(content) }];
  const blocks: Block[] = [];
  for (const part of content as Record<string, unknown>[]) {
    if (!part || typeof part !== 'object') continue;
    if (part.type === 'text') blocks.push({ type: 'text', text: String(part.text ?? '') });
    else if (part.type === 'image_url') {
      const image = part.image_url as { url?: unknown } | string | undefined;
      const url = typeof image === 'string' ? image : image?.url;
      if (typeof url === 'string') blocks.push(imageBlock(url));
    }
  }
  return blocks;
}

function parseArguments(args: string): unknown {
  try {
    return args ? JSON.parse(args) : {};
  } catch {
    throw badRequest('tool call arguments must be a JSON object');
  }
}

export function toAnthropicRequest(body: ChatRequest, model: string, stream: boolean, maxOutputTokens: number | null): Record<string, unknown> {
  const system: string[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // Anthropic wants user and assistant turns to alternate: consecutive ones are merged.
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const msg of body.messages as ChatMessage[]) {
    switch (msg.role) {
      case 'system':
      case 'developer':
        system.push(textOf(msg.content));
        break;
      case 'user':
        push('user', userBlocks(msg.content));
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        const text = textOf(msg.content);
        if (text) blocks.push({ type: 'text', text });
        for (const call of msg.tool_calls ?? []) {
          blocks.push({ type: 'tool_use', id: call.id, name: call.function?.name, input: parseArguments(call.function?.arguments ?? '') });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: msg.tool_call_id, content: textOf(msg.content) }]);
        break;
      default:
        throw badRequest(`unsupported message role "${String(msg.role)}"`);
    }
  }
  const out: Record<string, unknown> = {
    model,
    messages,
    max_tokens: toCount(body.max_completion_tokens) ?? toCount(body.max_tokens) ?? Math.min(maxOutputTokens ?? DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS),
  };
  if (system.length) out.system = system.join('\n\n');
  if (typeof body.temperature === 'number') out.temperature = Math.min(1, Math.max(0, body.temperature));
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (typeof body.stop === 'string') out.stop_sequences = [body.stop];
  else if (Array.isArray(body.stop)) out.stop_sequences = body.stop;
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  if (Array.isArray(body.tools)) {
    out.tools = (body.tools as { type?: string; function?: { name?: string; description?: string; parameters?: unknown } }[])
      .filter((t) => t.type === 'function' && t.function)
      .map((t) => ({ name: t.function!.name, description: t.function!.description, input_schema: t.function!.parameters ?? { type: 'object', properties: {} } }));
  }
  const choice = body.tool_choice as string | { type?: string; function?: { name?: string } } | undefined;
  if (choice === 'auto') out.tool_choice = { type: 'auto' };
  else if (choice === 'required') out.tool_choice = { type: 'any' };
  else if (choice === 'none') out.tool_choice = { type: 'none' };
  else if (choice && typeof choice === 'object' && choice.function?.name) out.tool_choice = { type: 'tool', name: choice.function.name };
  if (stream) out.stream = true;
  return out;
}

const FINISH: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', pause_turn: 'stop' };

interface AnthropicUsage { input_tokens?: unknown; output_tokens?: unknown; cache_read_input_tokens?: unknown; cache_creation_input_tokens?: unknown }

/** Anthropic counts cached and cache-written prompt tokens apart; OpenAI's prompt_tokens includes them. */
function usageOf(u: AnthropicUsage): TokenUsage {
  const cacheRead = toCount(u.cache_read_input_tokens) ?? 0;
  const cacheWrite = toCount(u.cache_creation_input_tokens) ?? 0;
  const input = (toCount(u.input_tokens) ?? 0) + cacheRead + cacheWrite;
  return { inputTokens: input, outputTokens: toCount(u.output_tokens) ?? 0, cachedTokens: cacheRead, cacheWriteTokens: cacheWrite };
}

function openAiUsageObject(u: TokenUsage) {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    // cache_write_tokens is ours (OpenAI has no cache writes): what was billed at the cache-write price.
    prompt_tokens_details: { cached_tokens: u.cachedTokens, cache_write_tokens: u.cacheWriteTokens ?? 0 },
  };
}

export function fromAnthropicResponse(msg: Record<string, unknown>): { completion: Record<string, unknown>; usage: TokenUsage } {
  const blocks = Array.isArray(msg.content) ? (msg.content as Block[]) : [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const toolCalls = blocks
    .filter((b) => b.type === 'tool_use')
    .map((b) => ({ id: String(b.id), type: 'function', function: { name: String(b.name), arguments: JSON.stringify(b.input ?? {}) } }));
  const usage = usageOf((msg.usage ?? {}) as AnthropicUsage);
  return {
    usage,
    completion: {
      id: `chatcmpl-${String(msg.id ?? '')}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: msg.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text || (toolCalls.length ? null : ''), refusal: null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
          logprobs: null,
          finish_reason: FINISH[String(msg.stop_reason)] ?? 'stop',
        },
      ],
      usage: openAiUsageObject(usage),
    },
  };
}

/** Turns Anthropic stream events into OpenAI chunks, one event at a time. */
export class AnthropicStreamTranslator {
  private id = '';
  private model = '';
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly toolIndex = new Map<number, number>();
  private usage: AnthropicUsage = {};
  finished = false;

  private chunk(delta: Record<string, unknown>, finishReason: string | null = null): ChatChunk {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] } as unknown as ChatChunk;
  }

  translate(event: Record<string, unknown>): ChatChunk[] {
    switch (event.type) {
      case 'message_start': {
        const message = (event.message ?? {}) as { id?: string; model?: string; usage?: AnthropicUsage };
        this.id = `chatcmpl-${message.id ?? ''}`;
        this.model = message.model ?? '';
        this.usage = { ...message.usage };
        const first = this.chunk({ role: 'assistant', content: '' });
        (first as Record<symbol, unknown>)[PARTIAL_USAGE] = usageOf(this.usage);
        return [first];
      }
      case 'content_block_start': {
        const block = (event.content_block ?? {}) as Block;
        const index = Number(event.index ?? 0);
        if (block.type === 'tool_use') {
          const i = this.toolIndex.size;
          this.toolIndex.set(index, i);
          return [this.chunk({ tool_calls: [{ index: i, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] })];
        }
        if (block.type === 'text' && typeof block.text === 'string' && block.text) return [this.chunk({ content: block.text })];
        return [];
      }
      case 'content_block_delta': {
        const delta = (event.delta ?? {}) as Block;
        if (delta.type === 'text_delta') return [this.chunk({ content: String(delta.text ?? '') })];
        if (delta.type === 'input_json_delta') {
          const i = this.toolIndex.get(Number(event.index ?? 0)) ?? 0;
          return [this.chunk({ tool_calls: [{ index: i, function: { arguments: String(delta.partial_json ?? '') } }] })];
        }
        return [];
      }
      case 'message_delta': {
        const delta = (event.delta ?? {}) as { stop_reason?: string };
        const usage = (event.usage ?? {}) as AnthropicUsage;
        // message_delta's usage is cumulative; keep the input counts from message_start unless restated.
        this.usage = { ...this.usage, ...Object.fromEntries(Object.entries(usage).filter(([, v]) => v != null)) };
        return delta.stop_reason ? [this.chunk({}, FINISH[delta.stop_reason] ?? 'stop')] : [];
      }
      case 'message_stop': {
        this.finished = true;
        return [{ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage: openAiUsageObject(usageOf(this.usage)) } as ChatChunk];
      }
      case 'error': {
        const err = (event.error ?? {}) as { message?: unknown };
        throw upstreamFailed(`anthropic failed mid-stream: ${typeof err.message === 'string' ? err.message : 'unknown error'}`);
      }
      default:
        return [];
    }
  }

  /** What the stream has reported so far (input tokens arrive with message_start). */
  usageSoFar(): TokenUsage {
    return usageOf(this.usage);
  }
}

export const anthropicAdapter: ProtocolAdapter = {
  prepare(body, upstreamModel, stream, maxOutputTokens) {
    return { payload: JSON.stringify(toAnthropicRequest(body, upstreamModel, stream, maxOutputTokens)) };
  },
  parseResponse(text) {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw upstreamFailed('anthropic sent a response that is not JSON', 'upstream_malformed');
    }
    if (!msg || typeof msg !== 'object' || !Array.isArray(msg.content)) throw upstreamFailed('anthropic sent a response without content', 'upstream_malformed');
    return fromAnthropicResponse(msg);
  },
  async *streamChunks(body) {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const translator = new AnthropicStreamTranslator();
    const handle = function* (events: { data: string }[]): Generator<ChatChunk> {
      for (const e of events) {
        let event: Record<string, unknown>;
        try {
          event = JSON.parse(e.data) as Record<string, unknown>;
        } catch {
          throw upstreamFailed('anthropic sent a malformed stream event', 'upstream_malformed');
        }
        yield* translator.translate(event);
      }
    };
    for await (const bytes of body) {
      yield* handle(parser.push(decoder.decode(bytes, { stream: true })));
      if (translator.finished) return;
    }
    yield* handle(parser.end());
    if (!translator.finished) throw upstreamFailed('anthropic ended the stream early (no message_stop)', 'upstream_truncated');
  },
};
