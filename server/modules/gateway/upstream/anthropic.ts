/**
 * Anthropic's Messages API behind the OpenAI chat API, both ways: requests, responses, and the
 * event stream translated chunk by chunk. Faithful or refused: every request field is on an allow
 * list and is honoured (system prompt, images, PDFs, tools and tool results, parallel tool calls,
 * prompt caching through `cache_control`, structured output, reasoning effort as extended
 * thinking, ...) or refused with a 400 naming the parameter and the model; nothing is dropped
 * silently (docs/gateway.md has the table).
 */
import type { TokenUsage } from '../../../../shared/models.js';
import { badRequest, upstreamFailed } from '../errors.js';
import { SseParser } from '../sse.js';
import { PARTIAL_USAGE, toCount, type ChatChunk, type ChatMessage, type ChatRequest, type ProtocolAdapter } from './types.js';

export const ANTHROPIC_VERSION = '2023-06-01';
/** max_tokens when the client gives none and the catalog does not know the model (its own maxOutputTokens otherwise). */
export const FALLBACK_MAX_TOKENS = 4096;
/**
 * Structured output (response_format) is a forced tool with this name whose input_schema is the
 * schema; its input comes back as the message content (JSON text), never as a tool call.
 */
export const RESPONSE_FORMAT_TOOL = 'gateway_json_response';
/** Extended thinking budgets for reasoning_effort (Anthropic's minimum is 1024). */
export const THINKING_BUDGETS: Record<string, number> = { minimal: 1024, low: 2048, medium: 8192, high: 24_576 };

type Block = Record<string, unknown>;
type AnthropicMessage = { role: 'user' | 'assistant'; content: Block[] };

/** A 400 naming the parameter and the model. */
const refuse = (param: string, model: string, why: string) => badRequest(`${param} is not supported for Anthropic model "${model}": ${why}`, 'unsupported_parameter');

const isSet = (v: unknown) => v !== undefined && v !== null;

/** Request fields the translation honours or checks (the rest are refused by name). */
const KNOWN_FIELDS = new Set([
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'stop', 'user',
  'safety_identifier', 'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'n', 'logprobs', 'top_logprobs', 'reasoning_effort',
  'frequency_penalty', 'presence_penalty', 'logit_bias', 'seed', 'modalities', 'audio', 'prediction', 'service_tier', 'web_search_options',
  'store', 'metadata', 'verbosity', 'functions', 'function_call', 'prompt_cache_key',
  // The gateway's own (fallback models), handled before the adapter.
  'models',
]);

function cacheControl(from: unknown): Block {
  if (!isSet(from)) return {};
  if (typeof from !== 'object' || (from as { type?: unknown }).type !== 'ephemeral') throw badRequest('cache_control must be {"type": "ephemeral"} (optionally with "ttl")');
  return { cache_control: from };
}

function textPart(part: Record<string, unknown>, model: string, where: string): Block {
  if (part.type !== 'text') throw refuse(`${where} content part of type "${String(part.type)}"`, model, 'only text parts are accepted here');
  return { type: 'text', text: String(part.text ?? ''), ...cacheControl(part.cache_control) };
}

/** Text-only content (system, developer, assistant, tool) as blocks, cache_control kept. */
function textBlocks(content: unknown, model: string, where: string): Block[] {
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (content == null) return [];
  if (!Array.isArray(content)) throw badRequest(`${where} content must be a string or an array of content parts`);
  return (content as Record<string, unknown>[]).filter((p) => p && typeof p === 'object').map((p) => textPart(p, model, where));
}

function imageBlock(url: string): Block {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] } };
  return { type: 'image', source: { type: 'url', url } };
}

function fileBlock(part: Record<string, unknown>, model: string): Block {
  const file = (part.file ?? {}) as { file_data?: unknown; file_id?: unknown; filename?: unknown };
  if (isSet(file.file_id)) throw refuse('file.file_id', model, 'OpenAI file ids are not available to Anthropic; send the file inline as file_data (a data: URL)');
  const m = typeof file.file_data === 'string' ? /^data:([^;,]+);base64,(.*)$/s.exec(file.file_data) : null;
  if (!m) throw badRequest('file.file_data must be a data: URL (data:application/pdf;base64,...)');
  if (m[1] !== 'application/pdf') throw refuse(`a file part of type ${m[1]}`, model, 'Anthropic reads PDF documents (application/pdf) only');
  return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: m[2] }, ...(typeof file.filename === 'string' ? { title: file.filename } : {}), ...cacheControl(part.cache_control) };
}

function userBlocks(content: unknown, model: string): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw badRequest('user message content must be a string or an array of content parts');
  const blocks: Block[] = [];
  for (const part of content as Record<string, unknown>[]) {
    if (!part || typeof part !== 'object') continue;
    switch (part.type) {
      case 'text':
        blocks.push(textPart(part, model, 'user'));
        break;
      case 'image_url': {
        const image = part.image_url as { url?: unknown } | string | undefined;
        const url = typeof image === 'string' ? image : image?.url;
        if (typeof url !== 'string') throw badRequest('image_url.url must be a string');
        blocks.push({ ...imageBlock(url), ...cacheControl(part.cache_control) });
        break;
      }
      case 'file':
        blocks.push(fileBlock(part, model));
        break;
      case 'input_audio':
        throw refuse('audio input (input_audio content parts)', model, 'Anthropic models do not take audio');
      default:
        throw refuse(`content part of type "${String(part.type)}"`, model, 'send text, image_url or file (PDF) parts');
    }
  }
  return blocks;
}

/** A message-level cache_control marks the message's last block (Anthropic puts breakpoints on blocks). */
function withMessageCache(blocks: Block[], msg: ChatMessage): Block[] {
  const cc = cacheControl(msg.cache_control);
  if (cc.cache_control && blocks.length > 0) blocks[blocks.length - 1] = { ...blocks[blocks.length - 1], ...cc };
  return blocks;
}

function parseArguments(args: string): unknown {
  try {
    return args ? JSON.parse(args) : {};
  } catch {
    throw badRequest('tool call arguments must be a JSON object');
  }
}

function temperatureOf(body: ChatRequest, model: string): number | undefined {
  const t = body.temperature;
  if (!isSet(t)) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t)) throw badRequest('temperature must be a number');
  if (t < 0 || t > 1) throw badRequest(`temperature ${t} is out of range for Anthropic model "${model}": Anthropic accepts 0 to 1 (OpenAI's 0 to 2 is not rescaled)`, 'unsupported_parameter');
  return t;
}

/** Refuses every field Anthropic has no equivalent for, when it asks for something (a neutral value passes). */
function refuseUnsupported(body: ChatRequest, model: string): void {
  for (const key of Object.keys(body)) {
    if (!KNOWN_FIELDS.has(key) && body[key] !== undefined) throw refuse(key, model, 'the gateway does not translate this field to Anthropic');
  }
  const n = body.n;
  if (isSet(n) && n !== 1) throw refuse('n', model, 'Anthropic returns one choice per request; send n separate requests');
  if (body.logprobs === true) throw refuse('logprobs', model, 'Anthropic does not return log probabilities');
  if (isSet(body.top_logprobs)) throw refuse('top_logprobs', model, 'Anthropic does not return log probabilities');
  if (isSet(body.seed)) throw refuse('seed', model, 'Anthropic has no seeded sampling');
  for (const p of ['frequency_penalty', 'presence_penalty'] as const) if (isSet(body[p]) && body[p] !== 0) throw refuse(p, model, 'Anthropic has no repetition penalties');
  if (isSet(body.logit_bias) && Object.keys(body.logit_bias as object).length > 0) throw refuse('logit_bias', model, 'Anthropic has no token biasing');
  if (Array.isArray(body.modalities) && body.modalities.some((m) => m !== 'text')) throw refuse('modalities', model, 'Anthropic models answer with text only');
  if (isSet(body.audio)) throw refuse('audio', model, 'Anthropic models do not produce audio');
  if (isSet(body.prediction)) throw refuse('prediction', model, 'Anthropic has no predicted outputs');
  if (isSet(body.web_search_options)) throw refuse('web_search_options', model, "use Anthropic's web search through POST /v1/messages");
  if (body.store === true) throw refuse('store', model, 'stored completions are an OpenAI feature');
  if (isSet(body.metadata) && Object.keys(body.metadata as object).length > 0) throw refuse('metadata', model, 'Anthropic keeps only a user id (send user)');
  if (isSet(body.verbosity)) throw refuse('verbosity', model, 'Anthropic has no verbosity setting');
  if (isSet(body.functions) || isSet(body.function_call)) throw refuse(isSet(body.functions) ? 'functions' : 'function_call', model, 'use tools and tool_choice (the legacy function fields are not translated)');
  if (isSet(body.prompt_cache_key) && (typeof body.prompt_cache_key !== 'string' || body.prompt_cache_key.length > 1024)) throw refuse('prompt_cache_key', model, 'it must be a string of at most 1024 characters');
  if (isSet(body.service_tier) && !['auto', 'default'].includes(String(body.service_tier))) throw refuse('service_tier', model, 'Anthropic offers "auto" and standard capacity ("default") only');
}

function toolsOf(body: ChatRequest, model: string): Block[] | undefined {
  if (!isSet(body.tools)) return undefined;
  if (!Array.isArray(body.tools)) throw badRequest('tools must be an array');
  return (body.tools as Record<string, unknown>[]).map((t) => {
    if (t?.type !== 'function' || !t.function || typeof t.function !== 'object') throw refuse(`a tool of type "${String(t?.type)}"`, model, 'only function tools are translated');
    const f = t.function as { name?: unknown; description?: unknown; parameters?: unknown };
    if (f.name === RESPONSE_FORMAT_TOOL) throw badRequest(`the tool name ${RESPONSE_FORMAT_TOOL} is reserved by the gateway`);
    return {
      name: f.name,
      ...(isSet(f.description) ? { description: f.description } : {}),
      input_schema: f.parameters ?? { type: 'object', properties: {} },
      ...cacheControl(t.cache_control),
    };
  });
}

/** The forced tool standing for response_format, or null for plain text. */
function responseFormatTool(body: ChatRequest, model: string): Block | null {
  const rf = body.response_format as { type?: unknown; json_schema?: { name?: unknown; description?: unknown; schema?: unknown } } | undefined | null;
  if (!isSet(rf) || rf!.type === 'text') return null;
  if (rf!.type === 'json_object') return { name: RESPONSE_FORMAT_TOOL, description: 'Answer with a JSON object.', input_schema: { type: 'object' } };
  if (rf!.type === 'json_schema') {
    const js = rf!.json_schema;
    if (!js || typeof js.schema !== 'object' || js.schema === null) throw badRequest('response_format.json_schema.schema must be a JSON schema object');
    const schema = js.schema as { type?: unknown };
    if (schema.type !== 'object') throw refuse('response_format.json_schema with a non-object root', model, 'Anthropic structured output takes an object schema at the root');
    const name = typeof js.name === 'string' ? js.name : 'response';
    const description = typeof js.description === 'string' ? ` ${js.description}` : '';
    return { name: RESPONSE_FORMAT_TOOL, description: `Answer with the "${name}" JSON object.${description}`, input_schema: js.schema };
  }
  throw refuse(`response_format of type "${String(rf!.type)}"`, model, 'use text, json_object or json_schema');
}

export function toAnthropicRequest(body: ChatRequest, model: string, stream: boolean, maxOutputTokens: number | null): Record<string, unknown> {
  refuseUnsupported(body, model);
  const system: Block[][] = [];
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
        system.push(withMessageCache(textBlocks(msg.content, model, msg.role), msg));
        break;
      case 'user':
        push('user', withMessageCache(userBlocks(msg.content, model), msg));
        break;
      case 'assistant': {
        if (isSet(msg.audio)) throw refuse('assistant audio', model, 'Anthropic models do not take audio');
        if (isSet(msg.function_call)) throw refuse('function_call in an assistant message', model, 'use tool_calls');
        const blocks: Block[] = textBlocks(msg.content, model, 'assistant');
        for (const call of msg.tool_calls ?? []) {
          blocks.push({ type: 'tool_use', id: call.id, name: call.function?.name, input: parseArguments(call.function?.arguments ?? '') });
        }
        push('assistant', withMessageCache(blocks, msg));
        break;
      }
      case 'tool': {
        const parts = textBlocks(msg.content, model, 'tool');
        const cached = parts.some((b) => b.cache_control) || isSet(msg.cache_control);
        // Plain text results stay a string; parts with cache breakpoints stay blocks.
        const content = cached ? withMessageCache(parts, msg) : parts.map((b) => String(b.text)).join('');
        push('user', [{ type: 'tool_result', tool_use_id: msg.tool_call_id, content }]);
        break;
      }
      default:
        throw badRequest(`unsupported message role "${String(msg.role)}"`);
    }
  }

  const effort = body.reasoning_effort;
  const thinking = isSet(effort) && effort !== 'none';
  if (thinking && !(String(effort) in THINKING_BUDGETS)) throw badRequest('reasoning_effort must be one of none, minimal, low, medium, high');
  const requested = toCount(body.max_completion_tokens) ?? toCount(body.max_tokens);
  const maxTokens = requested ?? maxOutputTokens ?? FALLBACK_MAX_TOKENS;
  const out: Record<string, unknown> = { model, messages, max_tokens: maxTokens };
  // One string (each message's parts joined, messages by a blank line), or blocks when they carry cache breakpoints.
  if (system.length) out.system = system.flat().some((b) => b.cache_control) ? system.flat() : system.map((m) => m.map((b) => String(b.text)).join('')).join('\n\n');
  const temperature = temperatureOf(body, model);
  if (thinking) {
    // Extended thinking: the budget must be below max_tokens; Anthropic fixes temperature at 1 and top_p at 0.95 or more.
    let budget = THINKING_BUDGETS[String(effort)]!;
    if (budget >= maxTokens) budget = maxTokens - 1;
    if (budget < 1024) throw refuse('reasoning_effort', model, `extended thinking needs max_tokens above 1024 (got ${maxTokens})`);
    out.thinking = { type: 'enabled', budget_tokens: budget };
    if (temperature !== undefined && temperature !== 1) throw refuse('temperature with reasoning_effort', model, 'extended thinking runs at temperature 1 only');
    if (isSet(body.top_p) && (body.top_p as number) < 0.95) throw refuse('top_p with reasoning_effort', model, 'extended thinking takes top_p from 0.95 to 1');
    if (isSet(body.top_k)) throw refuse('top_k with reasoning_effort', model, 'extended thinking does not take top_k');
  } else if (temperature !== undefined) out.temperature = temperature;
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (typeof body.top_k === 'number') out.top_k = body.top_k;
  if (typeof body.stop === 'string') out.stop_sequences = [body.stop];
  else if (Array.isArray(body.stop)) out.stop_sequences = body.stop;
  const user = typeof body.user === 'string' ? body.user : typeof body.safety_identifier === 'string' ? body.safety_identifier : null;
  if (user) out.metadata = { user_id: user };
  if (body.service_tier === 'auto') out.service_tier = 'auto';
  else if (body.service_tier === 'default') out.service_tier = 'standard_only';

  const tools = toolsOf(body, model);
  const format = responseFormatTool(body, model);
  const allTools = [...(tools ?? []), ...(format ? [format] : [])];
  if (allTools.length) out.tools = allTools;
  // prompt_cache_key asks for the prompt prefix to be cached. Anthropic caches at breakpoints, so
  // when the request has none of its own, the stable prefix gets them: the last tool and the end of
  // the system prompt (reads then cost 10% of input, writes 125%).
  if (typeof body.prompt_cache_key === 'string' && !JSON.stringify(out).includes('"cache_control"')) {
    const breakpoint = { cache_control: { type: 'ephemeral' } };
    if (allTools.length) allTools[allTools.length - 1] = { ...allTools[allTools.length - 1], ...breakpoint };
    if (typeof out.system === 'string') out.system = [{ type: 'text', text: out.system, ...breakpoint }];
    else if (Array.isArray(out.system) && out.system.length) (out.system as Block[])[out.system.length - 1] = { ...(out.system as Block[])[out.system.length - 1], ...breakpoint };
  }
  const choice = body.tool_choice as string | { type?: string; function?: { name?: string } } | undefined | null;
  let toolChoice: Block | undefined;
  if (choice === 'auto') toolChoice = { type: 'auto' };
  else if (choice === 'required') toolChoice = { type: 'any' };
  else if (choice === 'none') toolChoice = { type: 'none' };
  else if (choice && typeof choice === 'object' && choice.function?.name) toolChoice = { type: 'tool', name: choice.function.name };
  else if (isSet(choice)) throw badRequest('tool_choice must be "auto", "required", "none" or {"type": "function", "function": {"name": ...}}');
  if (format) {
    // Structured output: the answer is the format tool's input. With the client's own tools the model
    // must call one of them or the format tool (any); otherwise the format tool is forced. A named
    // function in tool_choice wins (its call comes back as a tool call, as with OpenAI).
    if (thinking) throw refuse('response_format with reasoning_effort', model, 'structured output is a forced tool here, and extended thinking does not allow forcing a tool');
    if (!toolChoice || toolChoice.type === 'auto') toolChoice = tools?.length ? { type: 'any' } : { type: 'tool', name: RESPONSE_FORMAT_TOOL };
    else if (toolChoice.type === 'none') toolChoice = { type: 'tool', name: RESPONSE_FORMAT_TOOL };
  }
  // parallel_tool_calls: false -> at most one tool call per turn (nothing to say when no tool may be called).
  if (body.parallel_tool_calls === false && allTools.length && toolChoice?.type !== 'none') toolChoice = { ...(toolChoice ?? { type: 'auto' }), disable_parallel_tool_use: true };
  if (toolChoice) {
    if (thinking && (toolChoice.type === 'any' || toolChoice.type === 'tool')) throw refuse('tool_choice with reasoning_effort', model, 'extended thinking allows tool_choice auto or none only');
    out.tool_choice = toolChoice;
  }
  if (stream) out.stream = true;
  return out;
}

const FINISH: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', pause_turn: 'stop' };

export interface AnthropicUsage { input_tokens?: unknown; output_tokens?: unknown; cache_read_input_tokens?: unknown; cache_creation_input_tokens?: unknown }

/** Anthropic counts cached and cache-written prompt tokens apart; OpenAI's prompt_tokens includes them. */
export function usageOf(u: AnthropicUsage): TokenUsage {
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
  // Structured output: the format tool's input is the answer (JSON text), not a tool call.
  const formatted = blocks.find((b) => b.type === 'tool_use' && b.name === RESPONSE_FORMAT_TOOL);
  const text = formatted ? JSON.stringify(formatted.input ?? {}) : blocks.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const reasoning = blocks.filter((b) => b.type === 'thinking').map((b) => String(b.thinking ?? '')).join('');
  const toolCalls = blocks
    .filter((b) => b.type === 'tool_use' && b.name !== RESPONSE_FORMAT_TOOL)
    .map((b) => ({ id: String(b.id), type: 'function', function: { name: String(b.name), arguments: JSON.stringify(b.input ?? {}) } }));
  const usage = usageOf((msg.usage ?? {}) as AnthropicUsage);
  const stop = String(msg.stop_reason);
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
          message: {
            role: 'assistant',
            content: text || (toolCalls.length ? null : ''),
            refusal: null,
            // Extended thinking's text (reasoning_effort); its tokens are part of completion_tokens, as Anthropic counts them.
            ...(reasoning ? { reasoning_content: reasoning } : {}),
            ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
          },
          logprobs: null,
          finish_reason: stop === 'tool_use' && formatted && toolCalls.length === 0 ? 'stop' : (FINISH[stop] ?? 'stop'),
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
  /** Block indexes of the structured-output tool: its JSON streams as content. */
  private readonly formatBlocks = new Set<number>();
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
        if (block.type === 'tool_use' && block.name === RESPONSE_FORMAT_TOOL) {
          this.formatBlocks.add(index);
          return [];
        }
        if (block.type === 'tool_use') {
          const i = this.toolIndex.size;
          this.toolIndex.set(index, i);
          return [this.chunk({ tool_calls: [{ index: i, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] })];
        }
        if (block.type === 'text' && typeof block.text === 'string' && block.text) return [this.chunk({ content: block.text })];
        if (block.type === 'thinking' && typeof block.thinking === 'string' && block.thinking) return [this.chunk({ reasoning_content: block.thinking })];
        return [];
      }
      case 'content_block_delta': {
        const delta = (event.delta ?? {}) as Block;
        if (delta.type === 'text_delta') return [this.chunk({ content: String(delta.text ?? '') })];
        if (delta.type === 'thinking_delta') return [this.chunk({ reasoning_content: String(delta.thinking ?? '') })];
        if (delta.type === 'input_json_delta' && this.formatBlocks.has(Number(event.index ?? 0))) return [this.chunk({ content: String(delta.partial_json ?? '') })];
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
        if (!delta.stop_reason) return [];
        // Only the structured-output tool was called: the answer is content, it stopped normally.
        const finish = delta.stop_reason === 'tool_use' && this.formatBlocks.size > 0 && this.toolIndex.size === 0 ? 'stop' : (FINISH[delta.stop_reason] ?? 'stop');
        return [this.chunk({}, finish)];
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
